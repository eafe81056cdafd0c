"""The wire form of a lifecycle step: one ``fixloop.workorder.<step>.v1`` event per step taken.

Mapped here, at the app edge, from the domain's request and decision; the domain never sees the
wire models.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from fixloop_orders.domain.lifecycle import Completion, Decision, Request, Step
from fixloop_orders.domain.work_order import WorkOrder
from fixloop_shared import contracts
from fixloop_shared.contracts import EventPayload

EVENT_OF_STEP: Mapping[Step, type[EventPayload]] = MappingProxyType(
    {
        Step.START_DISPATCH: contracts.WorkOrderDispatching,
        Step.ASSIGN: contracts.WorkOrderAssigned,
        Step.DECLINE_OFFER: contracts.WorkOrderOfferDeclined,
        Step.SCHEDULE: contracts.WorkOrderScheduled,
        Step.DEPART: contracts.WorkOrderEnRoute,
        Step.ARRIVE: contracts.WorkOrderOnSite,
        Step.AWAIT_PARTS: contracts.WorkOrderAwaitingParts,
        Step.REPORT_PROGRESS: contracts.WorkOrderProgressReported,
        Step.REPORT_DELAY: contracts.WorkOrderDelayed,
        Step.COMPLETE: contracts.WorkOrderWorkCompleted,
        Step.VERIFY: contracts.WorkOrderVerified,
        Step.REJECT: contracts.WorkOrderReopened,
        Step.CLOSE: contracts.WorkOrderClosed,
        Step.CANCEL: contracts.WorkOrderCancelled,
        Step.ARCHIVE: contracts.WorkOrderArchived,
        Step.COMMENT: contracts.WorkOrderCommentAdded,
    }
)
"""The event each step is published as."""


def event_type_of(step: Step) -> str:
    return EVENT_OF_STEP[step].event_type


def completion_report(completion: Completion) -> contracts.CompletionReport:
    return contracts.CompletionReport(
        resolution_code=completion.resolution_code,
        work_summary=completion.work_summary,
        labour_minutes=completion.labour_minutes,
        parts_used=[
            contracts.PartUsed(part_number=part.part_number, quantity=part.quantity)
            for part in completion.parts_used
        ],
        checklist=[
            contracts.ChecklistResult(item=item.item, outcome=item.outcome, note=item.note)
            for item in completion.checklist
        ],
        photos=[
            contracts.PhotoEvidence(
                uri=photo.uri,
                content_type=photo.content_type,
                size_bytes=photo.size_bytes,
                sha256=photo.sha256,
            )
            for photo in completion.photos
        ],
    )


def _particulars(order: WorkOrder, request: Request) -> dict[str, Any]:  # noqa: PLR0911
    step = request.step
    if step in (Step.START_DISPATCH, Step.ASSIGN):
        return {"offer_id": request.offer_id}
    if step is Step.DECLINE_OFFER:
        return {"offer_id": request.offer_id, "declined_by": request.actor.id}
    if step is Step.SCHEDULE and request.window is not None:
        return {"window_start": request.window[0], "window_end": request.window[1]}
    if step in (Step.DEPART, Step.ARRIVE, Step.REPORT_PROGRESS):
        return {"eta": request.eta}
    if step is Step.AWAIT_PARTS:
        return {
            "eta": request.eta,
            "parts": [
                contracts.PartUsed(part_number=part.part_number, quantity=part.quantity)
                for part in request.parts
            ],
        }
    if step is Step.REPORT_DELAY:
        return {"cause": request.cause, "new_eta": request.eta}
    if step is Step.COMPLETE and order.completion is not None and order.verify_by is not None:
        return {"completion": completion_report(order.completion), "verify_by": order.verify_by}
    if step is Step.VERIFY:
        return {"automatic": request.automatic}
    if step is Step.CLOSE and order.closed_at is not None:
        return {"reopen_until": order.standing().reopen_until}
    if step is Step.COMMENT:
        return {"comment_id": request.comment_id, "text": request.note}
    return {}


def lifecycle_event(
    order: WorkOrder, request: Request, decision: Decision, *, via: str
) -> EventPayload:
    """The event publishing a step just taken on ``order``."""
    actor = request.actor
    facts: dict[str, Any] = {
        "work_order_id": order.work_order_id,
        "external_id": order.details.external_id,
        "source_platform": order.source_platform,
        "state": decision.after,
        "previous_state": decision.before,
        "occurred_at": request.at,
        "actor": contracts.Actor(kind=actor.kind, id=actor.id, name=actor.name),
        "via": via,
        "reason": request.reason,
        "note": request.note if request.step is not Step.COMMENT else None,
        "version": order.version,
        "contractor_id": order.contractor_id,
    }
    model = EVENT_OF_STEP[request.step]
    return model.model_validate({**facts, **_particulars(order, request)}, strict=False)


__all__ = ["EVENT_OF_STEP", "completion_report", "event_type_of", "lifecycle_event"]
