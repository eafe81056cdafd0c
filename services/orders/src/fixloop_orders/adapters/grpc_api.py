"""The partner-facing ``fixloop.v1.WorkOrdersService``: reads of the caller's own work orders.

The caller's tenant comes only from its authenticated identity (see
:mod:`fixloop_shared.grpc_edge.auth`); a work order of another tenant answers exactly like one that
does not exist. Refusals are raised as domain errors (:mod:`fixloop_shared.errors`); the edge
maps them to status codes in one place (:mod:`fixloop_shared.grpc_edge.errors`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from datetime import datetime

import grpc
from google.protobuf import timestamp_pb2
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from grpc_health.v1.health import aio as health_aio
from pymongo.errors import ConnectionFailure, PyMongoError

from fixloop.v1 import work_order_pb2, work_orders_service_pb2, work_orders_service_pb2_grpc
from fixloop_orders.app.queries import TimelineEntryView, WorkOrderQueries, WorkOrderView
from fixloop_shared.errors import FieldViolation, InvalidInput, NotFound
from fixloop_shared.grpc_edge.auth import authenticated_tenant
from fixloop_shared.grpc_edge.errors import (
    INVALID_ARGUMENT_MESSAGE,
    abort_deadline_exceeded,
    abort_unavailable,
)
from fixloop_shared.grpc_edge.server import GrpcServer, GrpcService, build_server
from fixloop_shared.vocabulary import Category, Priority

SERVICE_NAME: str = work_orders_service_pb2.DESCRIPTOR.services_by_name[
    "WorkOrdersService"
].full_name
WORK_ORDER_RESOURCE_TYPE: str = work_order_pb2.WorkOrder.DESCRIPTOR.full_name
WORK_ORDER_NOT_FOUND_MESSAGE = "work order not found"
WORK_ORDER_ID_VIOLATION = (
    "must be a canonical lowercase UUID, e.g. 0b5e1c1e-3f43-4f9a-9d51-0f4c9d3a7b21"
)
DEFAULT_QUERY_TIMEOUT_SECONDS = 5.0
"""Time a read may take when the caller sets no deadline, and the most it may take anyway."""


class WorkOrderNotVisibleError(NotFound):
    """The caller's tenant has no work order of that id; it is told no more than that."""

    caller_message = WORK_ORDER_NOT_FOUND_MESSAGE
    resource_type = WORK_ORDER_RESOURCE_TYPE

    def __init__(self, tenant: str, work_order_id: str) -> None:
        super().__init__(f"tenant {tenant!r} has no work order {work_order_id!r}")


def _enum_name(enum: EnumTypeWrapper, name: str) -> str:
    """``name`` after checking that ``enum`` has it (the wire contract and the domain agree)."""
    enum.Value(name)
    return name


_STATES: Mapping[str, str] = {
    state: _enum_name(work_order_pb2.WorkOrderState, f"WORK_ORDER_STATE_{state.upper()}")
    for state in (
        "received",
        "dispatch_requested",
        "assigned",
        "started",
        "awaiting_parts",
        "completed",
        "verified",
        "closed",
        "cancelled",
    )
}
_CATEGORIES: Mapping[Category, str] = {
    category: _enum_name(work_order_pb2.Category, f"CATEGORY_{category.name}")
    for category in Category
}
_PRIORITIES: Mapping[Priority, str] = {
    priority: _enum_name(work_order_pb2.Priority, f"PRIORITY_{priority.name}")
    for priority in Priority
}


