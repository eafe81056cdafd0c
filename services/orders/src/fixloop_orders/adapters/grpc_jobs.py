"""The partner-facing ``fixloop.v1.ContractorJobsService``: a contractor's offers and jobs.

Only contractor principals may call it (others get PERMISSION_DENIED); each sees only its own
offers and the orders assigned to it — anything else answers NOT_FOUND, exactly like an id that
does not exist. Every mutation is a lifecycle step (:mod:`fixloop_orders.app.lifecycle`), taken
once per ``request_id``.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import grpc

from fixloop.v1 import contractor_jobs_service_pb2 as jobs_pb2
from fixloop.v1 import contractor_jobs_service_pb2_grpc as jobs_grpc
from fixloop_orders.adapters.grpc_api import decode_page_token, encode_page_token, filter_digest
from fixloop_orders.adapters.grpc_messages import (
    CAUSES_BY_NUMBER,
    MAX_ETA_AHEAD,
    REASON_MAX,
    TEXT_MAX,
    Violations,
    offer_message,
    page_size,
    work_order_message,
)
from fixloop_orders.adapters.grpc_mutations import Mutations, actor_of
from fixloop_orders.adapters.read_cache import CONTRACTORS_SCOPE, ReadCache
from fixloop_orders.app.lifecycle import WorkOrderLifecycle
from fixloop_orders.app.queries import (
    OfferPosition,
    OfferView,
    WorkOrderQueries,
    view_of,
)
from fixloop_orders.domain.lifecycle import Actor, Request, Step
from fixloop_shared.errors import Forbidden
from fixloop_shared.grpc_edge.auth import authenticated_principal
from fixloop_shared.grpc_edge.principals import Principal, PrincipalKind
from fixloop_shared.grpc_edge.reads import bounded_read
from fixloop_shared.kernel import UnitOfWork

JOBS_SERVICE_NAME: str = jobs_pb2.DESCRIPTOR.services_by_name["ContractorJobsService"].full_name

PROGRESS_STEPS = {
    jobs_pb2.PROGRESS_KIND_EN_ROUTE: Step.DEPART,
    jobs_pb2.PROGRESS_KIND_ON_SITE: Step.ARRIVE,
    jobs_pb2.PROGRESS_KIND_AWAITING_PARTS: Step.AWAIT_PARTS,
    jobs_pb2.PROGRESS_KIND_NOTE: Step.REPORT_PROGRESS,
}


class ContractorsOnlyError(Forbidden):
    """A principal that is not a contractor called the contractors' service."""

    caller_message = "this service is for contractors' apps"


async def contractor_principal(context: grpc.aio.ServicerContext) -> Principal:
    principal = await authenticated_principal(context)
    if principal.kind is not PrincipalKind.CONTRACTOR or not principal.contractor_id:
        msg = f"principal {principal.id!r} ({principal.kind.value}) called ContractorJobsService"
        raise ContractorsOnlyError(msg)
    return principal


