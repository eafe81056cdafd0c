"""Wire contracts: one pydantic model per event type, grouped by the service that owns it.

This package is the public API: import from ``fixloop_shared.contracts``. Where each lives:

* :mod:`~fixloop_shared.contracts.base` — ``Contract``, ``ClosedContract``, ``EventPayload``;
* :mod:`~fixloop_shared.contracts.workorders` — orders (work order submitted / received, and
  the work order facts other events reuse);
* :mod:`~fixloop_shared.contracts.contractors`, :mod:`~fixloop_shared.contracts.parts`,
  :mod:`~fixloop_shared.contracts.sla`, :mod:`~fixloop_shared.contracts.notifications` — the
  events each of those services publishes;
* :mod:`~fixloop_shared.contracts.registry` — CloudEvents ``type`` → payload model;
* :mod:`~fixloop_shared.contracts.types` — constrained field types.

The JSON Schemas in ``docs/contracts`` are generated from these models.
"""

from fixloop_shared.contracts.base import (
    ClosedContract,
    Contract,
    EventPayload,
)
from fixloop_shared.contracts.contractors import (
    AssignmentAccepted,
    AssignmentDeclined,
    AssignmentExpired,
    AssignmentOffered,
    AssignmentUnfilled,
    AssignmentWithdrawn,
    ContractorCredentialExpired,
    ContractorCredentialExpiring,
    UnfilledReason,
)
from fixloop_shared.contracts.lifecycle import (
    LIFECYCLE_EVENTS,
    PLATFORM_COMMANDS,
    Actor,
    CancellationRequested,
    ChecklistResult,
    CompletionRejected,
    CompletionReport,
    CompletionVerified,
    LifecycleFacts,
    PartUsed,
    PhotoEvidence,
    PlatformCommand,
    WorkOrderArchived,
    WorkOrderAssigned,
    WorkOrderAwaitingParts,
    WorkOrderCancelled,
    WorkOrderClosed,
    WorkOrderCommentAdded,
    WorkOrderDelayed,
    WorkOrderDispatching,
    WorkOrderEnRoute,
    WorkOrderOfferDeclined,
    WorkOrderOnSite,
    WorkOrderProgressReported,
    WorkOrderReopened,
    WorkOrderScheduled,
    WorkOrderVerified,
    WorkOrderWorkCompleted,
)
from fixloop_shared.contracts.notifications import (
    Channel,
    NotificationFailed,
    NotificationOutcome,
    NotificationSent,
)
from fixloop_shared.contracts.parts import (
    PartReservation,
    PartsBackordered,
    PartsConsumed,
    PartsReleased,
    PartsReserved,
)
from fixloop_shared.contracts.registry import (
    EVENT_TYPES,
    EVENTS_ON_TOPIC,
    INBOUND_EVENT_TYPES,
    payload_model,
)
from fixloop_shared.contracts.sla import (
    Milestone,
    SlaBreached,
    SlaClockFacts,
    SlaMet,
    SlaStopped,
    SlaWarning,
)
from fixloop_shared.contracts.workorders import (
    Address,
    Category,
    Equipment,
    PartLine,
    Priority,
    Requester,
    Site,
    WorkOrderDetails,
    WorkOrderReceived,
    WorkOrderSubmitted,
)

__all__ = [
    "EVENTS_ON_TOPIC",
    "EVENT_TYPES",
    "INBOUND_EVENT_TYPES",
    "LIFECYCLE_EVENTS",
    "PLATFORM_COMMANDS",
    "Actor",
    "Address",
    "AssignmentAccepted",
    "AssignmentDeclined",
    "AssignmentExpired",
    "AssignmentOffered",
    "AssignmentUnfilled",
    "AssignmentWithdrawn",
    "CancellationRequested",
    "Category",
    "Channel",
    "ChecklistResult",
    "ClosedContract",
    "CompletionRejected",
    "CompletionReport",
    "CompletionVerified",
    "Contract",
    "ContractorCredentialExpired",
    "ContractorCredentialExpiring",
    "Equipment",
    "EventPayload",
    "LifecycleFacts",
    "Milestone",
    "NotificationFailed",
    "NotificationOutcome",
    "NotificationSent",
    "PartLine",
    "PartReservation",
    "PartUsed",
    "PartsBackordered",
    "PartsConsumed",
    "PartsReleased",
    "PartsReserved",
    "PhotoEvidence",
    "PlatformCommand",
    "Priority",
    "Requester",
    "Site",
    "SlaBreached",
    "SlaClockFacts",
    "SlaMet",
    "SlaStopped",
    "SlaWarning",
    "UnfilledReason",
    "WorkOrderArchived",
    "WorkOrderAssigned",
    "WorkOrderAwaitingParts",
    "WorkOrderCancelled",
    "WorkOrderClosed",
    "WorkOrderCommentAdded",
    "WorkOrderDelayed",
    "WorkOrderDetails",
    "WorkOrderDispatching",
    "WorkOrderEnRoute",
    "WorkOrderOfferDeclined",
    "WorkOrderOnSite",
    "WorkOrderProgressReported",
    "WorkOrderReceived",
    "WorkOrderReopened",
    "WorkOrderScheduled",
    "WorkOrderSubmitted",
    "WorkOrderVerified",
    "WorkOrderWorkCompleted",
    "payload_model",
]
