"""An emergency offered to several contractors at once: the first to accept takes it.

The orders and contractors services run in-process together on the real broker and stores; the
order comes in on the inbound topic and the contractors answer through the partner gRPC API, as
their apps do. Two contractors accepting at the same moment: one assignment, the other refused
(FAILED_PRECONDITION), the remaining offers withdrawn, and the loads right afterwards.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest

from fixloop.v1 import contractor_jobs_service_pb2 as jobs_pb2
from fixloop.v1 import contractor_jobs_service_pb2_grpc as jobs_grpc
from fixloop.v1 import dispatch_service_pb2 as dispatch_pb2
from fixloop.v1 import dispatch_service_pb2_grpc as dispatch_grpc
from fixloop_contractors.adapters.mongo import CONTRACTORS
from fixloop_contractors.adapters.mongo import OFFERS as CONTRACTOR_OFFERS
from fixloop_contractors.app.registry import import_contractors
from fixloop_contractors.domain.model import Contractor, Credential, CredentialKind, ServiceRegion
from fixloop_contractors.main import ContractorsService
from fixloop_contractors.main import bootstrap as contractors_bootstrap
from fixloop_contractors.settings import ContractorsSettings
from fixloop_devkit.testing import eventually, start_in_process, unique
from fixloop_orders.adapters.mongo import WORK_ORDERS
from fixloop_orders.main import OrdersService
from fixloop_orders.main import bootstrap as orders_bootstrap
from fixloop_orders.settings import OrdersSettings
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.vocabulary import Priority
from tests.integration.principals import principals_of
from tests.integration.test_orders_service import submit_structured, submitted

pytestmark = pytest.mark.integration

SOURCE = "fan-out.example"
TENANT = "fan-out-it-acme"
CONTRACTOR_IDS = {role: f"fan-out-it-{role}" for role in ("c1", "c2", "c3", "c4")}
KEYS, PRINCIPALS = principals_of(
    "fo", tenant=TENANT, other_tenant="fan-out-it-globex", contractors=CONTRACTOR_IDS
)
PREFIXES = {"c1": "10178", "c2": "1017", "c3": "101", "c4": "10"}
"""Postal prefixes for the site's 10178: c1 nearest, then c2, c3, c4."""
OFFER_SECONDS = 6
"""How long an offer of an order other than an emergency stands here."""


@dataclasses.dataclass
class Platform:
    orders: OrdersService
    contractors: ContractorsService
    bootstrap: str
    channel: grpc.aio.Channel

    @property
    def jobs(self) -> jobs_grpc.ContractorJobsServiceStub:
        return jobs_grpc.ContractorJobsServiceStub(self.channel)  # type: ignore[no-untyped-call]

    async def accept(self, role: str, offer_id: str) -> grpc.StatusCode:
        request = jobs_pb2.AcceptOfferRequest(request_id=unique("req"), offer_id=offer_id)
        try:
            await self.jobs.AcceptOffer(request, metadata=(("x-api-key", KEYS[role]),), timeout=15)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    async def open_offers(self, role: str) -> list[Any]:
        answer = await self.jobs.ListOffers(
            jobs_pb2.ListOffersRequest(), metadata=(("x-api-key", KEYS[role]),), timeout=10
        )
        return list(answer.offers)

    async def load(self, role: str) -> tuple[int, int]:
        doc = await self.contractors.ctx.store.db[CONTRACTORS].find_one(
            {"_id": CONTRACTOR_IDS[role]}
        )
        assert doc is not None
        return int(doc["open_offers"]), int(doc.get("open_jobs", 0))


