"""The work order lifecycle from the command line: ``fixloop orders`` and ``fixloop jobs``.

The orders service runs in-process on the real broker and store (its own ``bootstrap``, as in
``test_work_order_lifecycle.py``); the contractors service is played by publishing its
``assignment.offered`` events. The CLI runs as the real command (``python -m fixloop_cli``) in a
subprocess, pointed at the service by ``FIXLOOP_ORDERS_GRPC_TARGET``. ``fixloop demo`` needs all
five services: here only its refusals are tested (the e2e suite runs it).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import typer
from google.protobuf import timestamp_pb2

from fixloop.v1 import contractor_jobs_service_pb2 as jobs_pb2
from fixloop.v1 import contractor_jobs_service_pb2_grpc as jobs_grpc
from fixloop.v1 import work_order_pb2
from fixloop.v1 import work_orders_service_pb2 as wo_pb2
from fixloop.v1 import work_orders_service_pb2_grpc as wo_grpc
from fixloop_devkit.testing import eventually, start_in_process, unique
from fixloop_orders.adapters.mongo import OFFERS, WORK_ORDERS
from fixloop_orders.cli_demo import DEMO_ORDER, completion_report, demo_event
from fixloop_orders.cli_support import (
    Check,
    PartQuantity,
    PhotoRef,
    parse_check,
    parse_part,
    parse_photo,
    parse_state,
    parse_time,
)
from fixloop_orders.main import OrdersService, bootstrap
from fixloop_orders.settings import OrdersSettings
from fixloop_shared.contracts import INBOUND_EVENT_TYPES, AssignmentOffered
from fixloop_shared.envelope import EventEnvelope, decode_event
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.topics import Service, Topic
from tests.integration.principals import principals_of
from tests.integration.test_orders_service import publish_binary, submit_structured, submitted

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SOURCE = "cli-lifecycle.example"
TENANT = "cli-lc-acme"
OTHER_TENANT = "cli-lc-globex"
C1 = "cli-lc-c1"
KEYS, PRINCIPALS = principals_of(
    "cli-lc", tenant=TENANT, other_tenant=OTHER_TENANT, contractors={"c1": C1}
)
S = work_order_pb2
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class Stack:
    service: OrdersService
    bootstrap: str
    channel: grpc.aio.Channel

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.service.partner_api.bound_port}"

    @property
    def db(self) -> Any:
        return self.service.ctx.store.db

    @property
    def orders(self) -> wo_grpc.WorkOrdersServiceStub:
        return wo_grpc.WorkOrdersServiceStub(self.channel)  # type: ignore[no-untyped-call]

    @property
    def jobs(self) -> jobs_grpc.ContractorJobsServiceStub:
        return jobs_grpc.ContractorJobsServiceStub(self.channel)  # type: ignore[no-untyped-call]

    async def get(self, work_order_id: str) -> work_order_pb2.WorkOrder:
        answer = await self.orders.GetWorkOrder(
            wo_pb2.GetWorkOrderRequest(work_order_id=work_order_id),
            metadata=(("x-api-key", KEYS["partner"]),),
            timeout=10,
        )
        order: work_order_pb2.WorkOrder = answer.work_order
        return order

    async def wait_state(self, work_order_id: str, state: int) -> work_order_pb2.WorkOrder:
        return await eventually(lambda: self.get(work_order_id), lambda o: o.state == state)


@pytest.fixture(scope="module")
async def stack(kafka_bootstrap: str, mongodb_uri: str) -> AsyncIterator[Stack]:
    settings = OrdersSettings(
        mongodb_uri=mongodb_uri,
        database=unique("cli_lifecycle_it").replace("-", "_"),
        kafka=KafkaSettings(bootstrap=kafka_bootstrap),
        health_port=0,
        grpc_port=0,
        grpc_reflection=False,
        grpc_rate_limit="",
        principals=PRINCIPALS,
        source_tenants={SOURCE: [TENANT]},
        outbox_poll_seconds=0.1,
        close_after_seconds=0,
        lifecycle_timer_poll_seconds=0.2,
    )
    service = await start_in_process(lambda: bootstrap(settings))
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{service.partner_api.bound_port}")
    try:
        yield Stack(service=service, bootstrap=kafka_bootstrap, channel=channel)
    finally:
        await channel.close()
        await service.app.stop()


# --------------------------------------------------------------------------- helpers


def cli_env(target: str, bootstrap: str) -> dict[str, str]:
    env = {
        **os.environ,
        "FIXLOOP_ORDERS_GRPC_TARGET": target,
        "FIXLOOP_KAFKA_BOOTSTRAP": bootstrap,
        "COLUMNS": "250",  # rich tables at full width: whole ids on one line
        "NO_COLOR": "1",
    }
    env.pop("FIXLOOP_API_KEY", None)
    return env


async def fixloop(
    stack: Stack, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real ``fixloop`` command in a worker thread (this loop serves the gRPC API)."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "fixloop_cli", *args],
        env=cli_env(stack.target, stack.bootstrap),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args}: {result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout


def one_error_line(result: subprocess.CompletedProcess[str], exit_code: int) -> str:
    """The command failed with ``exit_code`` and said why in one ``error: ...`` line."""
    assert result.returncode == exit_code, (result.args, result.returncode, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def received_order(stack: Stack) -> tuple[str, str]:
    """A new order of the tenant from its source platform: (work order id, external id)."""
    external_id = unique("CLI")
    await submit_structured(stack.bootstrap, submitted(external_id), tenant=TENANT, source=SOURCE)

    async def probe() -> Any:
        return await stack.db[WORK_ORDERS].find_one({"external_id": external_id})

    doc = await eventually(probe, lambda d: d is not None)
    return str(doc["_id"]), external_id


async def offer(stack: Stack, work_order_id: str, contractor: str = C1) -> str:
    """The contractors service offers the order to ``contractor``."""
    offer_id = unique("offer")
    now = datetime.now(UTC)
    payload = AssignmentOffered(
        work_order_id=work_order_id,
        offer_id=offer_id,
        contractor_id=contractor,
        contractor_name=f"Contractor {contractor}",
        offered_at=now,
        expires_at=now + timedelta(minutes=30),
    )
    envelope = EventEnvelope.new(
        payload, source=Service.CONTRACTORS, subject=work_order_id, tenant=TENANT
    )
    await publish_binary(
        stack.bootstrap, Topic.CONTRACTORS_EVENTS, envelope, payload, work_order_id
    )

    async def probe() -> Any:
        return await stack.db[OFFERS].find_one({"_id": offer_id})

    await eventually(probe, lambda d: d is not None)
    await stack.wait_state(work_order_id, S.WORK_ORDER_STATE_DISPATCHING)
    return offer_id


def stamp(at: datetime) -> timestamp_pb2.Timestamp:
    value = timestamp_pb2.Timestamp()
    value.FromDatetime(at)
    return value


async def completed_order(stack: Stack) -> str:
    """An order taken to work_completed directly through the API (the CLI is tested above)."""
    work_order_id, _ = await received_order(stack)
    offer_id = await offer(stack, work_order_id)
    md = (("x-api-key", KEYS["c1"]),)
    jobs = stack.jobs
    await jobs.AcceptOffer(
        jobs_pb2.AcceptOfferRequest(request_id=str(uuid.uuid4()), offer_id=offer_id), metadata=md
    )
    for kind in (jobs_pb2.PROGRESS_KIND_EN_ROUTE, jobs_pb2.PROGRESS_KIND_ON_SITE):
        await jobs.ReportProgress(
            jobs_pb2.ReportProgressRequest(
                request_id=str(uuid.uuid4()), work_order_id=work_order_id, kind=kind
            ),
            metadata=md,
        )
    await jobs.CompleteWork(
        jobs_pb2.CompleteWorkRequest(
            request_id=str(uuid.uuid4()),
            work_order_id=work_order_id,
            completion=completion_report("CLI-LC"),
        ),
        metadata=md,
    )
    return work_order_id


def watched_states(output: str) -> list[str]:
    """The state column of ``orders watch`` lines (``2026-03-02 10:04:01 CET  assigned  ...``)."""
    return [line.split()[3] for line in output.splitlines() if re.match(r"\d{4}-\d\d-\d\d ", line)]


# --------------------------------------------------------------------------- the whole loop


async def test_a_job_goes_from_its_offer_to_closed_through_the_cli_and_watch_sees_every_step(
    stack: Stack,
) -> None:
    work_order_id, external_id = await received_order(stack)
    offer_id = await offer(stack, work_order_id)
    c1, partner = ("--api-key", KEYS["c1"]), ("--api-key", KEYS["partner"])
    head = f"work order {work_order_id} ({external_id}): "

    watcher = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "fixloop_cli", "orders", "watch", work_order_id, *partner, "--timeout", "120"),
        env=cli_env(stack.target, stack.bootstrap),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        offers = ok(await fixloop(stack, "jobs", "offers", *c1))
        assert offer_id in offers
        assert work_order_id in offers

        accepted = ok(await fixloop(stack, "jobs", "accept", offer_id, *c1))
        assert accepted.strip() == f"{head}assigned (offer {offer_id} accepted by {C1})"
        assert work_order_id in ok(await fixloop(stack, "jobs", "list", "--state", "assigned", *c1))

        scheduled = ok(
            await fixloop(
                stack, "jobs", "schedule", work_order_id, "--start", "+1h", "--end", "+3h",
                "--note", "Ring at the loading bay", *c1,
            )
        )  # fmt: skip
        assert scheduled.startswith(f"{head}scheduled (visit ")
        en_route = ok(
            await fixloop(
                stack, "jobs", "progress", work_order_id, "--kind", "en-route", "--eta", "+45m", *c1
            )
        )
        assert en_route.startswith(f"{head}en_route (eta ")
        on_site = ok(
            await fixloop(stack, "jobs", "progress", work_order_id, "--kind", "on-site", *c1)
        )
        assert on_site.startswith(f"{head}on_site")
        commented = ok(await fixloop(stack, "jobs", "comment", work_order_id, "Belt was worn", *c1))
        assert commented.startswith(f"{head}on_site (comment ")

        completed = ok(
            await fixloop(
                stack, "jobs", "complete", work_order_id,
                "--resolution", "replaced_part",
                "--summary", "Replaced the V-belt, ran the unit for 20 minutes.",
                "--labour-minutes", "80",
                "--part", "BLT-V-A42:1", "--part", "FLT-HEPA-24:2",
                "--check", "Airflow measured=passed", "--check", "Noise=n/a",
                "--photo", f"https://files.example.com/p/1.jpg,image/jpeg,123456,{'a' * 64}",
                *c1,
            )
        )  # fmt: skip
        assert completed.strip() == f"{head}work_completed (replaced_part, 80 min, 1 photo)"
        report = (await stack.get(work_order_id)).completion
        assert [(p.part_number, p.quantity) for p in report.parts_used] == [
            ("BLT-V-A42", 1),
            ("FLT-HEPA-24", 2),
        ]
        assert [(c.item, c.outcome) for c in report.checklist] == [
            ("Airflow measured", S.CHECKLIST_OUTCOME_PASSED),
            ("Noise", S.CHECKLIST_OUTCOME_NOT_APPLICABLE),
        ]
        assert report.photos[0].size_bytes == 123456

        verified = ok(
            await fixloop(stack, "orders", "verify", work_order_id, "--note", "ok", *partner)
        )
        assert verified.strip() == f"{head}verified"

        out, err = await asyncio.wait_for(watcher.communicate(), timeout=120)
    finally:
        if watcher.returncode is None:
            watcher.kill()
            await watcher.wait()
    watched = out.decode()
    assert watcher.returncode == 0, err.decode()
    assert "Traceback" not in watched + err.decode()
    states = watched_states(watched)
    assert states == [
        "dispatching",  # where it stood when the watch began
        "assigned",
        "scheduled",
        "en_route",
        "on_site",
        "on_site",  # the comment
        "work_completed",
        "verified",
        "closed",
    ], watched
    assert f"by contractor {C1}" in watched
    assert "text=Belt was worn" in watched  # the comment
    assert "note: Ring at the loading bay" in watched  # the schedule's note
    await stack.wait_state(work_order_id, S.WORK_ORDER_STATE_CLOSED)

    # A closed order: the watch says so and ends at once; the list shows it.
    again = ok(await fixloop(stack, "orders", "watch", work_order_id, *partner))
    assert watched_states(again) == ["closed"]
    listed = ok(await fixloop(stack, "orders", "list", "--state", "closed", *partner))
    row = next(line for line in listed.splitlines() if work_order_id in line)
    assert external_id in row
    assert "closed" in row
    assert "high" in row


async def test_cancel_with_a_reason_and_a_second_cancel_is_refused(stack: Stack) -> None:
    work_order_id, external_id = await received_order(stack)
    operator = ("--api-key", KEYS["operator"])
    cancelled = ok(
        await fixloop(
            stack, "orders", "cancel", work_order_id, "--reason", "ordered twice", *operator
        )
    )
    assert cancelled.strip() == f"work order {work_order_id} ({external_id}): cancelled"
    order = await stack.get(work_order_id)
    assert order.state == S.WORK_ORDER_STATE_CANCELLED
    entry = next(e for e in order.timeline if e.kind == "cancelled")
    assert "ordered twice" in entry.summary + " ".join(entry.details.values())

    again = await fixloop(stack, "orders", "cancel", work_order_id, "--reason", "really", *operator)
    assert one_error_line(again, 1).startswith("error: refused: ")

    watched = ok(await fixloop(stack, "orders", "watch", work_order_id, *operator))
    assert watched_states(watched) == ["cancelled"]


async def test_reject_reopens_then_delay_decline_and_comments(stack: Stack) -> None:
    work_order_id = await completed_order(stack)
    partner, c1 = ("--api-key", KEYS["partner"]), ("--api-key", KEYS["c1"])

    rejected = ok(
        await fixloop(stack, "orders", "reject", work_order_id, "--reason", "Still 27 °C", *partner)
    )
    assert rejected.rstrip().endswith(": assigned")
    delayed = ok(
        await fixloop(
            stack, "jobs", "delay", work_order_id, "--cause", "parts", "--eta", "+1d",
            "--note", "Compressor on order", *c1,
        )
    )  # fmt: skip
    assert ": assigned (delayed: parts, new eta " in delayed
    commented = ok(await fixloop(stack, "orders", "comment", work_order_id, "Thanks", *partner))
    assert re.search(r": assigned \(comment [0-9a-f-]{36} added\)$", commented.strip())
    kinds = [e.kind for e in (await stack.get(work_order_id)).timeline]
    assert {"reopened", "delayed", "comment_added"} <= set(kinds), kinds

    other_id, _ = await received_order(stack)
    offer_id = await offer(stack, other_id)
    declined = ok(await fixloop(stack, "jobs", "decline", offer_id, "--reason", "no capacity", *c1))
    assert declined.strip() == f"offer {offer_id} for work order {other_id}: declined"
    closed_offers = ok(await fixloop(stack, "jobs", "offers", "--all", *c1))
    assert offer_id in closed_offers
    assert offer_id not in ok(await fixloop(stack, "jobs", "offers", *c1))


async def test_list_pages_through_the_tenants_orders_with_filters(stack: Stack) -> None:
    made = await asyncio.gather(*(received_order(stack) for _ in range(4)))
    partner = ("--api-key", KEYS["partner"])

    one_page = UUID.findall(ok(await fixloop(stack, "orders", "list", *partner)))
    assert len(one_page) >= 4
    paged = ok(await fixloop(stack, "orders", "list", "--limit", "3", "--page-size", "1", *partner))
    assert UUID.findall(paged) == one_page[:3], paged  # page by page, the same orders in order
    assert "more orders match: raise --limit" in paged

    recent = ok(
        await fixloop(
            stack, "orders", "list", "--updated-since", "-10m", "--equipment-class", "hvac",
            "--site", "berlin-mitte", "--state", "received", "--state", "dispatching", *partner,
        )
    )  # fmt: skip
    assert all(work_order_id in recent for work_order_id, _ in made)
    none = ok(await fixloop(stack, "orders", "list", "--site", "nowhere", *partner))
    assert none.strip() == "no work orders match"
    other = ok(await fixloop(stack, "orders", "list", "--api-key", KEYS["other"]))
    assert not any(work_order_id in other for work_order_id, _ in made)


# --------------------------------------------------------------------------- refusals


async def test_every_mistake_is_one_line_with_the_right_exit_code(stack: Stack) -> None:
    work_order_id, _ = await received_order(stack)
    unknown = str(uuid.uuid4())
    partner, c1 = ("--api-key", KEYS["partner"]), ("--api-key", KEYS["c1"])
    nowhere = f"127.0.0.1:{free_port()}"
    cases: list[tuple[tuple[str, ...], int, str]] = [
        # bad option values: usage errors, nothing is sent (the parsers' cases: see below)
        (
            ("jobs", "schedule", work_order_id, "--start", "tomorrow", "--end", "+3h", *c1),
            2,
            "'--start': 'tomorrow' is not a time",
        ),
        (
            ("jobs", "complete", work_order_id, "--resolution", "fixed", "--summary", "s",
             "--labour-minutes", "5", "--part", "FLT", *c1),
            2,
            "'--part': 'FLT': expected PART_NUMBER:QUANTITY",
        ),
        (("orders", "list", "--state", "sleeping", *partner), 2, "not a work order state"),
        # refused by the API with field violations: usage errors too
        (
            ("jobs", "complete", work_order_id, "--resolution", "X", "--summary", "s",
             "--labour-minutes", "5", "--photo", f"not-a-uri,text/html,10,{'b' * 64}", *c1),
            2,
            "invalid request: completion.resolution_code: ",
        ),
        # unknown ids, wrong keys, a step the state does not allow, no server
        (
            ("orders", "verify", unknown, *partner),
            1,
            f"work order {unknown} not found for this API key's tenant",
        ),
        (
            ("orders", "show", work_order_id, "--api-key", KEYS["other"]),
            1,
            f"work order {work_order_id} not found for this API key's tenant",
        ),
        (
            ("jobs", "accept", "offer-that-never-was", *c1),
            1,
            "offer offer-that-never-was not found for this API key's contractor",
        ),
        (
            ("orders", "list", "--api-key", "wrong-key"),
            1,
            "the orders gRPC API rejected the API key",
        ),
        (("orders", "list", *c1), 1, "this API key may not list work orders"),
        (("orders", "verify", work_order_id, *partner), 1, "refused: "),
        (
            ("orders", "cancel", work_order_id, "--reason", "x", *partner, "--target", nowhere),
            1,
            f"cannot reach the orders gRPC API at {nowhere}",
        ),
    ]  # fmt: skip
    results = await asyncio.gather(*(fixloop(stack, *args) for args, _, _ in cases))
    failures = []
    for (args, code, needle), result in zip(cases, results, strict=True):
        try:
            line = one_error_line(result, code)
            assert needle in line, line
        except AssertionError as exc:
            failures.append(f"fixloop {' '.join(args)}: {exc}")
    assert not failures, "\n".join(failures)
    assert (await stack.get(work_order_id)).state == S.WORK_ORDER_STATE_RECEIVED


async def test_a_failed_step_can_be_retried_with_its_request_id(stack: Stack) -> None:
    work_order_id, external_id = await received_order(stack)
    request_id = str(uuid.uuid4())
    partner = ("--api-key", KEYS["partner"])
    args = ("orders", "comment", work_order_id, "Gate code 4711", "--request-id", request_id)
    first = ok(await fixloop(stack, *args, *partner))
    again = ok(await fixloop(stack, *args, *partner))
    assert first == again  # the same answer, the same comment id
    kinds = [e.kind for e in (await stack.get(work_order_id)).timeline]
    assert kinds.count("comment_added") == 1
    changed = await fixloop(
        stack, "orders", "comment", work_order_id, "Other text", "--request-id", request_id,
        *partner,
    )  # fmt: skip
    assert "invalid request: " in one_error_line(changed, 2)
    assert external_id in first


async def test_the_watch_gives_up_after_its_timeout(stack: Stack) -> None:
    work_order_id, _ = await received_order(stack)
    result = await fixloop(
        stack, "orders", "watch", work_order_id, "--api-key", KEYS["partner"], "--timeout", "2"
    )
    line = one_error_line(result, 1)
    assert line == f"error: work order {work_order_id} is still received after 2s"
    assert watched_states(result.stdout) == ["received"]


# --------------------------------------------------------------------------- fixloop demo


def demo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fixloop_cli", "demo", *args],
        env=env or cli_env(f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_demo_refuses_bad_arguments_with_one_line() -> None:
    for args, needle in (
        (("--orders", "0"), "'--orders'"),
        (("--partner-key", ""), "--partner-key"),
    ):
        result = demo(*args)
        assert needle in one_error_line(result, 2), args


def test_demo_without_a_stack_says_so_in_one_line() -> None:
    result = demo("--orders", "2")
    assert "cannot reach the orders gRPC API" in one_error_line(result, 1)
    assert "is the stack running?" in result.stderr
    assert result.stdout == ""


async def test_demo_with_a_wrong_key_or_without_a_broker_says_so_in_one_line(
    stack: Stack,
) -> None:
    env = cli_env(stack.target, f"127.0.0.1:{free_port()}")
    keys = ("--partner-key", KEYS["partner"], "--contractor-key", KEYS["c1"])
    wrong, no_broker = await asyncio.gather(
        asyncio.to_thread(demo, "--partner-key", "wrong-key", env=env),
        asyncio.to_thread(demo, *keys, env=env),
    )
    assert "rejected the API key" in one_error_line(wrong, 1)
    assert "--partner-key" in wrong.stderr
    assert "cannot reach Kafka at 127.0.0.1:" in one_error_line(no_broker, 1)


def test_the_demo_order_is_the_example_order_and_valid_when_fresh() -> None:
    example = json.loads((ROOT / "examples" / "orders" / "hvac-breakdown-berlin.json").read_text())
    assert example == DEMO_ORDER
    now = datetime.now(UTC)
    doc = demo_event("DEMO-1a2b3c4d", now)
    event = decode_event(json.dumps(doc).encode(), [], INBOUND_EVENT_TYPES, accept_structured=True)
    assert event.payload.external_id == "DEMO-1a2b3c4d"  # type: ignore[attr-defined]
    assert event.envelope.id != DEMO_ORDER["id"]
    assert event.envelope.time >= now - timedelta(seconds=1)
    assert DEMO_ORDER["data"]["external_id"] == "FH-2026-118734"  # the constant is untouched


# --------------------------------------------------------------------------- option values


def test_option_values_are_parsed_or_refused_with_what_is_expected() -> None:
    now = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    assert parse_time("+2h", now=now) == now + timedelta(hours=2)
    assert parse_time("1d2h30m", now=now) == now + timedelta(days=1, hours=2, minutes=30)
    assert parse_time("-30m", now=now) == now - timedelta(minutes=30)
    assert parse_time("2h", past=True, now=now) == now - timedelta(hours=2)
    assert parse_time("2026-03-02T09:00:00+01:00") == now
    assert parse_time("2026-03-02T08:00:00Z") == now
    for bad in ("tomorrow", "2026-03-02T09:00:00", "2026-03-02", "+2x", "", "+"):
        with pytest.raises(typer.BadParameter):
            parse_time(bad, now=now)

    assert parse_part("FLT-HEPA-24:2") == PartQuantity("FLT-HEPA-24", 2)
    for bad in ("FLT", "FLT:", ":2", "FLT:two", "FLT:0", "FLT:10001", "a b:1"):
        with pytest.raises(typer.BadParameter):
            parse_part(bad)

    assert parse_check("Airflow = ok=passed") == Check("Airflow = ok", 1)
    assert parse_check("Noise=N/A").outcome == 3
    for bad in ("Airflow", "=passed", "Airflow=great"):
        with pytest.raises(typer.BadParameter):
            parse_check(bad)

    photo = parse_photo(f"https://x.example/a,b.jpg,image/jpeg,1234,{'A' * 64}")
    assert photo == PhotoRef("https://x.example/a,b.jpg", "image/jpeg", 1234, "a" * 64)
    for bad in ("https://x.example/1.jpg,image/jpeg", "u,image/jpeg,big,abc"):
        with pytest.raises(typer.BadParameter):
            parse_photo(bad)

    assert parse_state("en-route") == S.WORK_ORDER_STATE_EN_ROUTE
    assert parse_state("WORK_COMPLETED") == S.WORK_ORDER_STATE_WORK_COMPLETED
    for bad in ("sleeping", "dispatch_requested", "unspecified"):
        with pytest.raises(typer.BadParameter):
            parse_state(bad)
