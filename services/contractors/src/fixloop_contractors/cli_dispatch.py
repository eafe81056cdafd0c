"""``fixloop dispatch ...``: the operators' dispatch desk.

- ``queue``: work orders nobody took, waiting for an operator, oldest first.
- ``assign``: give a work order to a contractor (audited: the operator and the reason go into
  the order's timeline).
- ``explain``: why a work order went to whom: each round's decision with every contractor it
  assessed, and what became of each offer.
- ``alerts``: quality alerts waiting for an operator (work done far faster than its standard
  time, repeat repairs); ``resolve-alert`` closes one with what was found.

Works on the contractors service's own store (``FIXLOOP_CONTRACTORS_MONGODB_URI`` and
``FIXLOOP_CONTRACTORS_DATABASE``, defaults for the embedded stack) through the service's use
cases; what they publish goes out through the service's outbox.
"""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fixloop_contractors.cli import (
    EXIT_FAILURE,
    check_value,
    fail,
    service_settings,
    with_store,
)

if TYPE_CHECKING:
    from fixloop_contractors.app.dispatch import DispatchResult
    from fixloop_contractors.app.explain import CandidateOutcome, DispatchExplanation
    from fixloop_contractors.app.performance import StoredAlert
    from fixloop_contractors.app.ports import QueuedOrder
    from fixloop_contractors.domain.offers import Offer
    from fixloop_shared.store import Store

