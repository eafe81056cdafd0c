"""The operators' gRPC API of the contractors service (``fixloop.v1.DispatchService``), on the
running service: real broker and store, its gRPC server on a free loopback port, real channels.

One work order is dispatched through the broker as the orders service would send it: round 1
offers it to the nearest contractor, who declines, and round 2 offers it to the next; a third
contractor never covers the site. ``ExplainDispatch`` must show exactly what the service stored.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from fixloop.v1 import contractor_jobs_service_pb2 as jobs_pb2
from fixloop.v1 import dispatch_service_pb2, dispatch_service_pb2_grpc
from fixloop_contractors.adapters.dispatch_api import (
    NOT_FOUND_MESSAGE,
    OPERATORS_ONLY_MESSAGE,
    SERVICE_NAME,
)
from fixloop_contractors.adapters.mongo import MongoDispatchLedger
from fixloop_contractors.app.explain import DispatchExplanation
from fixloop_contractors.app.registry import import_contractors
from fixloop_contractors.domain.model import Contractor, Credential, CredentialKind, ServiceRegion
from fixloop_contractors.main import ContractorsService, bootstrap
from fixloop_contractors.settings import ContractorsSettings
from fixloop_devkit.testing import eventually, produce, start_in_process, unique
from fixloop_shared.contracts import EventPayload, WorkOrderOfferDeclined, WorkOrderReceived
from fixloop_shared.envelope import EventEnvelope, binary_headers, encode_payload
from fixloop_shared.grpc_edge.principals import PrincipalKind, PrincipalSpec, hash_api_key
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.topics import Topic

pytestmark = pytest.mark.integration

PREFIX = unique("explain")
TENANT = unique("acme")
OTHER_TENANT = unique("globex")
KEYS = {
    role: f"{PREFIX}-{role}-key" for role in ("operator", "partner", "contractor", "other-operator")
}
SITE_POSTAL_CODE = "10115"
ALREADY_OFFERED = "had an offer of this work order already (declined or no answer)"
DECLINE_REASON = "no technician free"


def principals() -> list[PrincipalSpec]:
    def spec(role: str, kind: PrincipalKind, **binding: str) -> PrincipalSpec:
        return PrincipalSpec(
            id=f"{PREFIX}-{role}", kind=kind, key_hashes=[hash_api_key(KEYS[role])], **binding
        )

    return [
        spec("operator", PrincipalKind.OPERATOR, tenant=TENANT),
        spec("partner", PrincipalKind.PARTNER, tenant=TENANT),
        spec("contractor", PrincipalKind.CONTRACTOR, contractor_id="ctr-anyone"),
        spec("other-operator", PrincipalKind.OPERATOR, tenant=OTHER_TENANT),
    ]


@dataclass(frozen=True)
class Dispatched:
    work_order_id: str
    nearest: str
    next_best: str
    elsewhere: str


@pytest.fixture(scope="module")
async def service(kafka_bootstrap: str, mongodb_uri: str) -> AsyncIterator[ContractorsService]:
    settings = ContractorsSettings(
        mongodb_uri=mongodb_uri,
        database=unique("dispatch_api").replace("-", "_"),
        kafka=KafkaSettings(bootstrap=kafka_bootstrap),
        health_port=0,
        grpc_port=0,
        grpc_rate_limit="",
        principals=principals(),
        outbox_poll_seconds=0.05,
        offer_ttl_seconds=600,
    )
    built = await start_in_process(lambda: bootstrap(settings))
    try:
        yield built
    finally:
        await built.app.stop()


async def publish(bootstrap: str, payload: EventPayload, work_order_id: str) -> None:
    """As the orders service publishes: binary mode, keyed by the work order id."""
    envelope = EventEnvelope.new(payload, source="orders", subject=work_order_id, tenant=TENANT)
    await produce(
        bootstrap,
        Topic.WORKORDERS_EVENTS,
        encode_payload(payload),
        key=work_order_id.encode(),
        headers=binary_headers(envelope),
    )


def contractor(contractor_id: str, postal_prefix: str) -> Contractor:
    return Contractor(
        contractor_id=contractor_id,
        name=f"Contractor {contractor_id}",
        email=f"{contractor_id}@example.com",
        timezone="Europe/Berlin",
        tenants=frozenset({TENANT}),
        skills=frozenset({"hvac"}),
        regions=(ServiceRegion(country="DE", postal_prefixes=(postal_prefix,)),),
        credentials=(
            Credential(
                kind=CredentialKind.LIABILITY_INSURANCE,
                number=f"INS-{contractor_id}",
                expires_on=datetime(2099, 12, 31, tzinfo=UTC).date(),
            ),
        ),
    )


def received(work_order_id: str) -> WorkOrderReceived:
    return WorkOrderReceived.model_validate_json(
        json.dumps(
            {
                "work_order_id": work_order_id,
                "tenant": TENANT,
                "source_platform": "fieldhub",
                "received_at": datetime.now(UTC).isoformat(),
                "external_id": f"FH-{work_order_id}",
                "site": {
                    "site_id": "site-1",
                    "name": "Test site",
                    "address": {
                        "line1": "Teststraße 1",
                        "city": "Berlin",
                        "postal_code": SITE_POSTAL_CODE,
                        "country": "DE",
                    },
                    "timezone": "Europe/Berlin",
                },
                "equipment": {"equipment_id": "EQ-1", "equipment_class": "hvac"},
                "category": "breakdown",
                "priority": "normal",
                "description": "Does not cool",
                "requester": {"name": "Mara Keller", "email": "mara@example.com", "locale": "de"},
            }
        )
    )


def declined(work_order_id: str, offer_id: str, contractor_id: str) -> WorkOrderOfferDeclined:
    return WorkOrderOfferDeclined.model_validate_json(
        json.dumps(
            {
                "work_order_id": work_order_id,
                "external_id": f"FH-{work_order_id}",
                "source_platform": "fieldhub",
                "state": "dispatching",
                "previous_state": "dispatching",
                "occurred_at": datetime.now(UTC).isoformat(),
                "actor": {"kind": "contractor", "id": contractor_id},
                "via": "grpc",
                "version": 3,
                "offer_id": offer_id,
                "declined_by": contractor_id,
                "reason": DECLINE_REASON,
            }
        )
    )


async def stored(service: ContractorsService, work_order_id: str) -> list[DispatchExplanation]:
    """What the service kept of the order's dispatch (any tenant's)."""
    return await MongoDispatchLedger(service.ctx.store).explanations(work_order_id)


@pytest.fixture(scope="module")
async def dispatched(service: ContractorsService, kafka_bootstrap: str) -> Dispatched:
    nearest, next_best, elsewhere = (unique(f"ctr-{n}") for n in ("near", "next", "far"))
    await import_contractors(
        service.registry,
        [contractor(nearest, "10115"), contractor(next_best, "101"), contractor(elsewhere, "8")],
        as_of=datetime.now(UTC).date(),
    )
    work_order_id = str(uuid.uuid4())
    await publish(kafka_bootstrap, received(work_order_id), work_order_id)
    await eventually(lambda: stored(service, work_order_id), lambda found: len(found) == 1)
    [offer] = await MongoDispatchLedger(service.ctx.store).offers(work_order_id)
    await publish(kafka_bootstrap, declined(work_order_id, offer.offer_id, nearest), work_order_id)
    await eventually(lambda: stored(service, work_order_id), lambda found: len(found) == 2)
    return Dispatched(work_order_id, nearest, next_best, elsewhere)


@pytest.fixture
async def stub(
    service: ContractorsService,
) -> AsyncIterator[dispatch_service_pb2_grpc.DispatchServiceStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.dispatch_api.bound_port}") as ch:
        yield dispatch_service_pb2_grpc.DispatchServiceStub(ch)  # type: ignore[no-untyped-call]


async def explain(
    stub: dispatch_service_pb2_grpc.DispatchServiceStub, work_order_id: str, key: str | None
) -> dispatch_service_pb2.ExplainDispatchResponse:
    response: dispatch_service_pb2.ExplainDispatchResponse = await stub.ExplainDispatch(
        dispatch_service_pb2.ExplainDispatchRequest(work_order_id=work_order_id),
        metadata=() if key is None else (("x-api-key", key),),
        timeout=10,
    )
    return response


async def refused(
    stub: dispatch_service_pb2_grpc.DispatchServiceStub, work_order_id: str, key: str | None
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await explain(stub, work_order_id, key)
    return caught.value


def rich(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    status = rpc_status.from_call(error)
    assert status is not None, "no google.rpc.Status in the trailers"
    return status


# ------------------------------------------------------------------------------ what is shown


async def test_an_operator_sees_every_round_with_every_candidate_as_stored(
    service: ContractorsService,
    dispatched: Dispatched,
    stub: dispatch_service_pb2_grpc.DispatchServiceStub,
) -> None:
    wo = dispatched.work_order_id
    answer = await explain(stub, wo, KEYS["operator"])
    kept = await stored(service, wo)
    assert answer.work_order_id == wo
    assert [r.dispatch_round for r in answer.rounds] == [e.dispatch_round for e in kept] == [1, 2]

    for shown, explanation in zip(answer.rounds, kept, strict=True):
        assert shown.decided_at.ToDatetime(tzinfo=UTC) == explanation.decided_at
        assert shown.outcome == dispatch_service_pb2.DISPATCH_OUTCOME_OFFERED
        assert tuple(shown.offered_contractor_ids) == explanation.offered_to
        assert not shown.HasField("reason")
        assert shown.candidates_total == explanation.assessed == 3
        assert shown.candidates_omitted == 0
        weights = dict(explanation.weights)
        assert [c.contractor_id for c in shown.candidates] == [
            c.contractor_id for c in explanation.candidates
        ]
        for candidate, outcome in zip(shown.candidates, explanation.candidates, strict=True):
            assert candidate.eligible == (not outcome.excluded)
            assert candidate.rank == (outcome.rank or 0)
            assert candidate.total_score == pytest.approx(outcome.total or 0.0)
            assert [s.name for s in candidate.score_components] == [
                name for name, _ in outcome.components
            ]
            assert [s.value for s in candidate.score_components] == pytest.approx(
                [value for _, value in outcome.components]
            )
            assert all(s.weight == weights[s.name] for s in candidate.score_components)
            assert tuple(candidate.exclusion_reasons) == outcome.excluded
            assert candidate.offered == outcome.offered

    first, second = ({c.contractor_id: c for c in r.candidates} for r in answer.rounds)
    # Round 1: the nearest ranked first and offered; it declined.
    nearest = first[dispatched.nearest]
    assert (nearest.eligible, nearest.rank, nearest.offered) == (True, 1, True)
    assert [s.name for s in nearest.score_components] == [
        "travel",
        "load",
        "skill",
        "scorecard",
        "preference",
        "on_call",
    ]
    assert nearest.total_score == pytest.approx(
        sum(s.value * s.weight for s in nearest.score_components)
    )
    assert nearest.total_score > first[dispatched.next_best].total_score
    assert nearest.travel_basis == "postal_prefix"
    assert nearest.HasField("travel_km")
    assert nearest.offer.status == jobs_pb2.OFFER_STATUS_DECLINED
    assert nearest.offer.reason == DECLINE_REASON
    assert nearest.offer.HasField("closed_at")
    runner_up = first[dispatched.next_best]
    assert (runner_up.rank, runner_up.offered, runner_up.HasField("offer")) == (2, False, False)
    far = first[dispatched.elsewhere]
    assert (far.eligible, far.rank, far.total_score, far.offered) == (False, 0, 0.0, False)
    assert not far.score_components
    assert any(r.startswith("does not cover") for r in far.exclusion_reasons)
    # Round 2: the one who declined is excluded for it; the next best has the open offer.
    assert list(second[dispatched.nearest].exclusion_reasons) == [ALREADY_OFFERED]
    assert list(answer.rounds[1].offered_contractor_ids) == [dispatched.next_best]
    taker = second[dispatched.next_best]
    assert (taker.rank, taker.offered) == (1, True)
    assert taker.offer.status == jobs_pb2.OFFER_STATUS_OPEN
    assert not taker.offer.HasField("closed_at")


# ------------------------------------------------------------------------------ who may ask


@pytest.mark.parametrize("role", ["partner", "contractor"])
async def test_only_operators_may_explain(
    dispatched: Dispatched, stub: dispatch_service_pb2_grpc.DispatchServiceStub, role: str
) -> None:
    error = await refused(stub, dispatched.work_order_id, KEYS[role])
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == OPERATORS_ONLY_MESSAGE


async def test_another_tenants_order_looks_exactly_like_an_unknown_one(
    dispatched: Dispatched, stub: dispatch_service_pb2_grpc.DispatchServiceStub
) -> None:
    theirs = await refused(stub, dispatched.work_order_id, KEYS["other-operator"])
    unknown = await refused(stub, str(uuid.uuid4()), KEYS["operator"])
    for error in (theirs, unknown):
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert error.details() == NOT_FOUND_MESSAGE
    assert rich(theirs) == rich(unknown)
    [detail] = rich(theirs).details
    info = error_details_pb2.ResourceInfo()
    assert detail.Unpack(info)
    assert info.resource_type == "fixloop.v1.WorkOrder"
    assert not info.resource_name


@pytest.mark.parametrize(
    "work_order_id",
    ["", "not-a-uuid", "{'$ne': null}", "6F1D2A52-8C1E-4B8E-9A57-2F0C4B1D9E01"],
    ids=["empty", "text", "operator-like", "uppercase"],
)
async def test_a_malformed_id_is_invalid_argument_with_a_field_violation(
    service: ContractorsService,
    stub: dispatch_service_pb2_grpc.DispatchServiceStub,
    work_order_id: str,
) -> None:
    error = await refused(stub, work_order_id, KEYS["operator"])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    [detail] = rich(error).details
    bad_request = error_details_pb2.BadRequest()
    assert detail.Unpack(bad_request)
    assert [v.field for v in bad_request.field_violations] == ["work_order_id"]


@pytest.mark.parametrize("key", [None, "not-a-known-key"], ids=["no key", "unknown key"])
async def test_a_call_without_a_valid_key_is_unauthenticated(
    dispatched: Dispatched, stub: dispatch_service_pb2_grpc.DispatchServiceStub, key: str | None
) -> None:
    error = await refused(stub, dispatched.work_order_id, key)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_health_answers_without_a_key(service: ContractorsService) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.dispatch_api.bound_port}") as ch:
        health = health_pb2_grpc.HealthStub(ch)
        answer = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
