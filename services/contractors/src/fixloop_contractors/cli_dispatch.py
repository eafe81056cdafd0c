"""``fixloop dispatch ...``: why a work order went to whom.

Reads the contractors service's own store (``FIXLOOP_CONTRACTORS_MONGODB_URI`` and
``FIXLOOP_CONTRACTORS_DATABASE``, defaults for the embedded stack): each round's decision with
every contractor it assessed, and what became of each offer.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fixloop_contractors.cli import EXIT_FAILURE, EXIT_USAGE, fail, service_settings, with_store

if TYPE_CHECKING:
    from fixloop_contractors.app.explain import CandidateOutcome, DispatchExplanation
    from fixloop_contractors.domain.offers import Offer
    from fixloop_shared.store import Store

app = typer.Typer(
    name="dispatch",
    help="Dispatch: explain why a work order was offered to whom.",
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
    if candidate.excluded:
        return Text("excluded: " + "; ".join(candidate.excluded), style="dim")
    if candidate.offered:
        return Text("offered: " + (offer_outcome(offer) if offer else "open"), style="bold")
    return Text("ranked, not offered")


def round_table(explanation: DispatchExplanation, offer: Offer | None) -> Table:
    when = explanation.decided_at.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    if explanation.offered_to is not None:
        result = f"offered to {explanation.offered_to}"
        if offer is not None:
            result += f" ({offer_outcome(offer)})"
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
            candidate_outcome(candidate, offer if candidate.offered else None),
        )
    return table


def as_json(explanation: DispatchExplanation, offer: Offer | None) -> dict[str, Any]:
    from fixloop_contractors.adapters.mongo import explanation_document

    doc = explanation_document(explanation)
    doc["decision_id"] = doc.pop("_id")
    doc["decided_at"] = explanation.decided_at.isoformat()
    doc["offer_outcome"] = None if offer is None else offer.status.value
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
    from pydantic import TypeAdapter, ValidationError

    from fixloop_contractors.adapters.mongo import MongoDispatchLedger
    from fixloop_shared.contracts.types import Identifier

    try:
        TypeAdapter(Identifier).validate_python(work_order_id)
    except ValidationError:
        fail(f"{work_order_id!r} is not a work order id", EXIT_USAGE)

    async def work(store: Store) -> tuple[list[DispatchExplanation], list[Offer]]:
        ledger = MongoDispatchLedger(store)
        return await ledger.explanations(work_order_id), await ledger.offers(work_order_id)

    explanations, offers = with_store(service_settings(), work)
    if not explanations:
        fail(f"no dispatch decision for work order {work_order_id}", EXIT_FAILURE)
    by_round = {o.dispatch_round: o for o in offers}
    if output_json:
        for explanation in explanations:
            offer = by_round.get(explanation.dispatch_round)
            typer.echo(json.dumps(as_json(explanation, offer), default=str))
        return
    console = Console(highlight=False)
    for explanation in explanations:
        console.print(round_table(explanation, by_round.get(explanation.dispatch_round)))


__all__ = ["app"]
