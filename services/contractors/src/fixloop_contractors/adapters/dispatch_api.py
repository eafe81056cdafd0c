"""``fixloop.v1.DispatchService``: a tenant's operators ask why a work order went to whom.

:class:`DispatchServicer` answers ``ExplainDispatch`` from the kept explanations of the
dispatch rounds (:mod:`fixloop_contractors.app.explanations`). Only operator principals may call
it (anyone else: PERMISSION_DENIED); the operator's tenant comes only from its authenticated
principal (:mod:`fixloop_shared.grpc_edge.auth`), and a work order of another tenant answers
exactly like one that does not exist or was never dispatched (NOT_FOUND, same message, same
details). Refusals are raised as domain errors; the edge maps them to status codes in one place
(:mod:`fixloop_shared.grpc_edge.errors`).

An answer never exceeds the server's message size: when every candidate of every round would not
fit, each round lists its best ones first and says how many it left out.

:func:`dispatch_api` builds the server that carries the service, as a
:class:`~fixloop_shared.grpc_edge.hosting.HostedGrpcApi` the service's app starts and drains.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import grpc
from google.protobuf import timestamp_pb2

from fixloop.v1 import (
    contractor_jobs_service_pb2,
    dispatch_service_pb2,
    dispatch_service_pb2_grpc,
    work_order_pb2,
)
from fixloop_contractors.app.explain import CandidateOutcome
from fixloop_contractors.app.explanations import (
    DispatchRecords,
    ExplainedRound,
    RoundOutcome,
    explain_dispatch,
)
from fixloop_contractors.domain.offers import Offer, OfferStatus
from fixloop_shared.errors import FieldViolation, Forbidden, InvalidInput, NotFound
from fixloop_shared.grpc_edge.auth import authenticated_principal
from fixloop_shared.grpc_edge.errors import INVALID_ARGUMENT_MESSAGE
from fixloop_shared.grpc_edge.hosting import HostedGrpcApi, ReadinessProbe
from fixloop_shared.grpc_edge.principals import PrincipalDirectory, PrincipalKind
from fixloop_shared.grpc_edge.reads import bounded_read, is_canonical_uuid
from fixloop_shared.grpc_edge.server import DEFAULT_MAX_MESSAGE_BYTES, GrpcService

SERVICE_NAME: str = dispatch_service_pb2.DESCRIPTOR.services_by_name["DispatchService"].full_name
WORK_ORDER_RESOURCE_TYPE: str = work_order_pb2.WorkOrder.DESCRIPTOR.full_name
NOT_FOUND_MESSAGE = "no dispatch decision for this work order"
OPERATORS_ONLY_MESSAGE = "this method is for a tenant's operators"
WORK_ORDER_ID_VIOLATION = (
    "must be a canonical lowercase UUID, e.g. 0b5e1c1e-3f43-4f9a-9d51-0f4c9d3a7b21"
)
DEFAULT_QUERY_TIMEOUT_SECONDS = 5.0
"""Time a read may take when the caller sets no deadline, and the most it may take anyway."""
RESPONSE_HEADROOM_BYTES = 64 * 1024
"""Kept free below the message size limit for what the size estimate does not count."""
_FIELD_OVERHEAD_BYTES = 8
"""A repeated message field's tag and length prefix take at most this many bytes."""

_OUTCOMES: dict[RoundOutcome, dispatch_service_pb2.DispatchOutcome] = {
    RoundOutcome.OFFERED: dispatch_service_pb2.DISPATCH_OUTCOME_OFFERED,
    RoundOutcome.UNFILLED: dispatch_service_pb2.DISPATCH_OUTCOME_UNFILLED,
    RoundOutcome.ASSIGNED_BY_OPERATOR: dispatch_service_pb2.DISPATCH_OUTCOME_ASSIGNED_BY_OPERATOR,
}
_OFFER_STATUS: dict[OfferStatus, contractor_jobs_service_pb2.OfferStatus] = {
    OfferStatus.OPEN: contractor_jobs_service_pb2.OFFER_STATUS_OPEN,
    OfferStatus.ACCEPTED: contractor_jobs_service_pb2.OFFER_STATUS_ACCEPTED,
    OfferStatus.DECLINED: contractor_jobs_service_pb2.OFFER_STATUS_DECLINED,
    OfferStatus.WITHDRAWN: contractor_jobs_service_pb2.OFFER_STATUS_WITHDRAWN,
    OfferStatus.TIMED_OUT: contractor_jobs_service_pb2.OFFER_STATUS_EXPIRED,
}


