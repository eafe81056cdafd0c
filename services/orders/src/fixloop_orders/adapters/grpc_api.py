"""The partner-facing gRPC services of the orders service and the server that carries them.

- ``fixloop.v1.WorkOrdersService`` (:class:`WorkOrdersServicer`): a tenant's orders, for its
  requester-side partners and operators.
- ``fixloop.v1.ContractorJobsService`` (:mod:`fixloop_orders.adapters.grpc_jobs`): a contractor's
  offers and jobs.

The caller's tenant (or contractor) comes only from its authenticated principal (see
:mod:`fixloop_shared.grpc_edge.auth`); an order of another tenant answers exactly like one that
does not exist. Refusals are raised as domain errors (:mod:`fixloop_shared.errors`); the edge maps
them to status codes in one place (:mod:`fixloop_shared.grpc_edge.errors`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import grpc
from pydantic import ValidationError

from fixloop.v1 import (
    contractor_jobs_service_pb2_grpc,
    work_order_pb2,
    work_orders_service_pb2,
    work_orders_service_pb2_grpc,
)
from fixloop_orders.adapters.grpc_messages import (
    CATEGORIES_BY_NUMBER,
    PRIORITIES_BY_NUMBER,
    REASON_MAX,
    STATE_NAMES,
    TEXT_MAX,
    Violations,
    is_canonical_uuid,
    page_size,
    timestamp,
    work_order_message,
)
from fixloop_orders.adapters.grpc_mutations import Mutations, actor_of
from fixloop_orders.adapters.read_cache import ReadCache, order_scope, tenant_scope
from fixloop_orders.adapters.watch import WatchedStep, WorkOrderWatch
from fixloop_orders.app.intake import WorkOrderIntake, work_order_details
from fixloop_orders.app.lifecycle import WorkOrderLifecycle, WorkOrderNotFoundError
from fixloop_orders.app.queries import (
    PagePosition,
    WorkOrderFilter,
    WorkOrderQueries,
    WorkOrderView,
    as_of,
    view_of,
)
from fixloop_orders.domain.lifecycle import Request, Step
from fixloop_shared import contracts
from fixloop_shared.contracts.types import NOW_CONTEXT_KEY
from fixloop_shared.errors import FieldViolation, InvalidInput, NotFound
from fixloop_shared.grpc_edge.auth import authenticated_principal, authenticated_tenant
from fixloop_shared.grpc_edge.errors import INVALID_ARGUMENT_MESSAGE, abort_with_details
from fixloop_shared.grpc_edge.principals import PrincipalDirectory
from fixloop_shared.grpc_edge.reads import bounded_read
from fixloop_shared.grpc_edge.server import GrpcServer, GrpcService, build_server
from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.vocabulary import WorkOrderState

SERVICE_NAME: str = work_orders_service_pb2.DESCRIPTOR.services_by_name[
    "WorkOrdersService"
].full_name
WORK_ORDER_RESOURCE_TYPE: str = work_order_pb2.WorkOrder.DESCRIPTOR.full_name
WORK_ORDER_NOT_FOUND_MESSAGE = "work order not found"
DEFAULT_QUERY_TIMEOUT_SECONDS = 5.0
"""Time a read may take when the caller sets no deadline, and the most it may take anyway."""
MAX_WATCHES_PER_PRINCIPAL = 8


class WorkOrderNotVisibleError(NotFound):
    """The caller's tenant has no work order of that id; it is told no more than that."""

    caller_message = WORK_ORDER_NOT_FOUND_MESSAGE
    resource_type = WORK_ORDER_RESOURCE_TYPE

    def __init__(self, tenant: str, work_order_id: str) -> None:
        super().__init__(f"tenant {tenant!r} has no work order {work_order_id!r}")


# --------------------------------------------------------------------------- page tokens


