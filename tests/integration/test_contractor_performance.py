"""Contractors' scorecards and quality alerts on the running contractors service (real broker and
store): an order's steps, as the orders service publishes them, make each contractor's scorecard
(``contractor.scorecard_updated``); a completion far under its standard time and a repair on the
same equipment soon after raise quality alerts (``quality.alert_raised``) for the operators; the
stored score changes who gets the next order; ``fixloop contractors show`` and ``fixloop dispatch
alerts`` show it all.

Two contractors cover the same site equally well, so without scores the one with the smaller id
is offered an order first.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from fixloop_contractors.adapters.mongo import MongoDispatchLedger
from fixloop_contractors.adapters.performance import MongoPerformanceLedger
from fixloop_contractors.app.registry import import_contractors
from fixloop_contractors.cli import app as contractors_cli
from fixloop_contractors.cli_dispatch import app as dispatch_cli
from fixloop_contractors.domain.model import Contractor, Credential, CredentialKind, ServiceRegion
from fixloop_contractors.main import ContractorsService, bootstrap
from fixloop_contractors.settings import ContractorsSettings
from fixloop_devkit.testing import (
    ConsumedRecord,
    eventually,
    produce,
    read_topic,
    start_in_process,
    unique,
)
from fixloop_shared.contracts import (
    EventPayload,
    FeedbackSubmitted,
    WorkOrderAssigned,
    WorkOrderOfferDeclined,
    WorkOrderOnSite,
    WorkOrderReceived,
    WorkOrderScheduled,
    WorkOrderWorkCompleted,
)
from fixloop_shared.envelope import EventEnvelope, binary_headers, encode_payload
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.topics import Topic

pytestmark = pytest.mark.integration

SCORECARD = "fixloop.contractor.scorecard_updated.v1"
ALERT = "fixloop.quality.alert_raised.v1"
OFFERED = "fixloop.assignment.offered.v1"
MINUTE = timedelta(minutes=1)


@pytest.fixture(scope="module")
async def service(kafka_bootstrap: str, mongodb_uri: str) -> AsyncIterator[ContractorsService]:
    settings = ContractorsSettings(
        mongodb_uri=mongodb_uri,
        database=unique("performance").replace("-", "_"),
        kafka=KafkaSettings(bootstrap=kafka_bootstrap),
        health_port=0,
        grpc_port=0,
        outbox_poll_seconds=0.05,
        offer_ttl_seconds=600,
        scorecard_min_sample=1,  # every measure counts from its first case here
    )
    built = await start_in_process(lambda: bootstrap(settings))
    try:
        yield built
    finally:
        await built.app.stop()


async def two_contractors(service: ContractorsService, tenant: str) -> tuple[str, str]:
    """Two contractors of ``tenant`` equal in everything but their ids (``a`` sorts first)."""
    ids = (unique("ctr-a"), unique("ctr-b"))
    await import_contractors(
        service.registry,
        [
            Contractor(
                contractor_id=contractor_id,
                name=f"Klima {contractor_id}",
                email=f"{contractor_id}@example.com",
                timezone="Europe/Berlin",
                tenants=frozenset({tenant}),
                skills=frozenset({"hvac"}),
                regions=(ServiceRegion(country="DE", postal_prefixes=("10115",)),),
                credentials=(
                    Credential(
                        kind=CredentialKind.LIABILITY_INSURANCE,
                        number=f"INS-{contractor_id}",
                        expires_on=datetime(2099, 12, 31, tzinfo=UTC).date(),
                    ),
                ),
            )
            for contractor_id in ids
        ],
        as_of=datetime.now(UTC).date(),
    )
    return ids


def received(tenant: str, equipment_id: str, at: datetime) -> WorkOrderReceived:
    work_order_id = unique("wo")
    return WorkOrderReceived.model_validate_json(
        json.dumps(
            {
                "work_order_id": work_order_id,
                "tenant": tenant,
                "source_platform": "fieldhub",
                "received_at": at.isoformat(),
                "external_id": f"FH-{work_order_id}",
                "site": {
                    "site_id": "site-7",
                    "name": "Test site",
                    "address": {
                        "line1": "Teststraße 1",
                        "city": "Berlin",
                        "postal_code": "10115",
                        "country": "DE",
                    },
                    "timezone": "Europe/Berlin",
                },
                "equipment": {"equipment_id": equipment_id, "equipment_class": "hvac"},
                "category": "breakdown",
                "priority": "normal",
                "description": "Does not cool",
                "requester": {"name": "Mara Keller", "email": "mara@example.com", "locale": "de"},
            }
        )
    )


def lifecycle_step(
    model: type[EventPayload], work_order_id: str, at: datetime, **more: Any
) -> EventPayload:
    """A lifecycle event as the orders service sends it (read from its JSON, as on the wire)."""
    return model.model_validate_json(
        json.dumps(
            {
                "work_order_id": work_order_id,
                "external_id": f"FH-{work_order_id}",
                "source_platform": "fieldhub",
                "state": "assigned",
                "previous_state": "dispatching",
                "occurred_at": at.isoformat(),
                "actor": {"kind": "contractor", "id": more.get("contractor_id", "ctr-x")},
                "via": "grpc",
                "version": 3,
                **more,
            },
            default=datetime.isoformat,
        )
    )


async def publish(bootstrap: str, payload: EventPayload, tenant: str) -> None:
    """Publish like the orders service does: binary mode, keyed by the work order id."""
    work_order_id = str(getattr(payload, "work_order_id", ""))
    envelope = EventEnvelope.new(payload, source="orders", subject=work_order_id, tenant=tenant)
    await produce(
        bootstrap,
        Topic.WORKORDERS_EVENTS,
        encode_payload(payload),
        key=work_order_id.encode(),
        headers=binary_headers(envelope),
    )


async def keyed(
    bootstrap: str, key: str, event_type: str, *, until: Any = None, timeout: float = 60
) -> list[dict[str, Any]]:
    """The contractors' events of ``event_type`` keyed by ``key``, in order, once ``until``
    holds for them (default: there is one)."""
    wanted = until or (lambda found: len(found) >= 1)

    def mine(records: Sequence[ConsumedRecord]) -> list[dict[str, Any]]:
        found = sorted(
            (r for r in records if r.key == key.encode() and r.headers["ce_type"] == event_type),
            key=lambda r: r.offset,
        )
        return [r.json() for r in found]

    records = await read_topic(
        bootstrap, Topic.CONTRACTORS_EVENTS, until=lambda rs: wanted(mine(rs)), timeout=timeout
    )
    found = mine(records)
    assert wanted(found), found
    return found


def cli(service: ContractorsService, app: Any, *args: str) -> Result:
    return CliRunner().invoke(
        app,
        list(args),
        env={
            "FIXLOOP_CONTRACTORS_MONGODB_URI": service.settings.mongodb_uri,
            "FIXLOOP_CONTRACTORS_DATABASE": service.settings.database,
            "FIXLOOP_CONTRACTORS_SCORECARD_MIN_SAMPLE": "1",
            "COLUMNS": "250",
        },
    )


async def run_cli(service: ContractorsService, app: Any, *args: str) -> Result:
    return await asyncio.to_thread(cli, service, app, *args)


async def test_scorecards_and_quality_alerts_from_an_orders_steps_change_the_next_ranking(
    service: ContractorsService, kafka_bootstrap: str
) -> None:
    tenant = unique("perf")
    first, second = await two_contractors(service, tenant)
    equipment = unique("ahu")
    start = datetime.now(UTC).replace(microsecond=0)
    order = received(tenant, equipment, start)
    wo = order.work_order_id

    # Round 1 to the first by id; it declines, round 2 goes to the second.
    await publish(kafka_bootstrap, order, tenant)
    (offered,) = await keyed(kafka_bootstrap, wo, OFFERED)
    assert offered["contractor_id"] == first
    await publish(
        kafka_bootstrap,
        lifecycle_step(
            WorkOrderOfferDeclined,
            wo,
            start + MINUTE,
            offer_id=offered["offer_id"],
            declined_by=first,
        ),
        tenant,
    )
    reoffered = (await keyed(kafka_bootstrap, wo, OFFERED, until=lambda found: len(found) >= 2))[1]
    assert reoffered["contractor_id"] == second

    # The second takes it 6 minutes after its offer, arrives within the agreed window and
    # reports the 90-minute standard repair done 10 minutes later; the customer rates it 4.
    offered_at = datetime.fromisoformat(reoffered["offered_at"])
    steps = [
        lifecycle_step(
            WorkOrderAssigned,
            wo,
            offered_at + 6 * MINUTE,
            offer_id=reoffered["offer_id"],
            contractor_id=second,
        ),
        lifecycle_step(
            WorkOrderScheduled,
            wo,
            start + 10 * MINUTE,
            contractor_id=second,
            window_start=start + 60 * MINUTE,
            window_end=start + 120 * MINUTE,
        ),
        lifecycle_step(WorkOrderOnSite, wo, start + 90 * MINUTE, contractor_id=second),
        lifecycle_step(
            WorkOrderWorkCompleted,
            wo,
            start + 100 * MINUTE,
            contractor_id=second,
            completion={
                "resolution_code": "replaced_part",
                "work_summary": "Replaced the compressor relay.",
                "labour_minutes": 10,
            },
            verify_by=start + timedelta(days=3),
        ),
        FeedbackSubmitted(work_order_id=wo, rating=4, submitted_at=start + timedelta(days=1)),
    ]
    for payload in steps:
        await publish(kafka_bootstrap, payload, tenant)

    # The first declined its only offer: acceptance 0 %, and that is its whole score.
    (declined_card,) = await keyed(kafka_bootstrap, first, SCORECARD)
    assert declined_card["samples"]["offers_answered"] == 1
    assert declined_card["measures"]["acceptance_rate"] == 0.0
    assert declined_card["score"] == 0.0

    def complete(found: list[dict[str, Any]]) -> bool:
        return bool(found) and found[-1]["samples"] == {
            "offers_answered": 1,
            "offers_accepted": 1,
            "accept_times": 1,
            "arrivals": 1,
            "completions": 1,
            "fixes": 1,
            "ratings": 1,
        }

    card = (await keyed(kafka_bootstrap, second, SCORECARD, until=complete))[-1]
    assert card["measures"] == {
        "acceptance_rate": 1.0,
        "median_seconds_to_accept": 360.0,
        "mean_seconds_to_accept": 360.0,
        "on_time_arrival_rate": 1.0,
        "completion_within_target_rate": 1.0,
        "median_seconds_to_complete": 6000.0,
        "first_time_fix_rate": 1.0,
        "mean_rating": 4.0,
    }
    # Time to accept 6 min: 15 / (15 + 6); weights 1, .5, 1, 1, 1.5, 1; rating 4 -> 0.75.
    speed = 15 / (15 + 6)
    expected = (1 + 0.5 * speed + 1 + 1 + 1.5 + 0.75) / 6
    assert card["score"] == round(expected, 2)
    assert card["min_sample"] == 1

    # 10 minutes on site for a 90-minute breakdown repair: too fast.
    (too_fast,) = await keyed(kafka_bootstrap, wo, ALERT)
    assert (too_fast["kind"], too_fast["contractor_id"], too_fast["equipment_id"]) == (
        "too_fast_completion",
        second,
        equipment,
    )
    assert too_fast["too_fast"]["minutes_taken"] == 10.0
    assert too_fast["too_fast"]["standard_minutes"] == 90.0
    assert too_fast["too_fast"]["measured_from"] == "on_site_to_completed"

    # The scores are on the profiles: the next order on the site goes to the second first.
    ledger = MongoPerformanceLedger(service.ctx.store)

    async def scores() -> list[float | None]:
        return [
            None if (c := await ledger.profile(cid)) is None else c.scorecard
            for cid in (first, second)
        ]

    assert await eventually(scores, lambda s: s == [0.0, card["score"]])
    again = received(tenant, equipment, start + timedelta(days=3))
    await publish(kafka_bootstrap, again, tenant)
    (next_offer,) = await keyed(kafka_bootstrap, again.work_order_id, OFFERED)
    assert next_offer["contractor_id"] == second

    # The same equipment broke down again 3 days after the repair: a repeat repair, and the
    # repair no longer counts as fixed the first time.
    (repeat,) = await keyed(kafka_bootstrap, again.work_order_id, ALERT)
    assert (repeat["kind"], repeat["contractor_id"]) == ("repeat_repair", second)
    evidence = repeat["repeat_repair"]
    assert (evidence["earlier_work_order_id"], evidence["window_days"]) == (wo, 30)
    assert evidence["days_after_completion"] == round(3 - 100 / 1440, 3)
    recalled = await keyed(
        kafka_bootstrap,
        second,
        SCORECARD,
        until=lambda found: bool(found) and found[-1]["measures"]["first_time_fix_rate"] == 0.0,
    )
    assert recalled[-1]["samples"]["fixes"] == 1
    assert recalled[-1]["score"] == round((1 + 0.5 * speed + 1 + 1 + 0 + 0.75) / 6, 2)
    # Dispatch ranked the second above the first by their scores: with the first-time fix (if
    # it decided before the repeat was counted) or without it.
    (explained,) = await MongoDispatchLedger(service.ctx.store).explanations(again.work_order_id)
    components = {c.contractor_id: dict(c.components) for c in explained.candidates}
    assert components[first]["scorecard"] == 0.0
    assert components[second]["scorecard"] in {card["score"], recalled[-1]["score"]}

    # Operators see it: the contractor with its scorecard, the alerts in their queue.
    shown = await run_cli(service, contractors_cli, "show", second)
    assert shown.exit_code == 0, shown.output
    for text in (
        f"Contractor {second}",
        "liability insurance",
        "2099-12-31",
        "acceptance rate",
        "first-time fix",
        "4.0 / 5",
        "median 6m 00s",
        "2 open quality alerts",
    ):
        assert text in shown.stdout, text
    queue = await run_cli(service, dispatch_cli, "queue", "--tenant", tenant)
    assert queue.exit_code == 0, queue.output
    assert f"2 open quality alerts: fixloop dispatch alerts --tenant {tenant}" in queue.stdout
    listed = await run_cli(service, dispatch_cli, "alerts", "--tenant", tenant)
    assert listed.exit_code == 0, listed.output
    for text in (too_fast["alert_id"], repeat["alert_id"], "too fast completion", "repeat repair"):
        assert text in listed.stdout
    resolved = await run_cli(
        service,
        dispatch_cli,
        "resolve-alert",
        too_fast["alert_id"],
        "--note",
        "photos show the relay swap; a quick job",
        "--by",
        "ops-jane",
    )
    assert resolved.exit_code == 0, resolved.output
    open_alerts = await ledger.alerts(tenant=tenant)
    assert [a.alert.alert_id for a in open_alerts] == [repeat["alert_id"]]


async def test_contractors_show_refuses_an_unknown_or_malformed_id_in_one_line(
    service: ContractorsService,
) -> None:
    unknown = await run_cli(service, contractors_cli, "show", "ctr-nobody")
    assert unknown.exit_code == 1
    assert unknown.stderr.splitlines() == ["error: no contractor ctr-nobody"]
    malformed = await run_cli(service, contractors_cli, "show", "not an id")
    assert malformed.exit_code == 2
    assert len(malformed.stderr.splitlines()) == 1
    assert "is not a contractor id" in malformed.stderr
