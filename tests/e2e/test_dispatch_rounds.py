"""Dispatch rounds on the whole platform as separate processes: an order's first offer runs out,
the next contractor declines over the partner API, the third accepts, and the order is assigned;
the operators' dispatch API explains every round with every contractor assessed.

Offers stand for 8 seconds on this platform (its own, so the other modules' offers stand as
usual). The three contractors of acme's Berlin hvac orders in ``examples/contractors.yaml`` each
have a dev key (the third's lapsed insurance renewed here); whichever is ranked first is the one
that does not answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from fixloop.v1 import contractor_jobs_service_pb2 as jobs_pb2
from fixloop.v1 import dispatch_service_pb2 as dispatch_pb2
from fixloop.v1 import dispatch_service_pb2_grpc as dispatch_grpc
from fixloop.v1 import work_order_pb2
from fixloop_devkit.devstack import LocalPlatform, StackPorts
from fixloop_devkit.testing import eventually
from fixloop_shared.topics import Topic

from .conftest import EXAMPLES, cli, order_file
from .test_platform import Edges, of_work_order, rid, wait_received

pytestmark = pytest.mark.e2e

OFFER_SECONDS = 8
CONTRACTOR_KEYS = {
    "ctr-berliner-klima": "dev-key-contractor-berliner-klima",
    "ctr-kaelte-nord": "dev-key-contractor-kaelte-nord",
    "ctr-express-klima": "dev-key-contractor-express-klima",
}
OPERATOR_KEY = "dev-key-ops-acme"
EXPIRED_INSURANCE = "expires_on: 2026-09-30"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    stack = LocalPlatform(
        data_dir=tmp_path_factory.mktemp("dispatch-platform"),
        ports=StackPorts.free(),
        service_env={
            "contractors": {
                "FIXLOOP_CONTRACTORS_OFFER_TTL_SECONDS": str(OFFER_SECONDS),
                "FIXLOOP_CONTRACTORS_OFFER_EXPIRY_POLL_SECONDS": "0.5",
            }
        },
    )
    try:
        stack.start_broker()
        for service in ("orders", "contractors"):
            stack.start_store(service)
        stack.start_services(["orders", "contractors"])  # intake, partner API and dispatch
        # Express Klima's liability insurance ran out in the examples; here it was renewed, so
        # all three of acme's Berlin hvac contractors may be offered the order.
        renewed = tmp_path_factory.mktemp("contractors") / "contractors.yaml"
        text = (EXAMPLES / "contractors.yaml").read_text()
        assert text.count(EXPIRED_INSURANCE) == 1
        renewed.write_text(text.replace(EXPIRED_INSURANCE, "expires_on: 2036-09-30"))
        cli(stack, "contractors", "import", str(renewed))
        yield stack
    finally:
        stack.stop()


async def offers_of(stack: LocalPlatform, work_order_id: str) -> list[dict[str, object]]:
    return await of_work_order(
        stack, Topic.CONTRACTORS_EVENTS, "fixloop.assignment.offered.v1", work_order_id
    )


async def test_expired_declined_then_accepted_and_every_round_explained(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    path, external_id = order_file(tmp_path)  # acme's hvac breakdown in Berlin (normal priority)
    cli(platform, "inbound", "publish", str(path))
    work_order_id = await wait_received(platform, external_id)
    edges = Edges(platform.grpc_target)
    try:
        # Round 1: nobody answers; the offer runs out and round 2 goes to the next best.
        offers = await eventually(
            lambda: offers_of(platform, work_order_id), lambda found: len(found) >= 2, timeout=90
        )
        first, second = offers[0], offers[1]
        assert (first["dispatch_round"], second["dispatch_round"]) == (1, 2)
        assert first["contractor_id"] != second["contractor_id"]
        expired = await of_work_order(
            platform, Topic.CONTRACTORS_EVENTS, "fixloop.assignment.expired.v1", work_order_id
        )
        assert [e["offer_id"] for e in expired] == [first["offer_id"]]

        # Round 2: that contractor declines over the partner API; round 3 goes to the third.
        await edges.call(
            edges.jobs.DeclineOffer,
            jobs_pb2.DeclineOfferRequest(
                request_id=rid(), offer_id=str(second["offer_id"]), reason="no technician free"
            ),
            CONTRACTOR_KEYS[str(second["contractor_id"])],
        )
        offers = await eventually(
            lambda: offers_of(platform, work_order_id), lambda found: len(found) >= 3, timeout=60
        )
        third = offers[2]
        assert third["dispatch_round"] == 3
        offered_to = [str(o["contractor_id"]) for o in offers]
        assert sorted(offered_to) == sorted(CONTRACTOR_KEYS)  # never back to an earlier one

        # Round 3: accepted; the order is assigned to that contractor.
        await edges.call(
            edges.jobs.AcceptOffer,
            jobs_pb2.AcceptOfferRequest(request_id=rid(), offer_id=str(third["offer_id"])),
            CONTRACTOR_KEYS[str(third["contractor_id"])],
        )
        order = await eventually(
            lambda: edges.get(work_order_id),
            lambda found: found.state == work_order_pb2.WORK_ORDER_STATE_ASSIGNED,
            timeout=60,
        )
        assert order.contractor_id == third["contractor_id"]
    finally:
        await edges.close()

    # The operators' dispatch API explains each round: every contractor assessed, each offer's
    # fate (ran out, declined with its reason, accepted).
    async with grpc.aio.insecure_channel(platform.dispatch_grpc_target) as channel:
        stub: Any = dispatch_grpc.DispatchServiceStub(channel)  # type: ignore[no-untyped-call]
        explained: dispatch_pb2.ExplainDispatchResponse = await eventually(
            lambda: stub.ExplainDispatch(
                dispatch_pb2.ExplainDispatchRequest(work_order_id=work_order_id),
                metadata=(("x-api-key", OPERATOR_KEY),),
                timeout=10,
            ),
            lambda found: (
                [r.offered_contractor_ids for r in found.rounds][-1:] == [[offered_to[2]]]
                and found.rounds[-1].candidates[0].offer.status == jobs_pb2.OFFER_STATUS_ACCEPTED
            ),
            timeout=30,
        )
    rounds = list(explained.rounds)
    assert [r.dispatch_round for r in rounds] == [1, 2, 3]
    assert [list(r.offered_contractor_ids) for r in rounds] == [[c] for c in offered_to]
    for number, dispatch_round in enumerate(rounds, start=1):
        listed = {c.contractor_id for c in dispatch_round.candidates}
        assert set(CONTRACTOR_KEYS) <= listed, number
        assert dispatch_round.candidates_total == len(dispatch_round.candidates)
        for candidate in dispatch_round.candidates:
            assert candidate.eligible == (not candidate.exclusion_reasons)
            if candidate.eligible:
                assert [c.name for c in candidate.score_components] == [
                    "travel",
                    "load",
                    "skill",
                    "scorecard",
                    "preference",
                    "on_call",
                ]
    fates = {
        c.contractor_id: (c.offer.status, c.offer.reason)
        for r in rounds
        for c in r.candidates
        if c.offered
    }
    assert fates == {
        offered_to[0]: (jobs_pb2.OFFER_STATUS_EXPIRED, ""),
        offered_to[1]: (jobs_pb2.OFFER_STATUS_DECLINED, "no technician free"),
        offered_to[2]: (jobs_pb2.OFFER_STATUS_ACCEPTED, ""),
    }
    # In later rounds, the contractors offered it earlier are excluded for that reason.
    last = {c.contractor_id: c for c in rounds[2].candidates}
    for earlier in offered_to[:2]:
        assert not last[earlier].eligible
        assert any("had an offer" in reason for reason in last[earlier].exclusion_reasons)