def _token(data: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _untoken(token: str, violations: Violations) -> dict[str, str] | None:
    if not token:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ValueError
    except (binascii.Error, ValueError, UnicodeDecodeError):
        violations.add("page_token", "not a page token of this list")
        return None
    return data


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError
    return moment


class ContractorJobsServicer(jobs_grpc.ContractorJobsServiceServicer):
    """``fixloop.v1.ContractorJobsService`` over the offer book, the orders and the lifecycle."""

    def __init__(
        self,
        queries: WorkOrderQueries,
        lifecycle: WorkOrderLifecycle,
        mutations: Mutations,
        *,
        query_timeout_seconds: float = 5.0,
        cache: ReadCache[Any] | None = None,
    ) -> None:
        self._queries = queries
        self._lifecycle = lifecycle
        self._mutations = mutations
        self._timeout = query_timeout_seconds
        self._cache: ReadCache[Any] = cache if cache is not None else ReadCache(max_age_seconds=0)

    # ----------------------------------------------------------------- reads

    async def ListOffers(  # noqa: N802 - the generated servicer names the method
        self, request: jobs_pb2.ListOffersRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.ListOffersResponse:
        principal = await contractor_principal(context)
        contractor_id = principal.contractor_id or ""
        violations = Violations()
        size = page_size(request.page_size, violations)
        data = _untoken(request.page_token, violations)
        after = None
        if data is not None:
            try:
                after = OfferPosition(offered_at=_moment(data["t"]), offer_id=data["o"])
            except (KeyError, ValueError):
                violations.add("page_token", "not a page token of this list")
        violations.check()
        key = ("ListOffers", contractor_id, request.SerializeToString(deterministic=True))
        now = self._lifecycle.now()
        if (kept := self._cache.lookup(key, now=now)) is not None:
            return kept  # type: ignore[no-any-return]
        ticket = self._cache.ticket()
        views: list[OfferView] = await bounded_read(
            context,
            self._timeout,
            lambda: self._queries.list_offers(
                contractor_id, open_only=not request.include_closed, after=after, limit=size + 1
            ),
        )
        page, more = views[:size], len(views) > size
        last = page[-1].offer if page else None
        response = jobs_pb2.ListOffersResponse(
            offers=[offer_message(v, now) for v in page if v.offer.contractor_id == contractor_id],
            next_page_token=_token({"t": last.offered_at.isoformat(), "o": last.offer_id})
            if more and last is not None
            else "",
        )
        # An open offer stops being open when it expires: the answer is true until the first does.
        expiries = [v.offer.expires_at for v in page if v.offer.is_open_at(now)]
        self._cache.keep(
            key, response, ticket, (CONTRACTORS_SCOPE,), until=min(expiries, default=None)
        )
        return response

    async def ListJobs(  # noqa: N802
        self, request: jobs_pb2.ListJobsRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.ListJobsResponse:
        principal = await contractor_principal(context)
        contractor_id = principal.contractor_id or ""
        violations = Violations()
        size = page_size(request.page_size, violations)
        states = violations.states(request.states)
        digest = filter_digest([sorted(states), contractor_id])
        after = decode_page_token(request.page_token, digest, violations)
        violations.check()
        key = ("ListJobs", contractor_id, request.SerializeToString(deterministic=True))
        if (kept := self._cache.lookup(key)) is not None:
            return kept  # type: ignore[no-any-return]
        ticket = self._cache.ticket()
        views = await bounded_read(
            context,
            self._timeout,
            lambda: self._queries.list_jobs(contractor_id, states, after=after, limit=size + 1),
        )
        page, more = views[:size], len(views) > size
        response = jobs_pb2.ListJobsResponse(
            jobs=[work_order_message(v) for v in page if v.contractor_id == contractor_id],
            next_page_token=encode_page_token(page[-1], digest) if more and page else "",
        )
        self._cache.keep(key, response, ticket, (CONTRACTORS_SCOPE,))
        return response

    # ----------------------------------------------------------------- offers

    async def AcceptOffer(  # noqa: N802
        self, request: jobs_pb2.AcceptOfferRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.AcceptOfferResponse:
        principal = await contractor_principal(context)
        violations = Violations()
        request_id = violations.request_id(request.request_id)
        offer_id = violations.offer_id(request.offer_id)
        violations.check()
        actor = actor_of(principal)

        async def accept(uow: UnitOfWork) -> jobs_pb2.AcceptOfferResponse:
            order = await self._lifecycle.accept_offer(uow, actor, offer_id, via="grpc")
            return jobs_pb2.AcceptOfferResponse(job=work_order_message(view_of(order)))

        return await self._mutations.run(
            context,
            principal,
            request=request,
            request_id=request_id,
            response_type=jobs_pb2.AcceptOfferResponse,
            mutate=accept,
        )

    async def DeclineOffer(  # noqa: N802
        self, request: jobs_pb2.DeclineOfferRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.DeclineOfferResponse:
        principal = await contractor_principal(context)
        violations = Violations()
        request_id = violations.request_id(request.request_id)
        offer_id = violations.offer_id(request.offer_id)
        reason = violations.text(request.reason, "reason", limit=REASON_MAX) or ""
        violations.check()
        actor = actor_of(principal)

        async def decline(uow: UnitOfWork) -> jobs_pb2.DeclineOfferResponse:
            order = await self._lifecycle.decline_offer(uow, actor, offer_id, reason, via="grpc")
            offer = await self._lifecycle.offer_of_contractor(uow, actor.id or "", offer_id)
            return jobs_pb2.DeclineOfferResponse(
                offer=offer_message(
                    OfferView(offer=offer, order=view_of(order)), self._lifecycle.now()
                )
            )

        return await self._mutations.run(
            context,
            principal,
            request=request,
            request_id=request_id,
            response_type=jobs_pb2.DeclineOfferResponse,
            mutate=decline,
        )

    # ----------------------------------------------------------------- job steps

    async def _step(
        self,
        context: grpc.aio.ServicerContext,
        request: Any,
        response_type: type[Any],
        build: Callable[[Violations, datetime], tuple[Step, dict[str, Any]]],
    ) -> Any:
        principal = await contractor_principal(context)
        violations = Violations()
        request_id = violations.request_id(request.request_id)
        work_order_id = violations.work_order_id(request.work_order_id)
        now = self._lifecycle.now()
        step, extra = build(violations, now)
        violations.check()
        actor: Actor = actor_of(principal)

        async def mutate(uow: UnitOfWork) -> Any:
            order = await self._lifecycle.job_of_contractor(uow, actor.id or "", work_order_id)
            req = Request(step, actor, self._lifecycle.now(), **extra)
            await self._lifecycle.take(uow, order, req, via="grpc")
            answer = response_type(job=work_order_message(view_of(order)))
            if step is Step.COMMENT:
                answer.comment_id = req.comment_id
            return answer

        return await self._mutations.run(
            context,
            principal,
            request=request,
            request_id=request_id,
            response_type=response_type,
            mutate=mutate,
        )

    @staticmethod
    def _eta(
        v: Violations, stamp: Any, path: str, now: datetime, *, required: bool
    ) -> datetime | None:
        eta = v.moment(stamp, path, required=required)
        if eta is not None and eta > now + MAX_ETA_AHEAD:
            v.add(path, "lies more than a year ahead")
        return eta

    async def ScheduleVisit(  # noqa: N802
        self, request: jobs_pb2.ScheduleVisitRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.ScheduleVisitResponse:
        def build(v: Violations, now: datetime) -> tuple[Step, dict[str, Any]]:
            start = self._eta(v, request.window.start, "window.start", now, required=True)
            end = self._eta(v, request.window.end, "window.end", now, required=True)
            return Step.SCHEDULE, {
                "window": None if start is None or end is None else (start, end),
                "note": v.text(request.note, "note", limit=TEXT_MAX, required=False),
            }

        answer: jobs_pb2.ScheduleVisitResponse = await self._step(
            context, request, jobs_pb2.ScheduleVisitResponse, build
        )
        return answer

    async def ReportProgress(  # noqa: N802
        self, request: jobs_pb2.ReportProgressRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.ReportProgressResponse:
        def build(v: Violations, now: datetime) -> tuple[Step, dict[str, Any]]:
            step = PROGRESS_STEPS.get(request.kind)
            if step is None:
                v.add("kind", "required: en route, on site, awaiting parts or note")
                step = Step.REPORT_PROGRESS
            return step, {
                "eta": self._eta(v, request.eta, "eta", now, required=False),
                "note": v.text(request.note, "note", limit=TEXT_MAX, required=False),
                "parts": v.parts(request.parts, "parts"),
            }

        answer: jobs_pb2.ReportProgressResponse = await self._step(
            context, request, jobs_pb2.ReportProgressResponse, build
        )
        return answer

    async def ReportDelay(  # noqa: N802
        self, request: jobs_pb2.ReportDelayRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.ReportDelayResponse:
        def build(v: Violations, now: datetime) -> tuple[Step, dict[str, Any]]:
            cause = CAUSES_BY_NUMBER.get(request.cause)
            if cause is None:
                v.add("cause", "required: manpower, parts, technical, access or other")
            return Step.REPORT_DELAY, {
                "cause": cause,
                "eta": self._eta(v, request.new_eta, "new_eta", now, required=True),
                "note": v.text(request.note, "note", limit=TEXT_MAX, required=False),
                "reason": None,
            }

        answer: jobs_pb2.ReportDelayResponse = await self._step(
            context, request, jobs_pb2.ReportDelayResponse, build
        )
        return answer

    async def CompleteWork(  # noqa: N802
        self, request: jobs_pb2.CompleteWorkRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.CompleteWorkResponse:
        def build(v: Violations, _now: datetime) -> tuple[Step, dict[str, Any]]:
            if not request.HasField("completion"):
                v.add("completion", "required")
                return Step.COMPLETE, {}
            return Step.COMPLETE, {"completion": v.completion(request.completion)}

        answer: jobs_pb2.CompleteWorkResponse = await self._step(
            context, request, jobs_pb2.CompleteWorkResponse, build
        )
        return answer

    async def CommentOnJob(  # noqa: N802
        self, request: jobs_pb2.CommentOnJobRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.CommentOnJobResponse:
        def build(v: Violations, _now: datetime) -> tuple[Step, dict[str, Any]]:
            return Step.COMMENT, {
                "note": v.text(request.text, "text", limit=TEXT_MAX),
                "comment_id": str(uuid.uuid4()),
            }

        answer: jobs_pb2.CommentOnJobResponse = await self._step(
            context, request, jobs_pb2.CommentOnJobResponse, build
        )
        return answer


__all__ = ["JOBS_SERVICE_NAME", "ContractorJobsServicer", "contractor_principal"]