app = typer.Typer(
    name="dispatch",
    help=(
        "Dispatch desk: the queue of orders nobody took, assigning one, explaining a decision, "
        "quality alerts."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

COMPONENTS = ("travel", "load", "skill", "scorecard", "preference", "on_call")


@app.callback()
def dispatch() -> None:
    """Dispatch decisions of the contractors service."""


def offer_outcome(offer: Offer) -> str:
    """What became of an offer, in a few words."""
    status = offer.status.value.replace("_", " ")
    if offer.status.value == "timed_out":
        return "ran out (no answer)"
    if offer.reason:
        return f"{status}: {offer.reason}"
    return status


def candidate_outcome(candidate: CandidateOutcome, offer: Offer | None) -> Text:
    if candidate.offered:
        text = "offered: " + (offer_outcome(offer) if offer else "open")
        if candidate.excluded:  # an operator's choice over the rules
            text += " (" + "; ".join(candidate.excluded) + ")"
        return Text(text, style="bold")
    if candidate.excluded:
        return Text("excluded: " + "; ".join(candidate.excluded), style="dim")
    return Text("ranked, not offered")


def round_table(explanation: DispatchExplanation, offers: dict[str, Offer]) -> Table:
    when = explanation.decided_at.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    if explanation.offered_to:
        parts = []
        for contractor_id in explanation.offered_to:
            offer = offers.get(contractor_id)
            parts.append(
                contractor_id if offer is None else f"{contractor_id} ({offer_outcome(offer)})"
            )
        result = "offered to " + ", ".join(parts)
    else:
        result = f"unfilled: {explanation.reason}"
    weights = ", ".join(f"{name} {value:g}" for name, value in explanation.weights)
    table = Table(
        title=(
            f"Round {explanation.dispatch_round}, {when}: {result}\n"
            f"{explanation.assessed} contractors assessed; weights: {weights}"
        ),
        title_justify="left",
    )
    table.add_column("rank", justify="right")
    table.add_column("contractor")
    table.add_column("total", justify="right")
    for name in COMPONENTS:
        table.add_column(name.replace("_", " "), justify="right")
    table.add_column("km", justify="right")
    table.add_column("outcome")
    for candidate in explanation.candidates:
        components = dict(candidate.components)
        table.add_row(
            "" if candidate.rank is None else str(candidate.rank),
            candidate.contractor_id,
            "" if candidate.total is None else f"{candidate.total:.3f}",
            *("" if name not in components else f"{components[name]:.2f}" for name in COMPONENTS),
            "" if candidate.travel_km is None else f"{candidate.travel_km:.1f}",
            candidate_outcome(candidate, offers.get(candidate.contractor_id)),
        )
    return table


def as_json(explanation: DispatchExplanation, offers: dict[str, Offer]) -> dict[str, Any]:
    from fixloop_contractors.adapters.mongo import explanation_document

    doc = explanation_document(explanation)
    doc["decision_id"] = doc.pop("_id")
    doc["decided_at"] = explanation.decided_at.isoformat()
    doc["offer_outcomes"] = {c: o.status.value for c, o in offers.items()}
    return doc


@app.command("explain")
def explain_dispatch(
    work_order_id: Annotated[str, typer.Argument(help="The work order's id.")],
    output_json: Annotated[
        bool, typer.Option("--json", help="Print the explanations as JSON lines.")
    ] = False,
) -> None:
    """Every dispatch round of a work order: each contractor assessed, ranked with its score
    components or excluded with its reasons, and what became of the offer."""
    from fixloop_contractors.adapters.mongo import MongoDispatchLedger

    check_value("Identifier", work_order_id, "ORDER", "a work order id")

    async def work(store: Store) -> tuple[list[DispatchExplanation], list[Offer]]:
        ledger = MongoDispatchLedger(store)
        return await ledger.explanations(work_order_id), await ledger.offers(work_order_id)

    explanations, offers = with_store(service_settings(), work)
    if not explanations:
        fail(f"no dispatch decision for work order {work_order_id}", EXIT_FAILURE)
    by_round: dict[int, dict[str, Offer]] = {}
    for offer in offers:
        by_round.setdefault(offer.dispatch_round, {})[offer.contractor_id] = offer
    if output_json:
        for explanation in explanations:
            in_round = by_round.get(explanation.dispatch_round, {})
            typer.echo(json.dumps(as_json(explanation, in_round), default=str))
        return
    console = Console(highlight=False)
    for explanation in explanations:
        console.print(round_table(explanation, by_round.get(explanation.dispatch_round, {})))


def _waited(since: datetime, now: datetime) -> str:
    minutes = max(0, int((now - since).total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


@app.command("queue")
def show_queue(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's orders.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many orders.", min=1, max=1000)] = 200,
) -> None:
    """Work orders waiting for an operator, oldest first, with how long they have waited:
    unfilled (nobody took them) and escalated (not taken in time; offers go on)."""
    from fixloop_contractors.adapters.mongo import MongoDispatchLedger

    check_value("TenantId", tenant, "--tenant", "a tenant id")

    async def work(store: Store) -> tuple[list[QueuedOrder], int]:
        from fixloop_contractors.adapters.performance import MongoPerformanceLedger

        queued = await MongoDispatchLedger(store).queue(tenant=tenant, limit=limit)
        return queued, await MongoPerformanceLedger(store).open_alerts(tenant=tenant)

    queued, open_alerts = with_store(service_settings(), work)
    console = Console(highlight=False)
    if open_alerts:
        # Quality alerts wait in the same desk's queue: listed by ``fixloop dispatch alerts``.
        console.print(
            Text(
                f"{open_alerts} open quality alert{'s' if open_alerts != 1 else ''}: "
                "fixloop dispatch alerts" + (f" --tenant {tenant}" if tenant else ""),
                style="yellow",
            )
        )
    if not queued:
        console.print("No work orders waiting for an operator.")
        return
    now = datetime.now(UTC)
    table = Table(title=f"{len(queued)} work orders waiting for an operator", title_justify="left")
    columns = (
        "work order",
        "state",
        "tenant",
        "site",
        "equipment",
        "priority",
        "waiting",
        "offers",
    )
    for column in columns:
        table.add_column(column, justify="right" if column in {"waiting", "offers"} else "left")
    table.add_column("why")
    for order in queued:
        table.add_row(
            order.work_order_id,
            order.state.value,
            order.tenant,
            order.site,
            order.equipment_class,
            order.priority,
            _waited(order.waiting_since, now),
            str(order.rounds),
            order.reason,
        )
    console.print(table)


@app.command("assign")
def assign(
    work_order_id: Annotated[str, typer.Argument(help="The work order's id.")],
    contractor_id: Annotated[str, typer.Argument(help="The contractor to give it to.")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why this contractor (kept in the order's timeline).")
    ],
    override_credentials: Annotated[
        str | None,
        typer.Option(
            "--override-credentials",
            help="Assign even though a credential of the contractor has expired; say why.",
        ),
    ] = None,
    by: Annotated[
        str | None,
        typer.Option("--by", help="The operator's id for the audit trail (default: $USER)."),
    ] = None,
) -> None:
    """Give a work order to a contractor: its open offers are withdrawn and the orders service
    assigns it at once. Refused for a contractor with an expired credential unless
    --override-credentials gives a reason."""
    from fixloop_contractors.adapters.mongo import MongoDispatchLedger
    from fixloop_contractors.app.dispatch import (
        OperatorAssignmentRefusedError,
        WorkOrderDispatcher,
    )
    from fixloop_shared.kernel import in_unit_of_work

    operator = by or _default_operator()
    check_value("Identifier", work_order_id, "ORDER", "a work order id")
    check_value("Identifier", contractor_id, "CONTRACTOR", "a contractor id")
    check_value("Identifier", operator, "--by", "an operator id")
    for text, option in ((reason, "--reason"), (override_credentials, "--override-credentials")):
        check_value("ShortText", text, option, "1 to 500 printable characters")
    settings = service_settings()

    async def work(store: Store) -> DispatchResult:
        dispatcher = WorkOrderDispatcher(
            MongoDispatchLedger(store),
            offer_ttl=settings.offer_ttl,
            emergency_offer_ttl=settings.emergency_offer_ttl,
            max_rounds=settings.dispatch_max_rounds,
            weights=settings.score_weights.score_weights(),
        )
        return await in_unit_of_work(
            store,
            lambda uow: dispatcher.assign_by_operator(
                uow,
                work_order_id=work_order_id,
                contractor_id=contractor_id,
                operator=operator,
                reason=reason,
                override_credentials=override_credentials,
            ),
        )

    try:
        result = with_store(settings, work)
    except OperatorAssignmentRefusedError as exc:
        fail(str(exc), EXIT_FAILURE)
    Console(highlight=False).print(
        f"Work order {work_order_id} given to {contractor_id} by {operator} "
        f"(round {result.dispatch_round}, offer {result.offer_id}); the orders service assigns "
        "it now."
    )


def _alert_evidence(stored: StoredAlert) -> str:
    """The alert's evidence in a few words."""
    from fixloop_contractors.domain.quality import TooFastEvidence

    evidence = stored.alert.evidence
    if isinstance(evidence, TooFastEvidence):
        took, standard = evidence.took.total_seconds() / 60, evidence.standard.total_seconds() / 60
        how = evidence.basis.value.replace("_", " ")
        return f"{took:.0f} of {standard:.0f} standard min ({how})"
    days = evidence.since_completion.total_seconds() / 86_400
    return f"{days:.1f} days after {evidence.earlier_work_order_id}" + (
        " (follow-up)" if evidence.follow_up else ""
    )


@app.command("alerts")
def show_alerts(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's alerts.")] = None,
    contractor: Annotated[
        str | None, typer.Option(help="Only alerts about this contractor's work.")
    ] = None,
    include_resolved: Annotated[
        bool, typer.Option("--all", help="Resolved alerts too (with who resolved them).")
    ] = False,
    limit: Annotated[int, typer.Option(help="At most this many alerts.", min=1, max=1000)] = 200,
) -> None:
    """Quality alerts waiting for an operator, oldest first: work completed far faster than its
    standard time, and repeat repairs on the same equipment."""
    from fixloop_contractors.adapters.performance import MongoPerformanceLedger

    check_value("TenantId", tenant, "--tenant", "a tenant id")
    check_value("Identifier", contractor, "--contractor", "a contractor id")

    async def work(store: Store) -> list[StoredAlert]:
        return await MongoPerformanceLedger(store).alerts(
            tenant=tenant,
            contractor_id=contractor,
            include_resolved=include_resolved,
            limit=limit,
        )

    alerts = with_store(service_settings(), work)
    console = Console(highlight=False)
    if not alerts:
        console.print("No quality alerts." if include_resolved else "No open quality alerts.")
        return
    shown = "quality alerts" if include_resolved else "open quality alerts"
    table = Table(title=f"{len(alerts)} {shown}", title_justify="left")
    for column in ("alert", "raised", "kind", "work order", "contractor", "equipment"):
        table.add_column(column)
    table.add_column("evidence")
    if include_resolved:
        table.add_column("resolved")
    for stored in alerts:
        alert = stored.alert
        row: list[str | Text] = [
            alert.alert_id,
            stored.raised_at.strftime("%Y-%m-%d %H:%M"),
            alert.kind.value.replace("_", " "),
            alert.work_order_id,
            alert.contractor_id or "-",
            f"{alert.equipment_id} ({alert.equipment_class}) at {alert.site_id}",
            _alert_evidence(stored),
        ]
        if include_resolved:
            row.append(
                Text("open", style="yellow")
                if stored.is_open
                else Text(f"by {stored.resolved_by}: {stored.resolution}", style="dim")
            )
        table.add_row(*row)
    console.print(table)


@app.command("resolve-alert")
def resolve_alert(
    alert_id: Annotated[str, typer.Argument(metavar="ALERT", help="The alert's id.")],
    note: Annotated[str, typer.Option("--note", help="What was found (kept with the alert).")],
    by: Annotated[
        str | None,
        typer.Option("--by", help="The operator's id for the audit trail (default: $USER)."),
    ] = None,
) -> None:
    """Close a quality alert with what was found: it leaves the operators' queue."""
    from fixloop_contractors.adapters.performance import MongoPerformanceLedger

    operator = by or _default_operator()
    check_value("Identifier", alert_id, "ALERT", "an alert id")
    check_value("Identifier", operator, "--by", "an operator id")
    check_value("ShortText", note, "--note", "1 to 500 printable characters")

    async def work(store: Store) -> StoredAlert | None:
        return await MongoPerformanceLedger(store).resolve_alert(
            alert_id, by=operator, resolution=note, at=datetime.now(UTC)
        )

    stored = with_store(service_settings(), work)
    if stored is None:
        fail(f"no quality alert {alert_id}", EXIT_FAILURE)
    if stored.resolved_by != operator or stored.resolution != note:
        fail(f"quality alert {alert_id} was resolved already by {stored.resolved_by}")
    Console(highlight=False).print(f"Quality alert {alert_id} resolved by {operator}.")


def _default_operator() -> str:
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        return "operator"
    return name or "operator"


__all__ = ["app"]