def filter_digest(parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def encode_page_token(last: WorkOrderView, digest: str) -> str:
    raw = json.dumps(
        {"u": last.updated_at.astimezone(UTC).isoformat(), "i": last.work_order_id, "f": digest}
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_page_token(token: str, digest: str, violations: Violations) -> PagePosition | None:
    if not token:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if data["f"] != digest:
            violations.add("page_token", "belongs to a list with other filters")
            return None
        updated_at = datetime.fromisoformat(data["u"])
        work_order_id = str(data["i"])
        if updated_at.tzinfo is None or not is_canonical_uuid(work_order_id):
            raise ValueError
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        violations.add("page_token", "not a page token of this list")
        return None
    return PagePosition(updated_at=updated_at, work_order_id=work_order_id)


# --------------------------------------------------------------------------- submissions


def _submission_data(s: work_orders_service_pb2.WorkOrderSubmission) -> dict[str, Any]:
    category = CATEGORIES_BY_NUMBER.get(s.category)
    priority = PRIORITIES_BY_NUMBER.get(s.priority)
    address = s.site.address
    data: dict[str, Any] = {
        "external_id": s.external_id,
        "site": {
            "site_id": s.site.site_id,
            "name": s.site.name,
            "address": {
                "line1": address.line1,
                "line2": address.line2 if address.HasField("line2") else None,
                "city": address.city,
                "postal_code": address.postal_code,
                "country": address.country,
            },
            "timezone": s.site.timezone,
        },
        "equipment": {
            "equipment_id": s.equipment.equipment_id,
            "equipment_class": s.equipment.equipment_class,
            "manufacturer": s.equipment.manufacturer
            if s.equipment.HasField("manufacturer")
            else None,
            "model": s.equipment.model if s.equipment.HasField("model") else None,
        },
        "category": None if category is None else category.value,
        "priority": None if priority is None else priority.value,
        "description": s.description,
        "requester": {
            "name": s.requester.name,
            "email": s.requester.email,
            "phone": s.requester.phone if s.requester.HasField("phone") else None,
            "locale": s.requester.locale,
            "sms_consent": s.requester.sms_consent,
        },
        "required_parts": [
            {"part_number": line.part_number, "quantity": line.quantity}
            for line in s.required_parts
        ],
    }
    if s.HasField("reported_at"):
        data["reported_at"] = s.reported_at.ToDatetime(tzinfo=UTC).isoformat()
    return data


def submitted_details(
    submission: work_orders_service_pb2.WorkOrderSubmission, now: datetime
) -> contracts.WorkOrderDetails:
    """The submission checked against the inbound contract (the rules the Kafka intake applies)."""
    try:
        return contracts.WorkOrderDetails.model_validate_json(
            json.dumps(_submission_data(submission)), context={NOW_CONTEXT_KEY: now}
        )
    except ValidationError as exc:
        violations = [
            FieldViolation(
                "work_order." + ".".join(str(part) for part in error["loc"]),
                error["msg"] if error["type"] != "enum" else "required: one of the listed values",
            )
            for error in exc.errors()
        ]
        raise InvalidInput(INVALID_ARGUMENT_MESSAGE, violations) from None


def partner_source(principal_id: str) -> str:
    """The source platform of orders a partner creates through the API."""
    return f"partner:{principal_id}"


def step_message(step: WatchedStep) -> work_orders_service_pb2.WorkOrderStep:
    message = work_orders_service_pb2.WorkOrderStep(
        event_id=step.event_id,
        event_type=step.event_type,
        work_order_id=step.work_order_id,
        external_id=step.external_id,
        state=STATE_NAMES.get(WorkOrderState(step.state), "WORK_ORDER_STATE_UNSPECIFIED"),
        version=step.version,
        occurred_at=timestamp(step.occurred_at),
        actor_kind=step.actor_kind,
        actor_id=step.actor_id,
        reason=step.reason,
        note=step.note,
        contractor_id=step.contractor_id,
        details=dict(step.details),
    )
    if step.previous_state is not None:
        message.previous_state = getattr(
            work_order_pb2, STATE_NAMES[WorkOrderState(step.previous_state)]
        )
    return message


class WorkOrdersServicer(work_orders_service_pb2_grpc.WorkOrdersServiceServicer):
    """``fixloop.v1.WorkOrdersService`` over the orders read side and lifecycle."""

    def __init__(
        self,
        queries: WorkOrderQueries,
        *,
        lifecycle: WorkOrderLifecycle | None = None,
        intake: WorkOrderIntake | None = None,
        mutations: Mutations | None = None,
        watch: WorkOrderWatch | None = None,
        query_timeout_seconds: float = DEFAULT_QUERY_TIMEOUT_SECONDS,
        cache: ReadCache[Any] | None = None,
    ) -> None:
        self._queries = queries
        self._cache: ReadCache[Any] = cache if cache is not None else ReadCache(max_age_seconds=0)
        self._lifecycle = lifecycle
        self._intake = intake
        self._mutations = mutations
        self._watch = watch
        self._query_timeout = query_timeout_seconds
        self._watching: dict[str, int] = {}

    def _writes(self) -> tuple[WorkOrderLifecycle, Mutations]:
        if self._lifecycle is None or self._mutations is None:
            msg = "this server was built without the lifecycle (read-only)"
            raise RuntimeError(msg)
        return self._lifecycle, self._mutations

    # ----------------------------------------------------------------- reads

    async def GetWorkOrder(  # noqa: N802 - the generated servicer names the method
        self,
        request: work_orders_service_pb2.GetWorkOrderRequest,
        context: grpc.aio.ServicerContext,
    ) -> work_orders_service_pb2.GetWorkOrderResponse:
        tenant = await authenticated_tenant(context)
        violations = Violations()
        work_order_id = violations.work_order_id(request.work_order_id)
        moment = (
            violations.moment(request.as_of, "as_of", required=False)
            if request.HasField("as_of")
            else None
        )
        violations.check()
        key = ("GetWorkOrder", tenant, work_order_id)
        if moment is None and (kept := self._cache.lookup(key)) is not None:
            return kept  # type: ignore[no-any-return]
        ticket = self._cache.ticket()
        view = await bounded_read(
            context,
            self._query_timeout,
            lambda: self._queries.get_work_order(tenant, work_order_id),
        )
        # Defence in depth: a view of another tenant is never shown, whatever the read side did.
        if view is None or view.tenant != tenant or view.work_order_id != work_order_id:
            raise WorkOrderNotVisibleError(tenant, work_order_id)
        if moment is not None:
            if moment < view.received_at:
                raise InvalidInput(
                    INVALID_ARGUMENT_MESSAGE,
                    [FieldViolation("as_of", "lies before the work order was received")],
                )
            view = as_of(view, moment)
            return work_orders_service_pb2.GetWorkOrderResponse(work_order=work_order_message(view))
        response = work_orders_service_pb2.GetWorkOrderResponse(work_order=work_order_message(view))
        self._cache.keep(key, response, ticket, (order_scope(work_order_id),))
        return response

    async def ListWorkOrders(  # noqa: N802
        self,
        request: work_orders_service_pb2.ListWorkOrdersRequest,
        context: grpc.aio.ServicerContext,
    ) -> work_orders_service_pb2.ListWorkOrdersResponse:
        tenant = await authenticated_tenant(context)
        violations = Violations()
        size = page_size(request.page_size, violations)
        states = violations.states(request.states)
        site_id = violations.text(request.site_id, "site_id", limit=128, required=False)
        equipment_class = violations.text(
            request.equipment_class, "equipment_class", limit=40, required=False
        )
        since = (
            violations.moment(request.updated_since, "updated_since", required=False)
            if request.HasField("updated_since")
            else None
        )
        wanted = WorkOrderFilter(
            states=states, site_id=site_id, equipment_class=equipment_class, updated_since=since
        )
        digest = filter_digest([sorted(states), site_id, equipment_class, since, tenant])
        after = decode_page_token(request.page_token, digest, violations)
        violations.check()
        key = ("ListWorkOrders", tenant, request.SerializeToString(deterministic=True))
        if (kept := self._cache.lookup(key)) is not None:
            return kept  # type: ignore[no-any-return]
        ticket = self._cache.ticket()
        views = await bounded_read(
            context,
            self._query_timeout,
            lambda: self._queries.list_work_orders(tenant, wanted, after=after, limit=size + 1),
        )
        page, more = views[:size], len(views) > size
        response = work_orders_service_pb2.ListWorkOrdersResponse(
            work_orders=[work_order_message(v) for v in page if v.tenant == tenant],
            next_page_token=encode_page_token(page[-1], digest) if more and page else "",
        )
        self._cache.keep(key, response, ticket, (tenant_scope(tenant),))
        return response

    async def WatchWorkOrders(  # noqa: N802
        self,
        request: work_orders_service_pb2.WatchWorkOrdersRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[work_orders_service_pb2.WatchWorkOrdersResponse]:
        tenant = await authenticated_tenant(context)
        principal = await authenticated_principal(context)
        violations = Violations()
        work_order_id = (
            violations.work_order_id(request.work_order_id)
            if request.HasField("work_order_id")
            else None
        )
        violations.check()
        if self._watch is None:
            msg = "this server was built without watches"
            raise RuntimeError(msg)
        if self._watching.get(principal.id, 0) >= MAX_WATCHES_PER_PRINCIPAL:
            await abort_with_details(
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"at most {MAX_WATCHES_PER_PRINCIPAL} watches at once per caller",
            )
        self._watching[principal.id] = self._watching.get(principal.id, 0) + 1
        try:
            async for step, cursor in self._watch.steps(
                tenant,
                cursor=request.cursor or None,
                work_order_id=work_order_id,
                from_oldest=request.from_oldest,
            ):
                yield work_orders_service_pb2.WatchWorkOrdersResponse(
                    step=step_message(step), cursor=cursor
                )
        finally:
            self._watching[principal.id] -= 1

    # ----------------------------------------------------------------- mutations

    async def CreateWorkOrder(  # noqa: N802
        self,
        request: work_orders_service_pb2.CreateWorkOrderRequest,
        context: grpc.aio.ServicerContext,
    ) -> work_orders_service_pb2.CreateWorkOrderResponse:
        tenant = await authenticated_tenant(context)
        principal = await authenticated_principal(context)
        lifecycle, mutations = self._writes()
        violations = Violations()
        request_id = violations.request_id(request.request_id)
        if not request.HasField("work_order"):
            violations.add("work_order", "required")
        violations.check()
        details = submitted_details(request.work_order, lifecycle.now())
        intake = self._intake
        if intake is None:
            msg = "this server was built without intake"
            raise RuntimeError(msg)

        async def create(uow: UnitOfWork) -> work_orders_service_pb2.CreateWorkOrderResponse:
            result = await intake.receive(
                uow,
                tenant=tenant,
                source_platform=partner_source(principal.id),
                details=work_order_details(details),
                submission_id=f"grpc:{request_id}",
                submission_type=f"{SERVICE_NAME}/CreateWorkOrder",
            )
            order = await lifecycle.order_of_tenant(uow, tenant, result.work_order_id or "")
            return work_orders_service_pb2.CreateWorkOrderResponse(
                work_order=work_order_message(view_of(order)),
                created=result.outcome.value == "created",
            )

        return await mutations.run(
            context,
            principal,
            request=request,
            request_id=request_id,
            response_type=work_orders_service_pb2.CreateWorkOrderResponse,
            mutate=create,
        )

    async def _step(
        self,
        context: grpc.aio.ServicerContext,
        request: Any,
        response_type: type[Any],
        build: Callable[[Violations], tuple[Step, dict[str, Any]]],
    ) -> Any:
        """A lifecycle step on one of the tenant's orders, once per request id."""
        tenant = await authenticated_tenant(context)
        principal = await authenticated_principal(context)
        lifecycle, mutations = self._writes()
        violations = Violations()
        request_id = violations.request_id(request.request_id)
        work_order_id = violations.work_order_id(request.work_order_id)
        step, extra = build(violations)
        violations.check()
        actor = actor_of(principal)

        async def mutate(uow: UnitOfWork) -> Any:
            order = await lifecycle.order_of_tenant(uow, tenant, work_order_id)
            req = Request(step, actor, lifecycle.now(), **extra)
            await lifecycle.take(uow, order, req, via="grpc")
            answer = response_type(work_order=work_order_message(view_of(order)))
            if step is Step.COMMENT:
                answer.comment_id = req.comment_id
            return answer

        return await mutations.run(
            context,
            principal,
            request=request,
            request_id=request_id,
            response_type=response_type,
            mutate=mutate,
        )

    async def CancelWorkOrder(  # noqa: N802
        self,
        request: work_orders_service_pb2.CancelWorkOrderRequest,
        context: grpc.aio.ServicerContext,
    ) -> work_orders_service_pb2.CancelWorkOrderResponse:
        def build(v: Violations) -> tuple[Step, dict[str, Any]]:
            return Step.CANCEL, {"reason": v.text(request.reason, "reason", limit=REASON_MAX)}

        answer: work_orders_service_pb2.CancelWorkOrderResponse = await self._step(
            context, request, work_orders_service_pb2.CancelWorkOrderResponse, build
        )
        return answer

    async def VerifyCompletion(  # noqa: N802
        self,
        request: work_orders_service_pb2.VerifyCompletionRequest,
        context: grpc.aio.ServicerContext,
    ) -> work_orders_service_pb2.VerifyCompletionResponse:
        def build(v: Violations) -> tuple[Step, dict[str, Any]]:
            return Step.VERIFY, {
                "note": v.text(request.note, "note", limit=TEXT_MAX, required=False)
            }

        answer: work_orders_service_pb2.VerifyCompletionResponse = await self._step(
            context, request, work_orders_service_pb2.VerifyCompletionResponse, build
        )
        return answer

    async def RejectCompletion(  # noqa: N802
        self,
        request: work_orders_service_pb2.RejectCompletionRequest,
        context: grpc.aio.ServicerContext,
    ) -> work_orders_service_pb2.RejectCompletionResponse:
        tenant = await authenticated_tenant(context)
        principal = await authenticated_principal(context)
        lifecycle, mutations = self._writes()
        violations = Violations()
        request_id = violations.request_id(request.request_id)
        work_order_id = violations.work_order_id(request.work_order_id)
        reason = violations.text(request.reason, "reason", limit=REASON_MAX) or ""
        violations.check()
        actor = actor_of(principal)

        async def reject(uow: UnitOfWork) -> work_orders_service_pb2.RejectCompletionResponse:
            order = await lifecycle.order_of_tenant(uow, tenant, work_order_id)
            follow_up = await lifecycle.reject(uow, order, actor, reason, via="grpc")
            answer = work_orders_service_pb2.RejectCompletionResponse(
                work_order=work_order_message(view_of(order))
            )
            if follow_up is not None:
                answer.follow_up.CopyFrom(work_order_message(view_of(follow_up)))
            return answer

        return await mutations.run(
            context,
            principal,
            request=request,
            request_id=request_id,
            response_type=work_orders_service_pb2.RejectCompletionResponse,
            mutate=reject,
        )

    async def AddComment(  # noqa: N802
        self,
        request: work_orders_service_pb2.AddCommentRequest,
        context: grpc.aio.ServicerContext,
    ) -> work_orders_service_pb2.AddCommentResponse:
        def build(v: Violations) -> tuple[Step, dict[str, Any]]:
            return Step.COMMENT, {
                "note": v.text(request.text, "text", limit=TEXT_MAX),
                "comment_id": str(uuid.uuid4()),
            }

        answer: work_orders_service_pb2.AddCommentResponse = await self._step(
            context, request, work_orders_service_pb2.AddCommentResponse, build
        )
        return answer


def partner_grpc_services(
    queries: WorkOrderQueries,
    *,
    query_timeout_seconds: float = DEFAULT_QUERY_TIMEOUT_SECONDS,
    lifecycle: WorkOrderLifecycle | None = None,
    intake: WorkOrderIntake | None = None,
    mutations: Mutations | None = None,
    watch: WorkOrderWatch | None = None,
    cache: ReadCache[Any] | None = None,
) -> list[GrpcService]:
    """The orders gRPC services: work orders, and a contractor's jobs when it can write.

    Without ``lifecycle`` and ``mutations`` it serves reads only (no contractor jobs service).
    """
    from fixloop_orders.adapters.grpc_jobs import JOBS_SERVICE_NAME, ContractorJobsServicer

    servicer = WorkOrdersServicer(
        queries,
        lifecycle=lifecycle,
        intake=intake,
        mutations=mutations,
        watch=watch,
        query_timeout_seconds=query_timeout_seconds,
        cache=cache,
    )
    services = [
        GrpcService(
            name=SERVICE_NAME,
            register=lambda server: (
                work_orders_service_pb2_grpc.add_WorkOrdersServiceServicer_to_server(  # type: ignore[no-untyped-call]
                    servicer, server
                )
            ),
        )
    ]
    if lifecycle is not None and mutations is not None:
        jobs = ContractorJobsServicer(
            queries, lifecycle, mutations, query_timeout_seconds=query_timeout_seconds, cache=cache
        )
        services.append(
            GrpcService(
                name=JOBS_SERVICE_NAME,
                register=lambda server: (
                    contractor_jobs_service_pb2_grpc.add_ContractorJobsServiceServicer_to_server(  # type: ignore[no-untyped-call]
                        jobs, server
                    )
                ),
            )
        )
    return services


async def start_grpc_server(
    queries: WorkOrderQueries,
    *,
    host: str,
    port: int,
    principals: PrincipalDirectory,
    reflection: bool,
    query_timeout_seconds: float = DEFAULT_QUERY_TIMEOUT_SECONDS,
    rate_limit: str | None = None,
    lifecycle: WorkOrderLifecycle | None = None,
    intake: WorkOrderIntake | None = None,
    mutations: Mutations | None = None,
    watch: WorkOrderWatch | None = None,
    cache: ReadCache[Any] | None = None,
) -> GrpcServer:
    """Build, bind and start the orders gRPC server; returns ``(server, bound port, health)``.

    Without ``lifecycle`` and ``mutations`` it serves reads only. Stop it with
    :func:`fixloop_shared.grpc_edge.server.stop_server`. The service itself runs the server as a
    :class:`~fixloop_orders.adapters.partner_api.PartnerApi`.
    """
    services = partner_grpc_services(
        queries,
        query_timeout_seconds=query_timeout_seconds,
        lifecycle=lifecycle,
        intake=intake,
        mutations=mutations,
        watch=watch,
        cache=cache,
    )
    running: GrpcServer = await build_server(
        services,
        host=host,
        port=port,
        principals=principals,
        reflection=reflection,
        rate_limit=rate_limit,
    )
    await running.server.start()
    return running


__all__ = [
    "DEFAULT_QUERY_TIMEOUT_SECONDS",
    "SERVICE_NAME",
    "WorkOrderNotFoundError",
    "WorkOrderNotVisibleError",
    "WorkOrdersServicer",
    "bounded_read",
    "decode_page_token",
    "encode_page_token",
    "filter_digest",
    "is_canonical_uuid",
    "partner_grpc_services",
    "partner_source",
    "start_grpc_server",
    "work_order_message",
]
