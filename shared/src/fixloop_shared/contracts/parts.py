"""Events of the parts service (``fixloop.parts.events.v1``): reservations and backorders."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import AwareDatetime, Field

from fixloop_shared.contracts.base import Contract, EventPayload
from fixloop_shared.contracts.types import Identifier, PartNumber, Quantity, ShortText
from fixloop_shared.contracts.workorders import PartLine


class PartReservation(Contract):
    part_number: PartNumber
    warehouse_id: Identifier
    quantity: Quantity


class PartsReserved(EventPayload):
    event_type: ClassVar[str] = "fixloop.parts.reserved.v1"
    summary: ClassVar[str] = "All required parts reserved"

    work_order_id: Identifier
    reservations: Annotated[list[PartReservation], Field(max_length=200)]
    reserved_at: AwareDatetime


class PartsBackordered(EventPayload):
    event_type: ClassVar[str] = "fixloop.parts.backordered.v1"
    summary: ClassVar[str] = "Some required parts are not in stock"

    work_order_id: Identifier
    reservations: Annotated[list[PartReservation], Field(max_length=200)]
    missing: Annotated[list[PartLine], Field(max_length=50)]
    decided_at: AwareDatetime


class PartsReleased(EventPayload):
    event_type: ClassVar[str] = "fixloop.parts.released.v1"
    summary: ClassVar[str] = "A work order's reservations released: the stock is available again"

    work_order_id: Identifier
    released: Annotated[list[PartReservation], Field(max_length=200)]
    reason: ShortText
    released_at: AwareDatetime


class PartsConsumed(EventPayload):
    event_type: ClassVar[str] = "fixloop.parts.consumed.v1"
    summary: ClassVar[str] = "Reserved parts used by the completed work (taken out of stock)"

    work_order_id: Identifier
    consumed: Annotated[list[PartReservation], Field(max_length=200)]
    released: Annotated[list[PartReservation], Field(max_length=200)] = Field(
        default_factory=list, description="reserved but not used: back in stock"
    )
    consumed_at: AwareDatetime


__all__ = [
    "PartReservation",
    "PartsBackordered",
    "PartsConsumed",
    "PartsReleased",
    "PartsReserved",
]
