"""The partner API's messages: views and domain values to the wire, requests to domain values.

Everything read from a request is checked here, at the edge, with the field's path in the
violation (``completion.photos[2].sha256``); the domain then checks what only it can know.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from google.protobuf import timestamp_pb2
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from fixloop.v1 import contractor_jobs_service_pb2 as jobs_pb2
from fixloop.v1 import work_order_pb2
from fixloop_orders.app.ports import OfferRecord, OfferStatus
from fixloop_orders.app.queries import OfferView, TimelineEntryView, WorkOrderView
from fixloop_orders.domain.lifecycle import ChecklistItem, Completion, PartQuantity, Photo
from fixloop_shared.contracts.lifecycle import (
    MAX_CHECKLIST_ITEMS,
    MAX_LABOUR_MINUTES,
    MAX_PARTS_USED,
    MAX_PHOTO_BYTES,
    MAX_PHOTOS,
)
from fixloop_shared.errors import FieldViolation, InvalidInput
from fixloop_shared.grpc_edge.errors import INVALID_ARGUMENT_MESSAGE
from fixloop_shared.grpc_edge.reads import is_canonical_uuid
from fixloop_shared.vocabulary import (
    Category,
    ChecklistOutcome,
    DelayCause,
    Priority,
    WorkOrderState,
)

WORK_ORDER_ID_VIOLATION = (
    "must be a canonical lowercase UUID, e.g. 0b5e1c1e-3f43-4f9a-9d51-0f4c9d3a7b21"
)
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
OFFER_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
RESOLUTION_CODE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
URI_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]{1,490}$")
PHOTO_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/heic"})
REASON_MAX = 500
TEXT_MAX = 4000
NAME_MAX = 200
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _enum_name(enum: EnumTypeWrapper, name: str) -> str:
    """``name`` after checking that ``enum`` has it (the wire contract and the domain agree)."""
    enum.Value(name)
    return name


STATE_NAMES: Mapping[WorkOrderState, str] = {
    state: _enum_name(work_order_pb2.WorkOrderState, f"WORK_ORDER_STATE_{state.name}")
    for state in WorkOrderState
}
STATES_BY_NUMBER: Mapping[int, WorkOrderState] = {
    work_order_pb2.WorkOrderState.Value(name): state for state, name in STATE_NAMES.items()
}
_CATEGORIES: Mapping[Category, str] = {
    category: _enum_name(work_order_pb2.Category, f"CATEGORY_{category.name}")
    for category in Category
}
_PRIORITIES: Mapping[Priority, str] = {
    priority: _enum_name(work_order_pb2.Priority, f"PRIORITY_{priority.name}")
    for priority in Priority
}
CATEGORIES_BY_NUMBER: Mapping[int, Category] = {
    work_order_pb2.Category.Value(name): category for category, name in _CATEGORIES.items()
}
PRIORITIES_BY_NUMBER: Mapping[int, Priority] = {
    work_order_pb2.Priority.Value(name): priority for priority, name in _PRIORITIES.items()
}
CAUSES_BY_NUMBER: Mapping[int, DelayCause] = {
    work_order_pb2.DelayCause.Value(f"DELAY_CAUSE_{cause.name}"): cause for cause in DelayCause
}
OUTCOMES_BY_NUMBER: Mapping[int, ChecklistOutcome] = {
    work_order_pb2.ChecklistOutcome.Value(f"CHECKLIST_OUTCOME_{o.name}"): o
    for o in ChecklistOutcome
}
_OUTCOME_NAMES: Mapping[ChecklistOutcome, str] = {
    outcome: f"CHECKLIST_OUTCOME_{outcome.name}" for outcome in ChecklistOutcome
}
_OFFER_STATUS: Mapping[OfferStatus, str] = {
    status: _enum_name(jobs_pb2.OfferStatus, f"OFFER_STATUS_{status.name}")
    for status in OfferStatus
}


# --------------------------------------------------------------------------- to the wire


def timestamp(at: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(at)
    return stamp


def _timeline_entry(entry: TimelineEntryView) -> work_order_pb2.TimelineEntry:
    message = work_order_pb2.TimelineEntry(
        id=entry.entry_id,
        at=timestamp(entry.at),
        kind=entry.kind,
        summary=entry.summary,
        details=dict(entry.details),
    )
    if entry.event_type is not None:
        message.event_type = entry.event_type
    return message


def completion_message(completion: Completion) -> work_order_pb2.CompletionReport:
    return work_order_pb2.CompletionReport(
        resolution_code=completion.resolution_code,
        work_summary=completion.work_summary,
        labour_minutes=completion.labour_minutes,
        parts_used=[
            work_order_pb2.PartLine(part_number=p.part_number, quantity=p.quantity)
            for p in completion.parts_used
        ],
        checklist=[
            work_order_pb2.ChecklistResult(
                item=c.item, outcome=_OUTCOME_NAMES[c.outcome], note=c.note
            )
            for c in completion.checklist
        ],
        photos=[
            work_order_pb2.PhotoEvidence(
                uri=p.uri, content_type=p.content_type, size_bytes=p.size_bytes, sha256=p.sha256
            )
            for p in completion.photos
        ],
    )


def work_order_message(view: WorkOrderView) -> work_order_pb2.WorkOrder:
    """The wire form of a work order view."""
    address = view.site.address
    equipment = view.equipment
    requester = view.requester
    message = work_order_pb2.WorkOrder(
        id=view.work_order_id,
        tenant=view.tenant,
        state=STATE_NAMES.get(WorkOrderState(view.state), "WORK_ORDER_STATE_UNSPECIFIED"),
        source_platform=view.source_platform,
        external_id=view.external_id,
        site=work_order_pb2.Site(
            site_id=view.site.site_id,
            name=view.site.name,
            address=work_order_pb2.Address(
                line1=address.line1,
                line2=address.line2,
                city=address.city,
                postal_code=address.postal_code,
                country=address.country,
            ),
            timezone=view.site.timezone,
        ),
        equipment=work_order_pb2.Equipment(
            equipment_id=equipment.equipment_id,
            equipment_class=equipment.equipment_class,
            manufacturer=equipment.manufacturer,
            model=equipment.model,
        ),
        category=_CATEGORIES[view.category],
        priority=_PRIORITIES[view.priority],
        description=view.description,
        requester=work_order_pb2.Requester(
            name=requester.name,
            email=str(requester.email),
            phone=requester.phone,
            locale=requester.locale,
            sms_consent=requester.sms_consent,
        ),
        required_parts=[
            work_order_pb2.PartLine(part_number=part.part_number, quantity=part.quantity)
            for part in view.required_parts
        ],
        received_at=timestamp(view.received_at),
        updated_at=timestamp(view.updated_at),
        timeline=[_timeline_entry(entry) for entry in view.timeline],
        contractor_id=view.contractor_id,
        version=view.version,
        reopen_count=view.reopen_count,
        follow_up_of=view.follow_up_of,
    )
    if view.window is not None:
        message.appointment.start.CopyFrom(timestamp(view.window[0]))
        message.appointment.end.CopyFrom(timestamp(view.window[1]))
    if view.eta is not None:
        message.eta.CopyFrom(timestamp(view.eta))
    if view.completion is not None:
        message.completion.CopyFrom(completion_message(view.completion))
    if view.verify_by is not None:
        message.verify_by.CopyFrom(timestamp(view.verify_by))
    if view.closed_at is not None:
        message.closed_at.CopyFrom(timestamp(view.closed_at))
    if view.state_as_of is not None:
        message.state_as_of = getattr(work_order_pb2, STATE_NAMES[WorkOrderState(view.state_as_of)])
    return message


def offer_status(offer: OfferRecord, now: datetime) -> str:
    if offer.status is OfferStatus.OPEN and now >= offer.expires_at:
        return "OFFER_STATUS_EXPIRED"
    return _OFFER_STATUS[offer.status]


def offer_message(view: OfferView, now: datetime) -> jobs_pb2.Offer:
    offer = view.offer
    message = jobs_pb2.Offer(
        offer_id=offer.offer_id,
        work_order_id=offer.work_order_id,
        tenant=offer.tenant,
        status=offer_status(offer, now),
        offered_at=timestamp(offer.offered_at),
        expires_at=timestamp(offer.expires_at),
    )
    if view.order is not None:
        order = work_order_message(view.order)
        message.site.CopyFrom(order.site)
        message.equipment.CopyFrom(order.equipment)
        message.category = order.category
        message.priority = order.priority
        message.description = order.description
    return message


# --------------------------------------------------------------------------- from the wire


class Violations:
    """Collects a request's field violations; :meth:`check` raises them all at once."""

    def __init__(self) -> None:
        self.found: list[FieldViolation] = []

    def add(self, path: str, description: str) -> None:
        self.found.append(FieldViolation(path, description))

    def check(self) -> None:
        if self.found:
            raise InvalidInput(INVALID_ARGUMENT_MESSAGE, self.found)

    def work_order_id(self, value: str, path: str = "work_order_id") -> str:
        if not is_canonical_uuid(value):
            self.add(path, WORK_ORDER_ID_VIOLATION)
        return value

    def request_id(self, value: str) -> str:
        if not REQUEST_ID_PATTERN.fullmatch(value):
            self.add(
                "request_id",
                "required: 1-128 letters, digits or ._:- (a UUID is best), unique per mutation",
            )
        return value

    def offer_id(self, value: str) -> str:
        if not OFFER_ID_PATTERN.fullmatch(value):
            self.add("offer_id", "must be an offer id as listed by ListOffers")
        return value

    def text(self, value: str, path: str, *, limit: int, required: bool = True) -> str | None:
        stripped = value.strip()
        if not stripped:
            if required:
                self.add(path, "required")
            return None
        if len(value) > limit:
            self.add(path, f"at most {limit} characters")
        elif any(ord(ch) < 32 and ch not in "\n\r\t" for ch in value):
            self.add(path, "control characters are not allowed")
        return stripped

    def moment(
        self, stamp: timestamp_pb2.Timestamp, path: str, *, required: bool
    ) -> datetime | None:
        if stamp.seconds == 0 and stamp.nanos == 0:
            if required:
                self.add(path, "required")
            return None
        try:
            at = stamp.ToDatetime(tzinfo=UTC)
        except (ValueError, OverflowError):
            self.add(path, "not a valid timestamp")
            return None
        if not EARLIEST <= at < LATEST:
            self.add(path, "must lie between 2000 and 2200")
            return None
        return at

    def parts(
        self, lines: Sequence[work_order_pb2.PartLine], path: str
    ) -> tuple[PartQuantity, ...]:
        if len(lines) > MAX_PARTS_USED:
            self.add(path, f"at most {MAX_PARTS_USED} lines")
            return ()
        found = []
        for i, line in enumerate(lines):
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", line.part_number):
                self.add(f"{path}[{i}].part_number", "must be a part number (letters, digits, ._-)")
            if not 1 <= line.quantity <= 10_000:
                self.add(f"{path}[{i}].quantity", "must be 1 to 10000")
            found.append(PartQuantity(line.part_number, line.quantity))
        return tuple(found)

    def completion(
        self, report: work_order_pb2.CompletionReport, path: str = "completion"
    ) -> Completion:
        if not RESOLUTION_CODE_PATTERN.fullmatch(report.resolution_code):
            self.add(f"{path}.resolution_code", "lowercase letters, digits and _, 2-40 characters")
        summary = self.text(report.work_summary, f"{path}.work_summary", limit=TEXT_MAX) or ""
        if report.labour_minutes > MAX_LABOUR_MINUTES:
            self.add(f"{path}.labour_minutes", f"at most {MAX_LABOUR_MINUTES}")
        parts = self.parts(report.parts_used, f"{path}.parts_used")
        checklist: list[ChecklistItem] = []
        if len(report.checklist) > MAX_CHECKLIST_ITEMS:
            self.add(f"{path}.checklist", f"at most {MAX_CHECKLIST_ITEMS} items")
        for i, item in enumerate(report.checklist[:MAX_CHECKLIST_ITEMS]):
            name = self.text(item.item, f"{path}.checklist[{i}].item", limit=NAME_MAX) or ""
            outcome = OUTCOMES_BY_NUMBER.get(item.outcome)
            if outcome is None:
                self.add(f"{path}.checklist[{i}].outcome", "required: passed, failed or n/a")
                continue
            note = self.text(
                item.note, f"{path}.checklist[{i}].note", limit=REASON_MAX, required=False
            )
            checklist.append(ChecklistItem(name, outcome, note))
        photos: list[Photo] = []
        if len(report.photos) > MAX_PHOTOS:
            self.add(f"{path}.photos", f"at most {MAX_PHOTOS} photos")
        for i, photo in enumerate(report.photos[:MAX_PHOTOS]):
            at = f"{path}.photos[{i}]"
            if not URI_PATTERN.fullmatch(photo.uri):
                self.add(f"{at}.uri", "must be an absolute URI of at most 500 characters")
            if photo.content_type not in PHOTO_TYPES:
                self.add(
                    f"{at}.content_type", "must be image/jpeg, image/png, image/webp or image/heic"
                )
            if not 1 <= photo.size_bytes <= MAX_PHOTO_BYTES:
                self.add(f"{at}.size_bytes", f"must be 1 to {MAX_PHOTO_BYTES} bytes")
            if not SHA256_PATTERN.fullmatch(photo.sha256):
                self.add(f"{at}.sha256", "must be 64 lowercase hex digits")
            photos.append(Photo(photo.uri, photo.content_type, photo.size_bytes, photo.sha256))
        return Completion(
            resolution_code=report.resolution_code,
            work_summary=summary,
            labour_minutes=report.labour_minutes,
            parts_used=parts,
            checklist=tuple(checklist),
            photos=tuple(photos),
        )

    def states(self, numbers: Sequence[int], path: str = "states") -> frozenset[WorkOrderState]:
        found = set()
        for i, number in enumerate(numbers):
            state = STATES_BY_NUMBER.get(number)
            if state is None:
                self.add(f"{path}[{i}]", "not a current work order state")
            else:
                found.add(state)
        return frozenset(found)


def page_size(requested: int, violations: Violations, *, default: int = 50, most: int = 200) -> int:
    if requested < 0:
        violations.add("page_size", "must not be negative")
        return default
    return default if requested == 0 else min(requested, most)


MAX_ETA_AHEAD = timedelta(days=366)


__all__ = [
    "MAX_ETA_AHEAD",
    "STATES_BY_NUMBER",
    "STATE_NAMES",
    "WORK_ORDER_ID_VIOLATION",
    "Violations",
    "completion_message",
    "is_canonical_uuid",
    "offer_message",
    "offer_status",
    "page_size",
    "timestamp",
    "work_order_message",
]
