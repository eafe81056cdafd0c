"""Dispatch deadlines on the running contractors service (real broker and store): an order nobody
takes is escalated to the operators' queue while its offers go on, and at its time limit its open
offers are withdrawn and it is reported unfilled; an order taken in time is never escalated.

Here an order (not an emergency) is escalated 3 seconds after its first offer and given up on
after 7; offers stand for ten minutes, so only the deadlines end them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import pytest

from fixloop_contractors.adapters.mongo import DISPATCH_DEADLINES, MongoDispatchLedger
from fixloop_contractors.app.ports import QueueState
from fixloop_contractors.main import ContractorsService, bootstrap
from fixloop_contractors.settings import ContractorsSettings
from fixloop_devkit.testing import eventually, start_in_process, unique
from fixloop_shared.contracts import WorkOrderAssigned, WorkOrderOfferDeclined
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.store import OUTBOX
from tests.integration.test_dispatch_rounds import (
    contractors,
    dispatch_command,
    events_of,
    kinds,
    lifecycle_step,
    load_of,
    publish,
    received,
)

pytestmark = pytest.mark.integration

ESCALATE_AFTER = 3
TIME_LIMIT = 7


@pytest.fixture(scope="module")
async def service(kafka_bootstrap: str, mongodb_uri: str) -> AsyncIterator[ContractorsService]:
    settings = ContractorsSettings(
        mongodb_uri=mongodb_uri,
        database=unique("dispatch_deadlines").replace("-", "_"),
        kafka=KafkaSettings(bootstrap=kafka_bootstrap),
        health_port=0,
        grpc_port=0,
        outbox_poll_seconds=0.05,
        offer_ttl_seconds=600,
        dispatch_escalate_after_seconds=ESCALATE_AFTER,
        dispatch_time_limit_seconds=TIME_LIMIT,
        offer_expiry_poll_seconds=0.2,
    )
    built = await start_in_process(lambda: bootstrap(settings))
    try:
        yield built
    finally:
        await built.app.stop()


async def test_an_order_nobody_takes_is_escalated_then_given_up_on_at_its_time_limit(
    service: ContractorsService, kafka_bootstrap: str
) -> None:
    tenant = unique("deadline")
    first, second, third = await contractors(service, tenant, ["10115", "101", "10"])
    untaken, taken = received(tenant, "normal"), received(tenant, "normal")
    wo = untaken.work_order_id
    await publish(kafka_bootstrap, untaken, tenant)
    await publish(kafka_bootstrap, taken, tenant)

    # The first contractor declines the untaken order at once; the second never answers.
    offered = (await events_of(kafka_bootstrap, wo, 1))[0].json()
    await publish(
        kafka_bootstrap,
        lifecycle_step(
            WorkOrderOfferDeclined,
            wo,
            "dispatching",
            offer_id=offered["offer_id"],
            declined_by=first,
        ),
        tenant,
    )
    # The other order is taken by its first contractor before its escalation.
    taken_offer = (await events_of(kafka_bootstrap, taken.work_order_id, 1))[0].json()
    await publish(
        kafka_bootstrap,
        lifecycle_step(
            WorkOrderAssigned,
            taken.work_order_id,
            "assigned",
            offer_id=taken_offer["offer_id"],
            contractor_id=taken_offer["contractor_id"],
        ),
        tenant,
    )

    records = await events_of(kafka_bootstrap, wo, 4)
    assert kinds(records) == ["offered.v1", "declined.v1", "offered.v1", "escalated.v1"]
    reoffered, escalated = records[2].json(), records[3].json()
    assert reoffered["contractor_id"] == second
    assert escalated["offers_made"] == 2
    assert escalated["open_offers"] == [second]
    assert escalated["waiting_since"] == offered["offered_at"]
    waited = datetime.fromisoformat(escalated["escalated_at"]) - datetime.fromisoformat(
        offered["offered_at"]
    )
    assert waited.total_seconds() >= ESCALATE_AFTER
    assert "not taken" in escalated["reason"]

    # While its offer goes on, the order is in the operators' queue as escalated.
    ledger = MongoDispatchLedger(service.ctx.store)
    (queued,) = await ledger.queue(tenant=tenant)
    assert (queued.work_order_id, queued.state, queued.rounds) == (wo, QueueState.ESCALATED, 2)
    shown = await dispatch_command(service, "queue", "--tenant", tenant)
    assert shown.exit_code == 0, shown.output
    assert "escalated" in shown.stdout

    # At the time limit: the open offer is withdrawn, the order reported unfilled, with what
    # became of each offer; it stays in the queue once, as unfilled.
    records = await events_of(kafka_bootstrap, wo, 6)
    assert kinds(records)[4:] == ["withdrawn.v1", "unfilled.v1"]
    withdrawn, unfilled = records[4].json(), records[5].json()
    assert (withdrawn["contractor_id"], withdrawn["reason"]) == (
        second,
        "the dispatch time limit was reached",
    )
    assert "the time limit ends dispatch" in unfilled["reason"]
    assert unfilled["considered"] == [
        {"contractor_id": first, "reasons": ["declined the offer"]},
        {
            "contractor_id": second,
            "reasons": ["offer withdrawn: the dispatch time limit was reached"],
        },
    ]
    (queued,) = await ledger.queue(tenant=tenant)
    assert (queued.work_order_id, queued.state) == (wo, QueueState.UNFILLED)
    assert await load_of(service, second) == (0, 0)
    assert await load_of(service, third) == (0, 0)

    # The order taken in time was never escalated; both deadlines are over and gone.
    deadlines = service.ctx.store.db[DISPATCH_DEADLINES]
    left = await eventually(
        lambda: deadlines.count_documents({"_id": {"$in": [wo, taken.work_order_id]}}),
        lambda count: count == 0,
        timeout=30,
    )
    assert left == 0
    sent = await service.ctx.store.db[OUTBOX].find({"key": taken.work_order_id}).to_list()
    assert [doc["event_type"] for doc in sent] == ["fixloop.assignment.offered.v1"]