def is_canonical_uuid(value: str) -> bool:
    """True for a UUID in its canonical form: 36 characters, lowercase hex, hyphenated."""
    if len(value) != 36:
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _timestamp(at: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(at)
    return stamp


def _timeline_entry(entry: TimelineEntryView) -> work_order_pb2.TimelineEntry:
    message = work_order_pb2.TimelineEntry(
        id=entry.entry_id,
        at=_timestamp(entry.at),
        kind=entry.kind,
        summary=entry.summary,
        details=dict(entry.details),
    )
    if entry.event_type is not None:
        message.event_type = entry.event_type
    return message


def work_order_message(view: WorkOrderView) -> work_order_pb2.WorkOrder:
    """The wire form of a work order view."""
    address = view.site.address
    equipment = view.equipment
    requester = view.requester
    return work_order_pb2.WorkOrder(
        id=view.work_order_id,
        tenant=view.tenant,
        state=_STATES.get(view.state, "WORK_ORDER_STATE_UNSPECIFIED"),
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
        ),
        required_parts=[
            work_order_pb2.PartLine(part_number=part.part_number, quantity=part.quantity)
            for part in view.required_parts
        ],
        received_at=_timestamp(view.received_at),
        updated_at=_timestamp(view.updated_at),
        timeline=[_timeline_entry(entry) for entry in view.timeline],
    )


class WorkOrdersServicer(work_orders_service_pb2_grpc.WorkOrdersServiceServicer):
    """``fixloop.v1.WorkOrdersService`` over the orders read side."""

    def __init__(
        self,
        queries: WorkOrderQueries,
        *,
        query_timeout_seconds: float = DEFAULT_QUERY_TIMEOUT_SECONDS,
    ) -> None:
        self._queries = queries
        self._query_timeout = query_timeout_seconds

    async def GetWorkOrder(  # noqa: N802 - the generated servicer names the method
        self,
        request: work_orders_service_pb2.GetWorkOrderRequest,
        context: grpc.aio.ServicerContext,
    ) -> work_orders_service_pb2.GetWorkOrderResponse:
        tenant = await authenticated_tenant(context)
        work_order_id = request.work_order_id
        if not is_canonical_uuid(work_order_id):
            raise InvalidInput(
                INVALID_ARGUMENT_MESSAGE,
                [FieldViolation("work_order_id", WORK_ORDER_ID_VIOLATION)],
            )

        remaining: float | None = context.time_remaining()
        budget = self._query_timeout if remaining is None else min(remaining, self._query_timeout)
        if budget <= 0:
            await abort_deadline_exceeded(context)
        try:
            async with asyncio.timeout(budget):
                view = await self._queries.get_work_order(tenant, work_order_id)
        except TimeoutError:
            await abort_deadline_exceeded(context)
        except PyMongoError as exc:
            if exc.timeout:
                await abort_deadline_exceeded(context)
            if isinstance(exc, ConnectionFailure):
                await abort_unavailable(context)
            raise

        # Defence in depth: a view of another tenant is never shown, whatever the read side did.
        if view is None or view.tenant != tenant or view.work_order_id != work_order_id:
            raise WorkOrderNotVisibleError(tenant, work_order_id)
        return work_orders_service_pb2.GetWorkOrderResponse(work_order=work_order_message(view))


async def start_grpc_server(
    queries: WorkOrderQueries,
    *,
    host: str,
    port: int,
    api_keys: Mapping[str, str],
    reflection: bool,
    query_timeout_seconds: float = DEFAULT_QUERY_TIMEOUT_SECONDS,
    rate_limit: str | None = None,
) -> tuple[grpc.aio.Server, int, health_aio.HealthServicer]:
    """Build, bind and start the orders gRPC server; returns ``(server, bound port, health)``.

    Stop it with :func:`fixloop_shared.grpc_edge.server.stop_server`.
    """
    servicer = WorkOrdersServicer(queries, query_timeout_seconds=query_timeout_seconds)

    def register(server: grpc.aio.Server) -> None:
        work_orders_service_pb2_grpc.add_WorkOrdersServiceServicer_to_server(  # type: ignore[no-untyped-call]
            servicer, server
        )

    running: GrpcServer = await build_server(
        [GrpcService(name=SERVICE_NAME, register=register)],
        host=host,
        port=port,
        api_keys=api_keys,
        reflection=reflection,
        rate_limit=rate_limit,
    )
    await running.server.start()
    return running


__all__ = [
    "DEFAULT_QUERY_TIMEOUT_SECONDS",
    "SERVICE_NAME",
    "WorkOrderNotVisibleError",
    "WorkOrdersServicer",
    "is_canonical_uuid",
    "start_grpc_server",
    "work_order_message",
]
