"""The orders gRPC edge against a real ``grpc.aio`` server on a free loopback port.

The read side is an in-memory ``WorkOrderQueries``: what is under test here is the edge —
authentication of principals, tenant scoping, validation, rich errors, deadlines, rate limits,
the call log, health, reflection, CLI.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from typer.testing import CliRunner

from fixloop.v1 import work_order_pb2, work_orders_service_pb2, work_orders_service_pb2_grpc
from fixloop_orders.adapters.grpc_api import SERVICE_NAME, start_grpc_server
from fixloop_orders.app.queries import (
    OfferPosition,
    OfferView,
    PagePosition,
    TimelineEntryView,
    WorkOrderFilter,
    WorkOrderView,
)
from fixloop_orders.cli import app as orders_cli
from fixloop_orders.domain.details import Address, Equipment, PartLine, Requester, Site
from fixloop_shared.grpc_edge.auth import CALL_LOG_MESSAGE, REFUSED_LOG_MESSAGE
from fixloop_shared.grpc_edge.principals import (
    PrincipalDirectory,
    PrincipalKind,
    PrincipalSpec,
    hash_api_key,
)
from fixloop_shared.grpc_edge.server import stop_server
from fixloop_shared.vocabulary import Category, Priority, WorkOrderState

pytestmark = pytest.mark.integration

ACME_KEY = "acme-test-key-7f3a9c"
ACME_NEXT_KEY = "acme-test-key-rotated-51e0d7"  # the key acme-erp is being rotated to
GLOBEX_KEY = "globex-test-key-2b8d41"
ACME_OPS_KEY = "acme-ops-test-key-c09a33"
CONTRACTOR_KEY = "klima-app-test-key-90be12"
PRINCIPALS = PrincipalDirectory.of(
    [
        PrincipalSpec(
            id="acme-erp",
            kind=PrincipalKind.PARTNER,
            tenant="acme",
            key_hashes=[hash_api_key(ACME_KEY), hash_api_key(ACME_NEXT_KEY)],
        ),
        PrincipalSpec(
            id="globex-erp",
            kind=PrincipalKind.PARTNER,
            tenant="globex",
            key_hashes=[hash_api_key(GLOBEX_KEY)],
        ),
        PrincipalSpec(
            id="acme-ops",
            kind=PrincipalKind.OPERATOR,
            tenant="acme",
            key_hashes=[hash_api_key(ACME_OPS_KEY)],
        ),
        PrincipalSpec(
            id="klima-app",
            kind=PrincipalKind.CONTRACTOR,
            contractor_id="ctr-berliner-klima",
            key_hashes=[hash_api_key(CONTRACTOR_KEY)],
        ),
    ]
)
ALL_KEYS = (ACME_KEY, ACME_NEXT_KEY, GLOBEX_KEY, ACME_OPS_KEY, CONTRACTOR_KEY)

ACME_ORDER = "6f1d2a52-8c1e-4b8e-9a57-2f0c4b1d9e01"
GLOBEX_ORDER = "0b5e1c1e-3f43-4f9a-9d51-0f4c9d3a7b21"
SLOW_ORDER = "aaaaaaaa-0000-4000-8000-000000000001"
BROKEN_ORDER = "aaaaaaaa-0000-4000-8000-000000000002"
QUERY_TIMEOUT_SECONDS = 0.5
RECEIVED_AT = datetime(2026, 3, 2, 8, 15, tzinfo=UTC)


def _view(work_order_id: str, tenant: str) -> WorkOrderView:
    received = TimelineEntryView(
        entry_id=f"{work_order_id}:1",
        at=RECEIVED_AT,
        kind="received",
        summary="Work order received and stored",
        event_type="fixloop.workorder.received.v1",
        details={"source_platform": "marketplace.example"},
    )
    requested = TimelineEntryView(
        entry_id=f"{work_order_id}:2",
        at=RECEIVED_AT + timedelta(seconds=2),
        kind="dispatching",
        summary="Looking for a qualified contractor",
        event_type=None,
        details={},
    )
    return WorkOrderView(
        work_order_id=work_order_id,
        tenant=tenant,
        state="dispatching",
        source_platform="marketplace.example",
        external_id=f"EXT-{tenant.upper()}-1",
        site=Site(
            site_id="berlin-mitte",
            name=f"{tenant.title()} Store Berlin Mitte",
            address=Address(
                line1="Rosenthaler Str. 40",
                city="Berlin",
                postal_code="10178",
                country="DE",
            ),
            timezone="Europe/Berlin",
        ),
        equipment=Equipment(
            equipment_id="fridge-12",
            equipment_class="refrigeration",
            manufacturer="Frostline",
        ),
        category=Category.BREAKDOWN,
        priority=Priority.HIGH,
        description="Cold room at 9 degrees, should be 2.",
        requester=Requester(
            name="Mara Keller",
            email="mara.keller@example.com",
            locale="de-DE",
            phone="+49 30 1234567",
        ),
        required_parts=(PartLine(part_number="FAN-220", quantity=2),),
        received_at=RECEIVED_AT,
        updated_at=RECEIVED_AT + timedelta(seconds=2),
        timeline=(received, requested),
    )


@dataclass
class InMemoryWorkOrders:
    """Tenant-scoped reads over a dict, plus two ids that misbehave on purpose."""

    orders: Mapping[str, WorkOrderView]

    async def get_work_order(self, tenant: str, work_order_id: str) -> WorkOrderView | None:
        if work_order_id == SLOW_ORDER:
            await asyncio.sleep(30)
        if work_order_id == BROKEN_ORDER:
            msg = "connection to db-internal-7.prod:27017 refused"
            raise RuntimeError(msg)
        view = self.orders.get(work_order_id)
        return view if view is not None and view.tenant == tenant else None

    async def list_work_orders(
        self, tenant: str, wanted: WorkOrderFilter, *, after: PagePosition | None, limit: int
    ) -> list[WorkOrderView]:
        return []

    async def list_jobs(
        self,
        contractor_id: str,
        states: frozenset[WorkOrderState],
        *,
        after: PagePosition | None,
        limit: int,
    ) -> list[WorkOrderView]:
        return []

    async def list_offers(
        self, contractor_id: str, *, open_only: bool, after: OfferPosition | None, limit: int
    ) -> list[OfferView]:
        return []


@dataclass(frozen=True)
class RunningEdge:
    target: str
    channel: grpc.aio.Channel

    @property
    def stub(self) -> work_orders_service_pb2_grpc.WorkOrdersServiceStub:
        return work_orders_service_pb2_grpc.WorkOrdersServiceStub(self.channel)  # type: ignore[no-untyped-call]


@pytest.fixture(scope="module")
async def edge() -> AsyncIterator[RunningEdge]:
    queries = InMemoryWorkOrders(
        {
            ACME_ORDER: _view(ACME_ORDER, "acme"),
            GLOBEX_ORDER: _view(GLOBEX_ORDER, "globex"),
        }
    )
    server, port, health = await start_grpc_server(
        queries,
        host="127.0.0.1",
        port=0,
        principals=PRINCIPALS,
        reflection=True,
        query_timeout_seconds=QUERY_TIMEOUT_SECONDS,
    )
    target = f"127.0.0.1:{port}"
    channel = grpc.aio.insecure_channel(target)
    try:
        yield RunningEdge(target=target, channel=channel)
    finally:
        await channel.close()
        await stop_server(server, health, grace=1.0)


async def _get(
    edge: RunningEdge,
    work_order_id: str,
    metadata: tuple[tuple[str, str], ...] = (("x-api-key", ACME_KEY),),
    deadline_seconds: float | None = 5.0,
) -> work_orders_service_pb2.GetWorkOrderResponse:
    request = work_orders_service_pb2.GetWorkOrderRequest(work_order_id=work_order_id)
    response: work_orders_service_pb2.GetWorkOrderResponse = await edge.stub.GetWorkOrder(
        request, metadata=metadata, timeout=deadline_seconds
    )
    return response


async def _error(
    edge: RunningEdge,
    work_order_id: str,
    metadata: tuple[tuple[str, str], ...] = (("x-api-key", ACME_KEY),),
    deadline_seconds: float | None = 5.0,
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _get(edge, work_order_id, metadata, deadline_seconds)
    return caught.value


def _rich(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    status = rpc_status.from_call(error)
    assert status is not None, "no google.rpc.Status in the trailers"
    return status


# ------------------------------------------------------------------------- authentication


async def test_no_key_is_unauthenticated(edge: RunningEdge) -> None:
    error = await _error(edge, ACME_ORDER, metadata=())
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error.details() == "missing or invalid API key"


async def test_wrong_key_is_unauthenticated_with_the_same_answer(edge: RunningEdge) -> None:
    missing = await _error(edge, ACME_ORDER, metadata=())
    wrong = await _error(edge, ACME_ORDER, metadata=(("x-api-key", ACME_KEY + "x"),))
    assert wrong.code() == grpc.StatusCode.UNAUTHENTICATED
    assert wrong.details() == missing.details()
    assert ACME_KEY not in (wrong.details() or "")


async def test_two_different_keys_are_unauthenticated(edge: RunningEdge) -> None:
    error = await _error(
        edge,
        ACME_ORDER,
        metadata=(("x-api-key", ACME_KEY), ("authorization", f"Bearer {GLOBEX_KEY}")),
    )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_bearer_token_is_accepted(edge: RunningEdge) -> None:
    response = await _get(edge, ACME_ORDER, metadata=(("authorization", f"Bearer {ACME_KEY}"),))
    assert response.work_order.id == ACME_ORDER


async def test_unauthenticated_call_is_rejected_before_validation(edge: RunningEdge) -> None:
    error = await _error(edge, "not-a-uuid", metadata=())
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_partner_key_reads_its_tenants_order(edge: RunningEdge) -> None:
    response = await _get(edge, ACME_ORDER, metadata=(("x-api-key", ACME_KEY),))
    assert response.work_order.tenant == "acme"


async def test_both_keys_of_a_principal_being_rotated_work(edge: RunningEdge) -> None:
    for key in (ACME_KEY, ACME_NEXT_KEY):
        for metadata in ((("x-api-key", key),), (("authorization", f"Bearer {key}"),)):
            response = await _get(edge, ACME_ORDER, metadata=metadata)
            assert response.work_order.id == ACME_ORDER


async def test_old_and_new_key_of_one_principal_together_are_still_two_credentials(
    edge: RunningEdge,
) -> None:
    error = await _error(
        edge,
        ACME_ORDER,
        metadata=(("x-api-key", ACME_KEY), ("authorization", f"Bearer {ACME_NEXT_KEY}")),
    )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_operator_key_reads_its_tenants_order(edge: RunningEdge) -> None:
    response = await _get(edge, ACME_ORDER, metadata=(("x-api-key", ACME_OPS_KEY),))
    assert response.work_order.tenant == "acme"
    foreign = await _error(edge, GLOBEX_ORDER, metadata=(("x-api-key", ACME_OPS_KEY),))
    assert foreign.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "presented",
    [
        "flk_unknown-but-well-formed-key-000000000000000000",
        hash_api_key(ACME_KEY),  # the stored hash is not a key
        hash_api_key(ACME_KEY).removeprefix("sha256:"),
        ACME_KEY.upper(),
        "x" * 5000,
    ],
)
async def test_unknown_key_is_unauthenticated(edge: RunningEdge, presented: str) -> None:
    error = await _error(edge, ACME_ORDER, metadata=(("x-api-key", presented),))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error.details() == "missing or invalid API key"


async def test_contractor_key_on_a_tenant_method_is_permission_denied(edge: RunningEdge) -> None:
    for order in (ACME_ORDER, GLOBEX_ORDER, str(uuid.uuid4()), "not-a-uuid"):
        error = await _error(edge, order, metadata=(("x-api-key", CONTRACTOR_KEY),))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error.details() == "this method is for requester-side partners"
        assert _rich(error).code == grpc.StatusCode.PERMISSION_DENIED.value[0]


# ------------------------------------------------------------------------- call log


def _records(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "fixloop_shared.grpc_edge.auth" and r.getMessage() == message
    ]


async def _logged(
    caplog: pytest.LogCaptureFixture, message: str, count: int
) -> list[logging.LogRecord]:
    """The records once ``count`` are there: a call is logged as the server finishes it, which
    may be just after the client has its answer."""
    for _ in range(100):
        records = _records(caplog, message)
        if len(records) >= count:
            return records
        await asyncio.sleep(0.02)
    return _records(caplog, message)


async def test_every_call_is_logged_once_with_its_principal_and_code(
    edge: RunningEdge, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fixloop_shared.grpc_edge.auth")
    await _get(edge, ACME_ORDER, metadata=(("x-api-key", ACME_NEXT_KEY),))
    await _error(edge, GLOBEX_ORDER, metadata=(("x-api-key", ACME_OPS_KEY),))
    await _error(edge, ACME_ORDER, metadata=(("x-api-key", CONTRACTOR_KEY),))
    await _error(edge, SLOW_ORDER, metadata=(("x-api-key", GLOBEX_KEY),), deadline_seconds=0.2)
    records = await _logged(caplog, CALL_LOG_MESSAGE, 4)

    assert len(records) == 4
    rpc = f"/{SERVICE_NAME}/GetWorkOrder"
    seen = [
        (r.principal, r.principal_kind, r.rpc, r.code)  # type: ignore[attr-defined]
        for r in records
    ]
    assert seen == [
        ("acme-erp", "partner", rpc, "OK"),
        ("acme-ops", "operator", rpc, "NOT_FOUND"),
        ("klima-app", "contractor", rpc, "PERMISSION_DENIED"),
        ("globex-erp", "partner", rpc, "DEADLINE_EXCEEDED"),
    ]
    assert all(r.levelno == logging.INFO for r in records)
    assert all(r.duration_ms >= 0 for r in records)  # type: ignore[attr-defined]
    assert records[0].tenant == "acme"  # type: ignore[attr-defined]
    assert records[2].contractor_id == "ctr-berliner-klima"  # type: ignore[attr-defined]
    _assert_no_key_material(caplog)


async def test_refused_calls_are_logged_without_key_material(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="fixloop_shared.grpc_edge.auth")
    queries = InMemoryWorkOrders({ACME_ORDER: _view(ACME_ORDER, "acme")})
    server, port, health = await start_grpc_server(
        queries, host="127.0.0.1", port=0, principals=PRINCIPALS, reflection=False
    )
    target = f"127.0.0.1:{port}"
    try:
        async with grpc.aio.insecure_channel(target) as channel:
            edge = RunningEdge(target=target, channel=channel)
            # A flood of refusals of one kind is one log line (per window), not one per call.
            for _ in range(5):
                await _error(edge, ACME_ORDER, metadata=())
                await _error(edge, ACME_ORDER, metadata=(("x-api-key", ACME_KEY + "x"),))
                both = (("x-api-key", ACME_KEY), ("x-api-key", GLOBEX_KEY))
                assert (await _error(edge, ACME_ORDER, metadata=both)).code() == (
                    grpc.StatusCode.UNAUTHENTICATED
                )
    finally:
        await stop_server(server, health, grace=0.5)
    refused = _records(caplog, REFUSED_LOG_MESSAGE)
    reasons = [(r.code, r.reason) for r in refused]  # type: ignore[attr-defined]
    assert reasons == [
        ("UNAUTHENTICATED", "no API key"),
        ("UNAUTHENTICATED", "unknown API key"),
        ("UNAUTHENTICATED", "more than one credential"),
    ]
    assert not _records(caplog, CALL_LOG_MESSAGE)
    _assert_no_key_material(caplog)


def _assert_no_key_material(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        text = repr(record.__dict__)
        for key in ALL_KEYS:
            assert key not in text
            assert hash_api_key(key).removeprefix("sha256:") not in text


# ------------------------------------------------------------------------- reads


async def test_tenant_gets_its_order_with_timeline(edge: RunningEdge) -> None:
    order = (await _get(edge, ACME_ORDER)).work_order

    assert order.id == ACME_ORDER
    assert order.tenant == "acme"
    assert order.state == work_order_pb2.WORK_ORDER_STATE_DISPATCHING
    assert order.category == work_order_pb2.CATEGORY_BREAKDOWN
    assert order.priority == work_order_pb2.PRIORITY_HIGH
    assert order.source_platform == "marketplace.example"
    assert order.external_id == "EXT-ACME-1"
    assert order.site.timezone == "Europe/Berlin"
    assert order.site.address.country == "DE"
    assert not order.site.address.HasField("line2")
    assert order.equipment.manufacturer == "Frostline"
    assert not order.equipment.HasField("model")
    assert order.requester.email == "mara.keller@example.com"
    assert order.requester.phone == "+49 30 1234567"
    assert [(p.part_number, p.quantity) for p in order.required_parts] == [("FAN-220", 2)]
    assert order.received_at.ToDatetime(tzinfo=UTC) == RECEIVED_AT

    assert [entry.kind for entry in order.timeline] == ["received", "dispatching"]
    first, second = order.timeline
    assert first.id == f"{ACME_ORDER}:1"
    assert first.at.ToDatetime(tzinfo=UTC) == RECEIVED_AT
    assert first.event_type == "fixloop.workorder.received.v1"
    assert dict(first.details) == {"source_platform": "marketplace.example"}
    assert not second.HasField("event_type")


async def test_other_tenants_order_looks_exactly_like_a_missing_one(edge: RunningEdge) -> None:
    foreign = await _error(edge, GLOBEX_ORDER)
    unknown = await _error(edge, str(uuid.uuid4()))

    assert foreign.code() == unknown.code() == grpc.StatusCode.NOT_FOUND
    assert foreign.details() == unknown.details() == "work order not found"
    assert _rich(foreign) == _rich(unknown)
    assert GLOBEX_ORDER not in _rich(foreign).SerializeToString().decode("latin-1")
    [detail] = _rich(foreign).details
    info = error_details_pb2.ResourceInfo()
    assert detail.Unpack(info)
    assert info.resource_type == "fixloop.v1.WorkOrder"
    assert not info.resource_name

    # and the owner does see it
    owned = await _get(edge, GLOBEX_ORDER, metadata=(("x-api-key", GLOBEX_KEY),))
    assert owned.work_order.tenant == "globex"


@pytest.mark.parametrize(
    "bad_id",
    [
        "not-a-uuid",
        "",
        ACME_ORDER.upper(),
        ACME_ORDER.replace("-", ""),
        "{" + ACME_ORDER + "}",
        '{"$ne": null}',
        "x" * 10_000,
    ],
)
async def test_malformed_id_is_invalid_argument_with_field_violation(
    edge: RunningEdge, bad_id: str
) -> None:
    error = await _error(edge, bad_id)

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = _rich(error)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert len(status.details) == 1
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    [violation] = bad_request.field_violations
    assert violation.field == "work_order_id"
    assert "UUID" in violation.description


async def test_query_without_deadline_gets_the_default_one(edge: RunningEdge) -> None:
    started = asyncio.get_running_loop().time()
    error = await _error(edge, SLOW_ORDER, deadline_seconds=None)
    elapsed = asyncio.get_running_loop().time() - started

    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert elapsed < 10


async def test_caller_deadline_is_honoured(edge: RunningEdge) -> None:
    error = await _error(edge, SLOW_ORDER, deadline_seconds=0.2)
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_unexpected_failure_reveals_nothing_internal(edge: RunningEdge) -> None:
    error = await _error(edge, BROKEN_ORDER)

    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == "internal error"
    everything = repr(error.trailing_metadata()) + (error.debug_error_string() or "")
    for leak in ("db-internal", "27017", "RuntimeError", "Traceback"):
        assert leak not in everything


async def test_server_still_serves_after_failures(edge: RunningEdge) -> None:
    assert (await _get(edge, ACME_ORDER)).work_order.id == ACME_ORDER


# ------------------------------------------------------------------------- health, reflection


async def test_health_check_needs_no_key(edge: RunningEdge) -> None:
    stub = health_pb2_grpc.HealthStub(edge.channel)
    for service in ("", SERVICE_NAME):
        response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_service(edge: RunningEdge) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(edge.channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    names: list[str] = []
    async for response in stub.ServerReflectionInfo(iter([request]), timeout=5):
        names.extend(service.name for service in response.list_services_response.service)
    assert SERVICE_NAME in names
    assert "grpc.health.v1.Health" in names


async def test_health_reports_not_serving_during_shutdown() -> None:
    server, port, health = await start_grpc_server(
        InMemoryWorkOrders({}), host="127.0.0.1", port=0, principals=PRINCIPALS, reflection=False
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        check = health_pb2.HealthCheckRequest(service=SERVICE_NAME)
        assert (await stub.Check(check, timeout=5)).status == health_pb2.HealthCheckResponse.SERVING
        await health.enter_graceful_shutdown()
        status = (await stub.Check(check, timeout=5)).status
        assert status == health_pb2.HealthCheckResponse.NOT_SERVING
    await stop_server(server, health, grace=0.5)


async def test_each_principal_is_rate_limited_on_its_own(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="fixloop_shared.grpc_edge.auth")
    queries = InMemoryWorkOrders(
        {ACME_ORDER: _view(ACME_ORDER, "acme"), GLOBEX_ORDER: _view(GLOBEX_ORDER, "globex")}
    )
    server, port, health = await start_grpc_server(
        queries,
        host="127.0.0.1",
        port=0,
        principals=PRINCIPALS,
        reflection=False,
        rate_limit="3/minute",
    )
    target = f"127.0.0.1:{port}"
    try:
        async with grpc.aio.insecure_channel(target) as channel:
            limited = RunningEdge(target=target, channel=channel)
            # Calls without a valid key are refused before they count against any principal.
            for _ in range(5):
                refused = await _error(limited, ACME_ORDER, metadata=(("x-api-key", "nope"),))
                assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
            # The two keys of a principal being rotated share its one budget.
            for key in (ACME_KEY, ACME_NEXT_KEY, ACME_KEY):
                metadata = (("x-api-key", key),)
                assert (await _get(limited, ACME_ORDER, metadata)).work_order.id == ACME_ORDER

            over = await _error(limited, ACME_ORDER, metadata=(("x-api-key", ACME_NEXT_KEY),))
            assert over.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert over.details() == "request rate limit exceeded, retry later"
            details = _rich(over).details
            quota = error_details_pb2.QuotaFailure()
            retry = error_details_pb2.RetryInfo()
            assert [d.Unpack(quota) or d.Unpack(retry) for d in details] == [True, True]
            assert quota.violations[0].subject == "principal:acme-erp"
            assert "3 per 1 minute" in quota.violations[0].description
            assert 0 < retry.retry_delay.ToTimedelta().total_seconds() <= 60
            [logged] = [
                r
                for r in _records(caplog, REFUSED_LOG_MESSAGE)
                if r.code == "RESOURCE_EXHAUSTED"  # type: ignore[attr-defined]
            ]
            assert logged.principal == "acme-erp"  # type: ignore[attr-defined]

            # Another principal has its own budget, even of the same tenant; health needs no
            # key and is never limited.
            ops = (("x-api-key", ACME_OPS_KEY),)
            assert (await _get(limited, ACME_ORDER, metadata=ops)).work_order.tenant == "acme"
            globex = (("x-api-key", GLOBEX_KEY),)
            assert (await _get(limited, GLOBEX_ORDER, metadata=globex)).work_order.tenant == (
                "globex"
            )
            health_stub = health_pb2_grpc.HealthStub(channel)
            for _ in range(5):
                checked = await health_stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
                assert checked.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await stop_server(server, health, grace=0.5)


# ------------------------------------------------------------------------- CLI


async def _cli(*args: str) -> tuple[int, str, str]:
    """Run ``fixloop orders ...`` in a worker thread while this loop keeps serving gRPC."""
    runner = CliRunner()
    result = await asyncio.to_thread(
        runner.invoke, orders_cli, list(args), env={"COLUMNS": "160"}, catch_exceptions=False
    )
    return result.exit_code, result.stdout, result.stderr


async def test_cli_show_prints_the_order_and_its_timeline(edge: RunningEdge) -> None:
    code, out, err = await _cli("show", ACME_ORDER, "--target", edge.target, "--api-key", ACME_KEY)

    assert code == 0, err
    assert ACME_ORDER in out
    assert "dispatching" in out
    assert "Rosenthaler Str. 40" in out
    assert "Timeline" in out
    assert "Work order received and stored" in out
    assert "Looking for a qualified contractor" in out
    assert "2026-03-02 09:15:00 CET" in out  # 08:15 UTC shown in the site's time zone


async def test_cli_show_reads_the_key_from_the_environment(edge: RunningEdge) -> None:
    runner = CliRunner()
    result = await asyncio.to_thread(
        runner.invoke,
        orders_cli,
        ["show", ACME_ORDER],
        env={"FIXLOOP_API_KEY": ACME_KEY, "FIXLOOP_ORDERS_GRPC_TARGET": edge.target},
    )
    assert result.exit_code == 0, result.stderr
    assert ACME_ORDER in result.stdout


async def test_cli_show_not_found_is_one_line(edge: RunningEdge) -> None:
    code, out, err = await _cli(
        "show", GLOBEX_ORDER, "--target", edge.target, "--api-key", ACME_KEY
    )

    assert code != 0
    assert err.strip() == f"error: work order {GLOBEX_ORDER} not found for this API key's tenant"
    assert "Traceback" not in out + err


async def test_cli_show_wrong_key(edge: RunningEdge) -> None:
    code, _, err = await _cli("show", ACME_ORDER, "--target", edge.target, "--api-key", "nope")
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "API key" in err


async def test_cli_show_malformed_id(edge: RunningEdge) -> None:
    code, _, err = await _cli("show", "12345", "--target", edge.target, "--api-key", ACME_KEY)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "work_order_id: must be a canonical lowercase UUID" in err


async def test_cli_show_unreachable_server() -> None:
    target = "127.0.0.1:9"  # discard port: nothing listens there
    code, _, err = await _cli(
        "show", ACME_ORDER, "--target", target, "--api-key", ACME_KEY, "--timeout", "2"
    )
    assert code == 1
    assert err.strip() == f"error: cannot reach the orders gRPC API at {target}"
