"""The operators' SLA reads (``fixloop.v1.SlaService`` and ``fixloop sla at-risk|report``) over
records of the SLA engine's shape, on the embedded store.

Two tenants' ``sla_orders`` and ``sla_cycles`` are written as the engine writes them; the gRPC
server runs on a free loopback port with real channels and API keys, and the CLI commands run
against the same database.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
import typer
from google.protobuf import duration_pb2, timestamp_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from typer.testing import CliRunner

from fixloop.v1 import sla_service_pb2, sla_service_pb2_grpc
from fixloop_devkit.testing import unique
from fixloop_shared.errors import InvalidInput
from fixloop_shared.grpc_edge.hosting import HostedGrpcApi
from fixloop_shared.grpc_edge.principals import PrincipalKind, PrincipalSpec, hash_api_key
from fixloop_shared.runtime import build_context
from fixloop_shared.topics import Service
from fixloop_sla.adapters.sla_api import (
    NOT_FOUND_MESSAGE,
    OPERATORS_ONLY_MESSAGE,
    SERVICE_NAME,
    sla_api,
)
from fixloop_sla.app.reporting import SLA_CYCLES, SLA_ORDERS, SlaReports, report_indexes
from fixloop_sla.cli_reports import register
from fixloop_sla.domain.report import ReportGroup
from fixloop_sla.settings import SlaSettings

pytestmark = pytest.mark.integration

PREFIX = unique("sla-api")
TENANT = unique("acme")
OTHER_TENANT = unique("globex")
KEYS = {role: f"{PREFIX}-{role}-key" for role in ("operator", "partner", "other-operator")}
NOW = datetime.now(UTC).replace(microsecond=0)
MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def principals() -> list[PrincipalSpec]:
    def spec(role: str, kind: PrincipalKind, tenant: str) -> PrincipalSpec:
        return PrincipalSpec(
            id=f"{PREFIX}-{role}", kind=kind, key_hashes=[hash_api_key(KEYS[role])], tenant=tenant
        )

    return [
        spec("operator", PrincipalKind.OPERATOR, TENANT),
        spec("partner", PrincipalKind.PARTNER, TENANT),
        spec("other-operator", PrincipalKind.OPERATOR, OTHER_TENANT),
    ]


@dataclass(frozen=True)
class Orders:
    breached: str
    due_soon: str
    predicted_late: str
    in_time: str
    paused: str
    theirs: str


ORDERS = Orders(*(str(uuid.uuid4()) for _ in range(6)))


def open_entry(
    clock: str,
    cycle: int,
    *,
    deadline: datetime | None,
    state: str = "running",
    breached: datetime | None = None,
    predicted: datetime | None = None,
) -> dict[str, Any]:
    return {
        "clock": clock,
        "cycle": cycle,
        "state": state,
        "started_ms": ms(NOW - 3 * HOUR),
        "deadline_ms": None if deadline is None else ms(deadline),
        "warn_ms": None,
        "breached_ms": None if breached is None else ms(breached),
        "predicted_ms": None if predicted is None else ms(predicted),
        "basis": None if predicted is None else "contractor_eta",
        "policy_version": 1,
    }


def order(
    work_order_id: str, tenant: str, contractor: str, *entries: dict[str, Any]
) -> dict[str, Any]:
    dues = [e["breached_ms"] or e["deadline_ms"] for e in entries]
    known = [due for due in dues if due is not None]
    return {
        "_id": work_order_id,
        "tenant": tenant,
        "partition": 0,
        "next_due_ms": min(known, default=None),
        "contractor_id": contractor,
        "profile": {
            "priority": "high",
            "equipment_class": "hvac",
            "category": "breakdown",
            "site_timezone": "Europe/Berlin",
        },
        "open": list(entries),
        "earliest_deadline_ms": min(known, default=None),
        "facts": [{"internal": True}],
    }


def cycle_record(
    work_order_id: str,
    clock: str,
    cycle: int,
    outcome: str,
    *,
    closed: datetime,
    tenant: str = TENANT,
    contractor: str | None = "ctr-1",
) -> dict[str, Any]:
    deadline = closed - HOUR if outcome == "missed" else closed + HOUR
    return {
        "_id": f"{work_order_id}/{clock}/{cycle}",
        "work_order_id": work_order_id,
        "tenant": tenant,
        "clock": clock,
        "cycle": cycle,
        "outcome": outcome,
        "breached": outcome == "missed",
        "started_ms": ms(closed - 4 * HOUR),
        "closed_ms": ms(closed),
        "deadline_ms": ms(deadline),
        "original_deadline_ms": ms(deadline),
        "breach_margin_seconds": (closed - deadline).total_seconds(),
        "paused_seconds": 0.0,
        "business_seconds": 4 * 3600.0,
        "wall_seconds": 4 * 3600.0,
        "policy_name": "standard",
        "policy_version": 1,
        "calendar": "24x7",
        "calendar_version": 1,
        "timezone": "Europe/Berlin",
        "timezone_source": "site",
        "contractor_id": contractor,
        "equipment_class": "hvac",
        "priority": "high",
        "category": "breakdown",
        "revision": 1,
    }


def orders_documents() -> list[dict[str, Any]]:
    o = ORDERS
    return [
        order(
            o.breached,
            TENANT,
            "ctr-1",
            open_entry("arrival", 2, deadline=NOW - 30 * MINUTE, breached=NOW - 30 * MINUTE),
        ),
        order(o.due_soon, TENANT, "ctr-2", open_entry("repair", 1, deadline=NOW + HOUR)),
        order(
            o.predicted_late,
            TENANT,
            "ctr-1",
            open_entry("arrival", 1, deadline=NOW + 10 * HOUR, predicted=NOW + 12 * HOUR),
        ),
        order(o.in_time, TENANT, "ctr-2", open_entry("repair", 1, deadline=NOW + 20 * HOUR)),
        order(o.paused, TENANT, "ctr-2", open_entry("repair", 1, deadline=None, state="paused")),
        order(
            o.theirs,
            OTHER_TENANT,
            "ctr-9",
            open_entry("arrival", 1, deadline=NOW - 2 * HOUR, breached=NOW - 2 * HOUR),
        ),
    ]


def cycles_documents() -> list[dict[str, Any]]:
    o = ORDERS
    return [
        cycle_record(o.breached, "arrival", 1, "missed", closed=NOW - 2 * DAY),
        cycle_record(o.due_soon, "arrival", 1, "met", closed=NOW - DAY, contractor="ctr-2"),
        cycle_record(o.in_time, "arrival", 1, "met", closed=NOW - 3 * DAY, contractor="ctr-2"),
        cycle_record(o.predicted_late, "dispatch_confirmation", 1, "met", closed=NOW - DAY),
        cycle_record(o.in_time, "dispatch_confirmation", 1, "cancelled", closed=NOW - DAY),
        # before the period
        cycle_record(o.due_soon, "repair", 1, "missed", closed=NOW - 30 * DAY),
        # another tenant's, in the period
        cycle_record(
            o.theirs, "arrival", 1, "missed", closed=NOW - DAY, tenant=OTHER_TENANT, contractor="x"
        ),
    ]


@dataclass(frozen=True)
class Running:
    settings: SlaSettings
    reports: SlaReports
    api: HostedGrpcApi


@pytest.fixture(scope="module")
async def running(mongodb_uri: str) -> AsyncIterator[Running]:
    settings = SlaSettings(
        mongodb_uri=mongodb_uri,
        database=unique("sla_api").replace("-", "_"),
        health_port=0,
        grpc_port=0,
        grpc_rate_limit="",
        principals=principals(),
    )
    ctx = build_context(Service.SLA.value, settings)
    await ctx.store.ensure_indexes(report_indexes())
    await ctx.store.db[SLA_ORDERS].insert_many(orders_documents())
    await ctx.store.db[SLA_CYCLES].insert_many(cycles_documents())
    reports = SlaReports(ctx.store.db, clock=lambda: NOW)
    api = sla_api(settings, reports, ctx, clock=lambda: NOW)
    assert api.start in ctx.on_startup
    assert api.stop in ctx.on_shutdown
    await api.start()
    try:
        yield Running(settings, reports, api)
    finally:
        await api.stop()
        await ctx.store.client.close()


@pytest.fixture
async def stub(running: Running) -> AsyncIterator[sla_service_pb2_grpc.SlaServiceStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.api.bound_port}") as channel:
        yield sla_service_pb2_grpc.SlaServiceStub(channel)  # type: ignore[no-untyped-call]


def metadata(role: str | None) -> tuple[tuple[str, str], ...]:
    return () if role is None else (("x-api-key", KEYS[role]),)


def rich(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    status = rpc_status.from_call(error)
    assert status is not None, "no google.rpc.Status in the trailers"
    return status


def violated_fields(error: grpc.aio.AioRpcError) -> list[str]:
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    [detail] = rich(error).details
    bad_request = error_details_pb2.BadRequest()
    assert detail.Unpack(bad_request)
    return [v.field for v in bad_request.field_violations]


def stamp(moment: datetime) -> timestamp_pb2.Timestamp:
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(moment)
    return message


async def at_risk(
    stub: sla_service_pb2_grpc.SlaServiceStub, page_size: int, role: str | None = "operator"
) -> sla_service_pb2.ListAtRiskClocksResponse:
    response: sla_service_pb2.ListAtRiskClocksResponse = await stub.ListAtRiskClocks(
        sla_service_pb2.ListAtRiskClocksRequest(
            page_size=page_size, within=duration_pb2.Duration(seconds=2 * 3600)
        ),
        metadata=metadata(role),
        timeout=10,
    )
    return response


async def report(
    stub: sla_service_pb2_grpc.SlaServiceStub,
    start: datetime,
    end: datetime,
    group_by: sla_service_pb2.SlaReportGrouping = sla_service_pb2.SLA_REPORT_GROUPING_UNSPECIFIED,
    role: str = "operator",
) -> sla_service_pb2.GetSlaReportResponse:
    response: sla_service_pb2.GetSlaReportResponse = await stub.GetSlaReport(
        sla_service_pb2.GetSlaReportRequest(
            start_time=stamp(start), end_time=stamp(end), group_by=group_by
        ),
        metadata=metadata(role),
        timeout=10,
    )
    return response


async def clocks(
    stub: sla_service_pb2_grpc.SlaServiceStub, work_order_id: str, role: str | None = "operator"
) -> sla_service_pb2.GetWorkOrderClocksResponse:
    response: sla_service_pb2.GetWorkOrderClocksResponse = await stub.GetWorkOrderClocks(
        sla_service_pb2.GetWorkOrderClocksRequest(work_order_id=work_order_id),
        metadata=metadata(role),
        timeout=10,
    )
    return response


# ------------------------------------------------------------------------------ what is shown


async def test_at_risk_clocks_come_least_time_left_first(
    stub: sla_service_pb2_grpc.SlaServiceStub,
) -> None:
    answer = await at_risk(stub, 10)
    assert [(c.work_order_id, c.cycle.clock, c.reason) for c in answer.clocks] == [
        (ORDERS.breached, "arrival", sla_service_pb2.RISK_REASON_BREACHED),
        (ORDERS.due_soon, "repair", sla_service_pb2.RISK_REASON_DUE_SOON),
        (ORDERS.predicted_late, "arrival", sla_service_pb2.RISK_REASON_PREDICTED_LATE),
    ]
    breached, due_soon, late = answer.clocks
    assert breached.time_left.ToTimedelta() == -30 * MINUTE
    assert breached.cycle.breached_at.ToDatetime(tzinfo=UTC) == NOW - 30 * MINUTE
    assert (breached.cycle.cycle, breached.contractor_id) == (2, "ctr-1")
    assert due_soon.time_left.ToTimedelta() == HOUR
    assert not due_soon.HasField("predicted_lateness")
    assert late.predicted_lateness.ToTimedelta() == 2 * HOUR
    assert late.cycle.prediction_basis == "contractor_eta"
    assert answer.as_of.ToDatetime(tzinfo=UTC) == NOW
    first_two = await at_risk(stub, 2)
    assert [c.work_order_id for c in first_two.clocks] == [ORDERS.breached, ORDERS.due_soon]


async def test_the_report_counts_the_period_and_the_breached_open_cycles(
    stub: sla_service_pb2_grpc.SlaServiceStub,
) -> None:
    answer = await report(stub, NOW - 7 * DAY, NOW + MINUTE)
    rows = {row.clock: row for row in answer.rows}
    assert list(rows) == ["arrival", "dispatch_confirmation"]
    arrival, dispatch = rows["arrival"], rows["dispatch_confirmation"]
    assert (arrival.met, arrival.missed, arrival.cancelled) == (2, 1, 0)
    assert (arrival.running_breached, arrival.ever_breached) == (1, 1)
    assert arrival.compliance_percent == pytest.approx(50.0)
    assert (dispatch.met, dispatch.cancelled, dispatch.compliance_percent) == (1, 1, 100.0)
    by_contractor = await report(
        stub, NOW - 7 * DAY, NOW + MINUTE, sla_service_pb2.SLA_REPORT_GROUPING_CONTRACTOR
    )
    assert [
        (r.group, r.clock, r.met, r.missed, r.running_breached) for r in by_contractor.rows
    ] == [
        ("ctr-1", "arrival", 0, 1, 1),
        ("ctr-1", "dispatch_confirmation", 1, 0, 0),
        ("ctr-2", "arrival", 2, 0, 0),
    ]
    quiet = await report(stub, NOW - 100 * DAY, NOW - 90 * DAY)
    assert list(quiet.rows) == []


async def test_a_work_orders_clocks_open_and_closed(
    stub: sla_service_pb2_grpc.SlaServiceStub,
) -> None:
    answer = await clocks(stub, ORDERS.breached)
    assert answer.work_order_id == ORDERS.breached
    assert (answer.contractor_id, answer.priority, answer.site_timezone) == (
        "ctr-1",
        "high",
        "Europe/Berlin",
    )
    [running] = answer.open_cycles
    assert (running.clock, running.cycle, running.state) == (
        "arrival",
        2,
        sla_service_pb2.CLOCK_CYCLE_STATE_RUNNING,
    )
    [closed] = answer.closed_cycles
    assert (closed.clock, closed.cycle, closed.outcome, closed.breached) == (
        "arrival",
        1,
        sla_service_pb2.CLOCK_CYCLE_OUTCOME_MISSED,
        True,
    )
    assert closed.breach_margin_seconds == pytest.approx(3600.0)
    assert closed.closed_at.ToDatetime(tzinfo=UTC) == NOW - 2 * DAY


# ------------------------------------------------------------------------------ tenants


async def test_another_tenants_order_looks_exactly_like_an_unknown_one(
    stub: sla_service_pb2_grpc.SlaServiceStub,
) -> None:
    errors = []
    for work_order_id in (ORDERS.breached, str(uuid.uuid4())):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await clocks(stub, work_order_id, "other-operator")
        errors.append(caught.value)
    theirs, unknown = errors
    for error in errors:
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert error.details() == NOT_FOUND_MESSAGE
    assert rich(theirs) == rich(unknown)
    assert ORDERS.breached not in str(rich(theirs))


async def test_another_tenants_cycles_are_in_no_answer(
    stub: sla_service_pb2_grpc.SlaServiceStub,
) -> None:
    mine = await at_risk(stub, 1000)
    assert ORDERS.theirs not in {c.work_order_id for c in mine.clocks}
    theirs = await at_risk(stub, 1000, "other-operator")
    assert [c.work_order_id for c in theirs.clocks] == [ORDERS.theirs]
    other = await report(stub, NOW - 7 * DAY, NOW + MINUTE, role="other-operator")
    [row] = other.rows
    assert (row.clock, row.missed, row.running_breached, row.met) == ("arrival", 1, 1, 0)


# ------------------------------------------------------------------------------ refusals


async def test_only_operators_may_call(stub: sla_service_pb2_grpc.SlaServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await at_risk(stub, 10, "partner")
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.details() == OPERATORS_ONLY_MESSAGE


async def test_a_call_without_a_key_is_unauthenticated(
    stub: sla_service_pb2_grpc.SlaServiceStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await clocks(stub, ORDERS.breached, None)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_bad_input_is_invalid_argument_with_field_violations(
    stub: sla_service_pb2_grpc.SlaServiceStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await at_risk(stub, 0)
    assert violated_fields(caught.value) == ["page_size"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await report(stub, NOW, NOW - DAY)
    assert violated_fields(caught.value) == ["end_time"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await report(stub, NOW - 400 * DAY, NOW)
    assert violated_fields(caught.value) == ["end_time"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetSlaReport(
            sla_service_pb2.GetSlaReportRequest(), metadata=metadata("operator"), timeout=10
        )
    assert violated_fields(caught.value) == ["start_time", "end_time"]


@pytest.mark.parametrize("work_order_id", ['{"$ne": null}', "{'$ne': None}", "", "../x"])
async def test_an_operator_looking_id_is_data(
    running: Running, stub: sla_service_pb2_grpc.SlaServiceStub, work_order_id: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await clocks(stub, work_order_id)
    assert violated_fields(caught.value) == ["work_order_id"]
    with pytest.raises(InvalidInput):
        await running.reports.work_order_clocks(tenant=TENANT, work_order_id=work_order_id)


async def test_the_reads_refuse_what_is_not_a_plain_value(running: Running) -> None:
    reports = running.reports
    with pytest.raises(InvalidInput):
        await reports.work_order_clocks(tenant=TENANT, work_order_id={"$ne": None})  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        await reports.work_order_clocks(tenant={"$ne": None}, work_order_id=ORDERS.breached)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        await reports.at_risk(tenant=TENANT, now=NOW, within=HOUR, limit=1001)
    with pytest.raises(InvalidInput):
        await reports.report(
            tenant=TENANT, start=NOW - 367 * DAY, end=NOW, by=ReportGroup.NONE, now=NOW
        )


async def test_health_answers_without_a_key(running: Running) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.api.bound_port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        answer = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


# ------------------------------------------------------------------------------ the CLI


@pytest.fixture
def cli(running: Running) -> tuple[typer.Typer, dict[str, str]]:
    app = typer.Typer(pretty_exceptions_enable=False)

    @app.callback()
    def sla() -> None:
        """SLA."""

    register(app)
    env = {
        "FIXLOOP_SLA_MONGODB_URI": running.settings.mongodb_uri,
        "FIXLOOP_SLA_DATABASE": running.settings.database,
    }
    return app, env


def test_cli_at_risk_lists_every_tenants_clocks_or_one_tenants(
    cli: tuple[typer.Typer, dict[str, str]],
) -> None:
    app, env = cli
    result = CliRunner().invoke(app, ["at-risk", "--json"], env=env)
    assert result.exit_code == 0, result.output
    shown = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["work_order_id"], r["reason"]) for r in shown] == [
        (ORDERS.theirs, "breached"),
        (ORDERS.breached, "breached"),
        (ORDERS.due_soon, "due_soon"),
        (ORDERS.predicted_late, "predicted_late"),
    ]
    assert shown[1]["deadline"] == (NOW - 30 * MINUTE).strftime("%Y-%m-%dT%H:%M:%SZ")
    table = CliRunner().invoke(app, ["at-risk", "--tenant", TENANT, "--limit", "2"], env=env)
    assert table.exit_code == 0, table.output
    assert "2 clocks at risk" in table.stdout
    assert ORDERS.theirs[:8] not in table.stdout
    assert "Z" in table.stdout


def test_cli_report_by_tenant(cli: tuple[typer.Typer, dict[str, str]]) -> None:
    app, env = cli
    start = (NOW - 7 * DAY).date().isoformat()
    result = CliRunner().invoke(
        app, ["report", "--from", start, "--by", "tenant", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    rows = {(r["group"], r["clock"]): r for r in map(json.loads, result.stdout.splitlines())}
    assert rows[(TENANT, "arrival")]["compliance_percent"] == pytest.approx(50.0)
    assert rows[(OTHER_TENANT, "arrival")]["missed"] == 1
    table = CliRunner().invoke(
        app, ["report", "--from", start, "--tenant", TENANT, "--by", "contractor"], env=env
    )
    assert table.exit_code == 0, table.output
    assert "SLA compliance" in table.stdout
    assert "ctr-1" in table.stdout
    assert "ctr-2" in table.stdout
    assert "100.0%" in table.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["at-risk", "--within", "soon"],
        ["at-risk", "--limit", "0"],
        ["at-risk", "--tenant", '{"$ne": null}'],
        ["report"],
        ["report", "--from", "2025-02-01", "--to", "2025-01-01"],
        ["report", "--from", "yesterday"],
        ["report", "--from", "2025-01-01", "--by", "weather"],
    ],
)
def test_cli_bad_arguments_are_one_line_and_exit_2(
    cli: tuple[typer.Typer, dict[str, str]], args: list[str]
) -> None:
    app, env = cli
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 2, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ")


def test_cli_an_unreachable_store_is_one_line_and_exit_1(
    cli: tuple[typer.Typer, dict[str, str]],
) -> None:
    app, env = cli
    unreachable = {**env, "FIXLOOP_SLA_MONGODB_URI": "mongodb://127.0.0.1:9/?directConnection=true"}
    started = time.monotonic()
    result = CliRunner().invoke(app, ["at-risk"], env=unreachable)
    assert time.monotonic() - started < 8
    assert result.exit_code == 1, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("error: the sla store")