@pytest.fixture(scope="module")
async def platform(kafka_bootstrap: str, mongodb_uri: str) -> AsyncIterator[Platform]:
    kafka = KafkaSettings(bootstrap=kafka_bootstrap)
    contractors = await start_in_process(
        lambda: contractors_bootstrap(
            ContractorsSettings(
                mongodb_uri=mongodb_uri,
                database=unique("fan_out_contractors").replace("-", "_"),
                kafka=kafka,
                health_port=0,
                grpc_port=0,
                principals=PRINCIPALS,
                outbox_poll_seconds=0.05,
                emergency_fan_out=3,
                offer_ttl_seconds=OFFER_SECONDS,  # other orders than emergencies
                offer_expiry_poll_seconds=0.2,
            )
        )
    )
    await import_contractors(
        contractors.registry,
        [
            Contractor(
                contractor_id=contractor_id,
                name=f"Contractor {role}",
                email=f"{role}@example.com",
                timezone="Europe/Berlin",
                tenants=frozenset({TENANT}),
                skills=frozenset({"hvac"}),
                regions=(ServiceRegion(country="DE", postal_prefixes=(PREFIXES[role],)),),
                credentials=(
                    Credential(
                        kind=CredentialKind.LIABILITY_INSURANCE,
                        number=f"INS-{role}",
                        expires_on=datetime(2099, 12, 31, tzinfo=UTC).date(),
                    ),
                ),
            )
            for role, contractor_id in CONTRACTOR_IDS.items()
        ],
        as_of=datetime.now(UTC).date(),
    )
    orders = await start_in_process(
        lambda: orders_bootstrap(
            OrdersSettings(
                mongodb_uri=mongodb_uri,
                database=unique("fan_out_orders").replace("-", "_"),
                kafka=kafka,
                health_port=0,
                grpc_port=0,
                grpc_reflection=False,
                grpc_rate_limit="",
                principals=PRINCIPALS,
                source_tenants={SOURCE: [TENANT]},
                outbox_poll_seconds=0.05,
            )
        )
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{orders.partner_api.bound_port}")
    try:
        yield Platform(orders, contractors, kafka_bootstrap, channel)
    finally:
        await channel.close()
        await orders.app.stop()
        await contractors.app.stop()


async def test_an_emergency_goes_to_three_at_once_and_only_the_first_acceptance_counts(
    platform: Platform,
) -> None:
    external_id = unique("FO")
    emergency = submitted(external_id).model_copy(update={"priority": Priority.EMERGENCY})
    await submit_structured(platform.bootstrap, emergency, tenant=TENANT, source=SOURCE)

    async def offered() -> dict[str, list[Any]]:
        return {role: await platform.open_offers(role) for role in CONTRACTOR_IDS}

    offers = await eventually(
        offered, lambda found: all(found[r] for r in ("c1", "c2", "c3")), timeout=60
    )
    assert offers["c4"] == []  # the three best only
    first = {role: offers[role][0].offer_id for role in ("c1", "c2", "c3")}
    work_order_id = offers["c1"][0].work_order_id
    assert {o[0].work_order_id for role, o in offers.items() if o} == {work_order_id}
    stored = (
        await platform.contractors.ctx.store.db[CONTRACTOR_OFFERS]
        .find({"work_order_id": work_order_id})
        .to_list()
    )
    assert sorted((d["dispatch_round"], d["fan_slot"], d["contractor_id"]) for d in stored) == [
        (1, 0, CONTRACTOR_IDS["c1"]),
        (1, 1, CONTRACTOR_IDS["c2"]),
        (1, 2, CONTRACTOR_IDS["c3"]),
    ]

    # Two accept at the same moment: exactly one assignment, the other refused.
    answers = await asyncio.gather(
        platform.accept("c2", first["c2"]), platform.accept("c3", first["c3"])
    )
    assert sorted(answers, key=lambda c: c.name) == [
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OK,
    ]
    winner = "c2" if answers[0] is grpc.StatusCode.OK else "c3"
    loser = "c3" if winner == "c2" else "c2"

    async def order() -> Any:
        return await platform.orders.ctx.store.db[WORK_ORDERS].find_one({"_id": work_order_id})

    assigned = await eventually(order, lambda doc: doc is not None and doc["state"] == "assigned")
    assert assigned["contractor_id"] == CONTRACTOR_IDS[winner]

    # The others' offers are withdrawn; the winner holds one job, nobody an offer.
    async def loads() -> dict[str, tuple[int, int]]:
        return {role: await platform.load(role) for role in CONTRACTOR_IDS}

    expected = {role: (0, 1 if role == winner else 0) for role in CONTRACTOR_IDS}
    assert await eventually(loads, lambda found: found == expected, timeout=60)
    statuses = {
        d["contractor_id"]: d["status"]
        for d in await platform.contractors.ctx.store.db[CONTRACTOR_OFFERS]
        .find({"work_order_id": work_order_id})
        .to_list()
    }
    assert statuses == {
        CONTRACTOR_IDS["c1"]: "withdrawn",
        CONTRACTOR_IDS[winner]: "accepted",
        CONTRACTOR_IDS[loser]: "withdrawn",
    }
    assert (
        await eventually(lambda: platform.open_offers(loser), lambda found: found == [], timeout=30)
        == []
    )


async def test_an_offer_runs_out_the_next_is_declined_the_third_accepted_and_each_round_explained(
    platform: Platform,
) -> None:
    """The repair loop's dispatch end to end through the public edges: the order comes in on the
    inbound topic, the contractors answer over the partner API, the tenant's operator reads the
    explanation over the dispatch API."""
    external_id = unique("RD")
    await submit_structured(
        platform.bootstrap, submitted(external_id), tenant=TENANT, source=SOURCE
    )

    # Round 1 to the nearest (c1), who does not answer: the offer runs out, round 2 goes to c2.
    offers = await eventually(
        lambda: platform.open_offers("c2"), lambda found: len(found) == 1, timeout=60
    )
    work_order_id, second = offers[0].work_order_id, offers[0].offer_id
    assert await platform.open_offers("c1") == []

    # c2 declines: round 3 goes to c3, never back to c1 or c2.
    await platform.jobs.DeclineOffer(
        jobs_pb2.DeclineOfferRequest(
            request_id=unique("req"), offer_id=second, reason="no technician free"
        ),
        metadata=(("x-api-key", KEYS["c2"]),),
        timeout=15,
    )
    offers = await eventually(
        lambda: platform.open_offers("c3"), lambda found: len(found) == 1, timeout=60
    )
    third = offers[0].offer_id
    assert await platform.accept("c3", third) is grpc.StatusCode.OK

    async def order() -> Any:
        return await platform.orders.ctx.store.db[WORK_ORDERS].find_one({"_id": work_order_id})

    assigned = await eventually(order, lambda doc: doc is not None and doc["state"] == "assigned")
    assert assigned["contractor_id"] == CONTRACTOR_IDS["c3"]

    # The tenant's operator sees every round, every contractor assessed, each offer's fate.
    port = platform.contractors.dispatch_api.bound_port
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub: Any = dispatch_grpc.DispatchServiceStub(channel)  # type: ignore[no-untyped-call]

        async def explained() -> Any:
            return await stub.ExplainDispatch(
                dispatch_pb2.ExplainDispatchRequest(work_order_id=work_order_id),
                metadata=(("x-api-key", KEYS["operator"]),),
                timeout=10,
            )

        answer = await eventually(
            explained,
            lambda found: (
                len(found.rounds) == 3
                and any(
                    c.offer.status == jobs_pb2.OFFER_STATUS_ACCEPTED
                    for c in found.rounds[2].candidates
                )
            ),
            timeout=30,
        )
    rounds = list(answer.rounds)
    ids = CONTRACTOR_IDS
    assert [list(r.offered_contractor_ids) for r in rounds] == [
        [ids["c1"]],
        [ids["c2"]],
        [ids["c3"]],
    ]
    for dispatch_round in rounds:
        assert {c.contractor_id for c in dispatch_round.candidates} == set(ids.values())
        for candidate in dispatch_round.candidates:
            assert candidate.eligible == (not candidate.exclusion_reasons)
            if candidate.eligible:
                assert len(candidate.score_components) == 6
    fates = {
        c.contractor_id: (c.offer.status, c.offer.reason)
        for r in rounds
        for c in r.candidates
        if c.offered
    }
    assert fates == {
        ids["c1"]: (jobs_pb2.OFFER_STATUS_EXPIRED, ""),
        ids["c2"]: (jobs_pb2.OFFER_STATUS_DECLINED, "no technician free"),
        ids["c3"]: (jobs_pb2.OFFER_STATUS_ACCEPTED, ""),
    }
    last = {c.contractor_id: c for c in rounds[2].candidates}
    assert [c.rank for c in rounds[2].candidates if c.eligible] == [1, 2]  # c3, then c4
    for earlier in ("c1", "c2"):
        assert any("had an offer" in reason for reason in last[ids[earlier]].exclusion_reasons)