class DispatchNotVisibleError(NotFound):
    """The caller's tenant has no dispatched work order of that id; it is told no more."""

    caller_message = NOT_FOUND_MESSAGE
    resource_type = WORK_ORDER_RESOURCE_TYPE

    def __init__(self, tenant: str, work_order_id: str) -> None:
        super().__init__(f"tenant {tenant!r} has no dispatch decision on {work_order_id!r}")


# --------------------------------------------------------------------------- to the wire


def timestamp(at: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(at)
    return stamp


def offer_message(offer: Offer, now: datetime) -> dispatch_service_pb2.CandidateOffer:
    """An offer and what became of it; an open one past its expiry shows as expired (the expiry
    sweep has not reached it yet)."""
    status = _OFFER_STATUS[offer.status]
    if offer.status is OfferStatus.OPEN and offer.is_expired(now):
        status = contractor_jobs_service_pb2.OFFER_STATUS_EXPIRED
    message = dispatch_service_pb2.CandidateOffer(
        offer_id=offer.offer_id,
        status=status,
        offered_at=timestamp(offer.offered_at),
        expires_at=timestamp(offer.expires_at),
        reason=offer.reason,
    )
    if offer.closed_at is not None:
        message.closed_at.CopyFrom(timestamp(offer.closed_at))
    return message


def candidate_message(
    candidate: CandidateOutcome,
    weights: dict[str, float],
    offer: Offer | None,
    now: datetime,
) -> dispatch_service_pb2.DispatchCandidate:
    """One contractor of a decision: ranked with its components, or excluded with its reasons;
    its offer when it had one in the round."""
    message = dispatch_service_pb2.DispatchCandidate(
        contractor_id=candidate.contractor_id,
        eligible=not candidate.excluded,
        rank=candidate.rank or 0,
        total_score=candidate.total or 0.0,
        score_components=[
            dispatch_service_pb2.ScoreComponent(
                name=name, value=value, weight=weights.get(name, 0.0)
            )
            for name, value in candidate.components
        ],
        exclusion_reasons=list(candidate.excluded),
        travel_km=candidate.travel_km,
        travel_basis=candidate.travel_basis or "",
        on_call_layer=candidate.on_call or "",
        skill_level=candidate.skill_level or 0,
        preferred=candidate.preferred,
        offered=candidate.offered,
    )
    if offer is not None:
        message.offer.CopyFrom(offer_message(offer, now))
    return message


def round_header(explained: ExplainedRound) -> dispatch_service_pb2.DispatchRound:
    """A round without its candidates."""
    explanation = explained.explanation
    return dispatch_service_pb2.DispatchRound(
        dispatch_round=explanation.dispatch_round,
        decided_at=timestamp(explanation.decided_at),
        outcome=_OUTCOMES[explained.outcome],
        offered_contractor_ids=list(explanation.offered_to),
        reason=explanation.reason,
        candidates_total=explanation.assessed,
    )


def explain_response(
    work_order_id: str,
    rounds: list[ExplainedRound],
    *,
    now: datetime,
    max_bytes: int,
) -> dispatch_service_pb2.ExplainDispatchResponse:
    """Every round with every candidate, as long as the answer stays within ``max_bytes``.

    Every round is always there. The room left is shared by the rounds still to fill (what one
    does not need passes on to the next); a round lists its candidates in their order (ranked
    best first, then the excluded ones) until its share is used, and counts the rest in
    ``candidates_omitted``.
    """
    headers = [round_header(r) for r in rounds]
    used = len(work_order_id) + _FIELD_OVERHEAD_BYTES
    used += sum(h.ByteSize() + 2 * _FIELD_OVERHEAD_BYTES for h in headers)
    for index, (header, explained) in enumerate(zip(headers, rounds, strict=True)):
        explanation = explained.explanation
        share = (max_bytes - used) // (len(rounds) - index)
        spent = 0
        weights = dict(explanation.weights)
        for candidate in explanation.candidates:
            offer = explained.offers.get(candidate.contractor_id) if candidate.offered else None
            message = candidate_message(candidate, weights, offer, now)
            size = message.ByteSize() + _FIELD_OVERHEAD_BYTES
            if spent + size > share:
                break
            header.candidates.append(message)
            spent += size
        used += spent
        header.candidates_omitted = max(0, explanation.assessed - len(header.candidates))
    return dispatch_service_pb2.ExplainDispatchResponse(work_order_id=work_order_id, rounds=headers)


# --------------------------------------------------------------------------- the service


class DispatchServicer(dispatch_service_pb2_grpc.DispatchServiceServicer):
    """``fixloop.v1.DispatchService`` over the kept dispatch decisions."""

    def __init__(
        self,
        records: DispatchRecords,
        *,
        query_timeout_seconds: float = DEFAULT_QUERY_TIMEOUT_SECONDS,
        max_response_bytes: int = DEFAULT_MAX_MESSAGE_BYTES - RESPONSE_HEADROOM_BYTES,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._records = records
        self._query_timeout = query_timeout_seconds
        self._max_response_bytes = max_response_bytes
        self._clock = clock or (lambda: datetime.now(UTC))

    async def ExplainDispatch(  # noqa: N802 - the generated servicer names the method
        self,
        request: dispatch_service_pb2.ExplainDispatchRequest,
        context: grpc.aio.ServicerContext,
    ) -> dispatch_service_pb2.ExplainDispatchResponse:
        principal = await authenticated_principal(context)
        tenant = principal.tenant
        if principal.kind is not PrincipalKind.OPERATOR or tenant is None:
            raise Forbidden(
                f"{principal} called a method for operators", caller_message=OPERATORS_ONLY_MESSAGE
            )
        work_order_id = request.work_order_id
        if not is_canonical_uuid(work_order_id):
            raise InvalidInput(
                INVALID_ARGUMENT_MESSAGE, [FieldViolation("work_order_id", WORK_ORDER_ID_VIOLATION)]
            )
        rounds = await bounded_read(
            context,
            self._query_timeout,
            lambda: explain_dispatch(self._records, tenant=tenant, work_order_id=work_order_id),
        )
        if not rounds:
            raise DispatchNotVisibleError(tenant, work_order_id)
        return explain_response(
            work_order_id, rounds, now=self._clock(), max_bytes=self._max_response_bytes
        )


def dispatch_api(
    records: DispatchRecords,
    *,
    host: str,
    port: int,
    principals: PrincipalDirectory,
    reflection: bool,
    rate_limit: str | None = None,
    query_timeout_seconds: float = DEFAULT_QUERY_TIMEOUT_SECONDS,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    stop_grace_seconds: float = 5.0,
    readiness: ReadinessProbe | None = None,
    readiness_interval_seconds: float = 5.0,
    clock: Callable[[], datetime] | None = None,
) -> HostedGrpcApi:
    """The contractors service's gRPC server carrying ``fixloop.v1.DispatchService`` (not
    started: the app starts and drains it)."""
    servicer = DispatchServicer(
        records,
        query_timeout_seconds=query_timeout_seconds,
        max_response_bytes=max_message_bytes - RESPONSE_HEADROOM_BYTES,
        clock=clock,
    )
    service = GrpcService(
        name=SERVICE_NAME,
        register=lambda server: dispatch_service_pb2_grpc.add_DispatchServiceServicer_to_server(  # type: ignore[no-untyped-call]
            servicer, server
        ),
    )
    return HostedGrpcApi(
        [service],
        host=host,
        port=port,
        principals=principals,
        reflection=reflection,
        name="dispatch gRPC API",
        rate_limit=rate_limit,
        max_message_bytes=max_message_bytes,
        stop_grace_seconds=stop_grace_seconds,
        readiness=readiness,
        readiness_interval_seconds=readiness_interval_seconds,
    )


__all__ = [
    "NOT_FOUND_MESSAGE",
    "OPERATORS_ONLY_MESSAGE",
    "SERVICE_NAME",
    "DispatchNotVisibleError",
    "DispatchServicer",
    "dispatch_api",
    "explain_response",
    "is_canonical_uuid",
]
