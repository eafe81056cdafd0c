"""``fixloop.v1.SlaService``: a tenant's operators ask which SLA clocks are at risk, how well
deadlines were kept, and how one work order's clocks ran.

:class:`SlaServicer` answers from the engine's records through
:class:`~fixloop_sla.app.reporting.SlaReports`. Only operator principals may call it (anyone
else: PERMISSION_DENIED); the operator's tenant comes only from its authenticated principal
(:mod:`fixloop_shared.grpc_edge.auth`), so another tenant's cycles are never read, and a work
order of another tenant answers exactly like one that does not exist (NOT_FOUND, same message,
same details). Bad input is INVALID_ARGUMENT with a ``BadRequest`` field violation per bad
field. Refusals are raised as domain errors; the edge maps them to status codes in one place
(:mod:`fixloop_shared.grpc_edge.errors`).

:func:`sla_grpc_api` builds the server that carries the service;
:func:`sla_api` does it from the service's settings and hooks it into the service's start-up,
shutdown and readiness.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf import duration_pb2, timestamp_pb2

from fixloop.v1 import sla_service_pb2, sla_service_pb2_grpc, work_order_pb2
from fixloop_shared.errors import FieldViolation, Forbidden, InvalidInput, NotFound
from fixloop_shared.grpc_edge.auth import authenticated_principal
from fixloop_shared.grpc_edge.errors import INVALID_ARGUMENT_MESSAGE
from fixloop_shared.grpc_edge.hosting import (
    HostedGrpcApi,
    ReadinessProbe,
    hosted_in,
    store_health,
)
from fixloop_shared.grpc_edge.principals import PrincipalDirectory, PrincipalKind
from fixloop_shared.grpc_edge.reads import bounded_read, is_canonical_uuid
from fixloop_shared.grpc_edge.server import DEFAULT_MAX_MESSAGE_BYTES, GrpcService
from fixloop_shared.runtime import ServiceContext
from fixloop_sla.app.reporting import (
    MAX_AT_RISK,
    MAX_REPORT_PERIOD,
    MAX_WITHIN,
    SlaReports,
    WorkOrderClocks,
)
from fixloop_sla.domain.report import (
    AtRiskRow,
    ClosedCycle,
    CycleOutcome,
    OpenCycle,
    OpenCycleState,
    ReportGroup,
    ReportRow,
    RiskReason,
)
from fixloop_sla.settings import SlaSettings

log = logging.getLogger(__name__)

SERVICE_NAME: str = sla_service_pb2.DESCRIPTOR.services_by_name["SlaService"].full_name
WORK_ORDER_RESOURCE_TYPE: str = work_order_pb2.WorkOrder.DESCRIPTOR.full_name
NOT_FOUND_MESSAGE = "no SLA clocks for this work order"
OPERATORS_ONLY_MESSAGE = "this method is for a tenant's operators"
WORK_ORDER_ID_VIOLATION = (
    "must be a canonical lowercase UUID, e.g. 0b5e1c1e-3f43-4f9a-9d51-0f4c9d3a7b21"
)
PAGE_SIZE_VIOLATION = f"must be from 1 to {MAX_AT_RISK}"
WITHIN_VIOLATION = f"must be from 0 to {MAX_WITHIN.days} days"
DEFAULT_WITHIN = timedelta(hours=2)
DEFAULT_QUERY_TIMEOUT_SECONDS = 5.0
"""Time a read may take when the caller sets no deadline, and the most it may take anyway."""

_STATES: dict[OpenCycleState, sla_service_pb2.ClockCycleState] = {
    OpenCycleState.RUNNING: sla_service_pb2.CLOCK_CYCLE_STATE_RUNNING,
    OpenCycleState.PAUSED: sla_service_pb2.CLOCK_CYCLE_STATE_PAUSED,
}
_OUTCOMES: dict[CycleOutcome, sla_service_pb2.ClockCycleOutcome] = {
    CycleOutcome.MET: sla_service_pb2.CLOCK_CYCLE_OUTCOME_MET,
    CycleOutcome.MISSED: sla_service_pb2.CLOCK_CYCLE_OUTCOME_MISSED,
    CycleOutcome.CANCELLED: sla_service_pb2.CLOCK_CYCLE_OUTCOME_CANCELLED,
}
_REASONS: dict[RiskReason, sla_service_pb2.RiskReason] = {
    RiskReason.BREACHED: sla_service_pb2.RISK_REASON_BREACHED,
    RiskReason.PREDICTED_LATE: sla_service_pb2.RISK_REASON_PREDICTED_LATE,
    RiskReason.WARNED: sla_service_pb2.RISK_REASON_WARNED,
    RiskReason.DUE_SOON: sla_service_pb2.RISK_REASON_DUE_SOON,
}
_GROUPS: dict[int, ReportGroup] = {
    sla_service_pb2.SLA_REPORT_GROUPING_UNSPECIFIED: ReportGroup.NONE,
    sla_service_pb2.SLA_REPORT_GROUPING_CONTRACTOR: ReportGroup.CONTRACTOR,
    sla_service_pb2.SLA_REPORT_GROUPING_EQUIPMENT_CLASS: ReportGroup.EQUIPMENT_CLASS,
}


class WorkOrderClocksNotVisibleError(NotFound):
    """The caller's tenant has no clocks for a work order of that id; it is told no more."""

    caller_message = NOT_FOUND_MESSAGE
    resource_type = WORK_ORDER_RESOURCE_TYPE

    def __init__(self, tenant: str, work_order_id: str) -> None:
        super().__init__(f"tenant {tenant!r} has no SLA clocks on {work_order_id!r}")


def _invalid(*violations: FieldViolation) -> InvalidInput:
    return InvalidInput(INVALID_ARGUMENT_MESSAGE, violations)


# --------------------------------------------------------------------------- from the wire


def page_size_of(request: sla_service_pb2.ListAtRiskClocksRequest) -> int:
    if not 1 <= request.page_size <= MAX_AT_RISK:
        raise _invalid(FieldViolation("page_size", PAGE_SIZE_VIOLATION))
    return request.page_size


def within_of(request: sla_service_pb2.ListAtRiskClocksRequest) -> timedelta:
    if not request.HasField("within"):
        return DEFAULT_WITHIN
    within = request.within
    valid_nanos = abs(within.nanos) < 1_000_000_000 and within.seconds * within.nanos >= 0
    if not valid_nanos or not 0 <= within.seconds <= MAX_WITHIN.total_seconds():
        raise _invalid(FieldViolation("within", WITHIN_VIOLATION))
    return timedelta(seconds=within.seconds, microseconds=within.nanos // 1000)


def _instant(stamp: timestamp_pb2.Timestamp) -> datetime | None:
    """The timestamp as an aware datetime, None if it is not a valid one."""
    try:
        return stamp.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def period_of(request: sla_service_pb2.GetSlaReportRequest) -> tuple[datetime, datetime]:
    """The requested ``[start_time, end_time)``, with a violation per bad field."""
    violations: list[FieldViolation] = []
    bounds: dict[str, datetime] = {}
    for name in ("start_time", "end_time"):
        if not request.HasField(name):
            violations.append(FieldViolation(name, "is required"))
            continue
        moment = _instant(getattr(request, name))
        if moment is None:
            violations.append(FieldViolation(name, "is not a valid timestamp"))
        else:
            bounds[name] = moment
    if not violations:
        start, end = bounds["start_time"], bounds["end_time"]
        if end <= start:
            violations.append(FieldViolation("end_time", "must be after start_time"))
        elif end - start > MAX_REPORT_PERIOD:
            violations.append(
                FieldViolation(
                    "end_time",
                    f"may be at most {MAX_REPORT_PERIOD.days} days after start_time",
                )
            )
    if violations:
        raise _invalid(*violations)
    return bounds["start_time"], bounds["end_time"]


def group_of(request: sla_service_pb2.GetSlaReportRequest) -> ReportGroup:
    group = _GROUPS.get(request.group_by)
    if group is None:
        raise _invalid(FieldViolation("group_by", "is not a known grouping"))
    return group


# --------------------------------------------------------------------------- to the wire


def timestamp(at: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(at)
    return stamp


def duration(span: timedelta) -> duration_pb2.Duration:
    message = duration_pb2.Duration()
    message.FromTimedelta(span)
    return message


def open_cycle_message(cycle: OpenCycle) -> sla_service_pb2.OpenClockCycle:
    message = sla_service_pb2.OpenClockCycle(
        clock=cycle.clock,
        cycle=cycle.cycle,
        state=_STATES[cycle.state],
        started_at=timestamp(cycle.started_at),
        prediction_basis=cycle.basis or "",
        policy_version=cycle.policy_version,
    )
    for name, moment in (
        ("deadline", cycle.deadline),
        ("warn_at", cycle.warn_at),
        ("breached_at", cycle.breached_at),
        ("predicted_at", cycle.predicted_at),
    ):
        if moment is not None:
            getattr(message, name).CopyFrom(timestamp(moment))
    return message


def closed_cycle_message(cycle: ClosedCycle) -> sla_service_pb2.ClosedClockCycle:
    message = sla_service_pb2.ClosedClockCycle(
        clock=cycle.clock,
        cycle=cycle.cycle,
        outcome=_OUTCOMES[cycle.outcome],
        breached=cycle.breached,
        started_at=timestamp(cycle.started_at),
        closed_at=timestamp(cycle.closed_at),
        paused_seconds=cycle.paused_seconds,
        business_seconds=cycle.business_seconds,
        wall_seconds=cycle.wall_seconds,
        policy_name=cycle.policy_name,
        policy_version=cycle.policy_version,
        calendar=cycle.calendar,
        calendar_version=cycle.calendar_version,
        timezone=cycle.timezone,
        timezone_source=cycle.timezone_source,
        contractor_id=cycle.profile.contractor_id or "",
        revision=cycle.revision,
    )
    if cycle.deadline is not None:
        message.deadline.CopyFrom(timestamp(cycle.deadline))
    if cycle.original_deadline is not None:
        message.original_deadline.CopyFrom(timestamp(cycle.original_deadline))
    if cycle.breach_margin_seconds is not None:
        message.breach_margin_seconds = cycle.breach_margin_seconds
    return message


def at_risk_message(row: AtRiskRow) -> sla_service_pb2.AtRiskClock:
    cycle = row.cycle
    message = sla_service_pb2.AtRiskClock(
        work_order_id=cycle.work_order_id,
        cycle=open_cycle_message(cycle),
        reason=_REASONS[row.reason],
        contractor_id=cycle.profile.contractor_id or "",
        priority=cycle.profile.priority or "",
        equipment_class=cycle.profile.equipment_class or "",
    )
    if row.time_left is not None:
        message.time_left.CopyFrom(duration(row.time_left))
    if row.predicted_lateness is not None:
        message.predicted_lateness.CopyFrom(duration(row.predicted_lateness))
    return message


def report_row_message(row: ReportRow) -> sla_service_pb2.SlaReportRow:
    message = sla_service_pb2.SlaReportRow(
        group=row.group,
        clock=row.clock,
        met=row.met,
        missed=row.missed,
        cancelled=row.cancelled,
        running_breached=row.running_breached,
        ever_breached=row.ever_breached,
    )
    if (percent := row.compliance_percent) is not None:
        message.compliance_percent = percent
    return message


def clocks_response(clocks: WorkOrderClocks) -> sla_service_pb2.GetWorkOrderClocksResponse:
    profile = clocks.profile
    return sla_service_pb2.GetWorkOrderClocksResponse(
        work_order_id=clocks.work_order_id,
        contractor_id=profile.contractor_id or "",
        priority=profile.priority or "",
        equipment_class=profile.equipment_class or "",
        category=profile.category or "",
        site_timezone=profile.site_timezone or "",
        open_cycles=[open_cycle_message(c) for c in clocks.open],
        closed_cycles=[closed_cycle_message(c) for c in clocks.closed],
    )


# --------------------------------------------------------------------------- the service


async def operator_tenant(context: grpc.aio.ServicerContext) -> str:
    """The tenant of the calling operator; anyone else is refused."""
    principal = await authenticated_principal(context)
    tenant = principal.tenant
    if principal.kind is not PrincipalKind.OPERATOR or tenant is None:
        raise Forbidden(
            f"{principal} called a method for operators", caller_message=OPERATORS_ONLY_MESSAGE
        )
    return tenant


class SlaServicer(sla_service_pb2_grpc.SlaServiceServicer):
    """``fixloop.v1.SlaService`` over the SLA engine's records."""

    def __init__(
        self,
        reports: SlaReports,
        *,
        query_timeout_seconds: float = DEFAULT_QUERY_TIMEOUT_SECONDS,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._reports = reports
        self._query_timeout = query_timeout_seconds
        self._clock = clock or (lambda: datetime.now(UTC))

    async def ListAtRiskClocks(  # noqa: N802 - the generated servicer names the method
        self,
        request: sla_service_pb2.ListAtRiskClocksRequest,
        context: grpc.aio.ServicerContext,
    ) -> sla_service_pb2.ListAtRiskClocksResponse:
        tenant = await operator_tenant(context)
        violations: list[FieldViolation] = []
        for check in (page_size_of, within_of):
            try:
                check(request)
            except InvalidInput as exc:
                violations.extend(exc.violations)
        if violations:
            raise _invalid(*violations)
        limit, within, now = page_size_of(request), within_of(request), self._clock()
        rows = await bounded_read(
            context,
            self._query_timeout,
            lambda: self._reports.at_risk(tenant=tenant, now=now, within=within, limit=limit),
        )
        return sla_service_pb2.ListAtRiskClocksResponse(
            clocks=[at_risk_message(row) for row in rows], as_of=timestamp(now)
        )

    async def GetSlaReport(  # noqa: N802
        self,
        request: sla_service_pb2.GetSlaReportRequest,
        context: grpc.aio.ServicerContext,
    ) -> sla_service_pb2.GetSlaReportResponse:
        tenant = await operator_tenant(context)
        violations: list[FieldViolation] = []
        for check in (period_of, group_of):
            try:
                check(request)
            except InvalidInput as exc:
                violations.extend(exc.violations)
        if violations:
            raise _invalid(*violations)
        (start, end), by, now = period_of(request), group_of(request), self._clock()
        rows = await bounded_read(
            context,
            self._query_timeout,
            lambda: self._reports.report(tenant=tenant, start=start, end=end, by=by, now=now),
        )
        return sla_service_pb2.GetSlaReportResponse(
            start_time=timestamp(start),
            end_time=timestamp(end),
            group_by=request.group_by,
            rows=[report_row_message(row) for row in rows],
            as_of=timestamp(now),
        )

    async def GetWorkOrderClocks(  # noqa: N802
        self,
        request: sla_service_pb2.GetWorkOrderClocksRequest,
        context: grpc.aio.ServicerContext,
    ) -> sla_service_pb2.GetWorkOrderClocksResponse:
        tenant = await operator_tenant(context)
        work_order_id = request.work_order_id
        if not is_canonical_uuid(work_order_id):
            raise _invalid(FieldViolation("work_order_id", WORK_ORDER_ID_VIOLATION))
        clocks = await bounded_read(
            context,
            self._query_timeout,
            lambda: self._reports.work_order_clocks(tenant=tenant, work_order_id=work_order_id),
        )
        if clocks is None:
            raise WorkOrderClocksNotVisibleError(tenant, work_order_id)
        return clocks_response(clocks)


def sla_grpc_api(
    reports: SlaReports,
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
    """The sla service's gRPC server carrying ``fixloop.v1.SlaService`` (not started: the app
    starts and drains it)."""
    servicer = SlaServicer(reports, query_timeout_seconds=query_timeout_seconds, clock=clock)
    service = GrpcService(
        name=SERVICE_NAME,
        register=lambda server: sla_service_pb2_grpc.add_SlaServiceServicer_to_server(  # type: ignore[no-untyped-call]
            servicer, server
        ),
    )
    return HostedGrpcApi(
        [service],
        host=host,
        port=port,
        principals=principals,
        reflection=reflection,
        name="SLA gRPC API",
        rate_limit=rate_limit,
        max_message_bytes=max_message_bytes,
        stop_grace_seconds=stop_grace_seconds,
        readiness=readiness,
        readiness_interval_seconds=readiness_interval_seconds,
    )


def sla_api(
    settings: SlaSettings,
    reports: SlaReports,
    ctx: ServiceContext,
    *,
    clock: Callable[[], datetime],
) -> HostedGrpcApi:
    """The SLA gRPC API, hooked into the app's start-up, shutdown and readiness: it starts
    once the store's indexes exist (register it after them), and its health follows the
    store."""
    api = sla_grpc_api(
        reports,
        host=settings.grpc_host,
        port=settings.grpc_port,
        principals=PrincipalDirectory.of(settings.principals),
        reflection=settings.grpc_reflection,
        rate_limit=settings.grpc_rate_limit or None,
        query_timeout_seconds=settings.grpc_query_timeout_seconds,
        stop_grace_seconds=settings.grpc_stop_grace_seconds,
        readiness=store_health(ctx.store.ping),
        readiness_interval_seconds=settings.grpc_health_interval_seconds,
        clock=clock,
    )
    return hosted_in(
        ctx,
        api,
        principals_setting="FIXLOOP_SLA_PRINCIPALS",
        has_principals=bool(settings.principals),
    )


__all__ = [
    "NOT_FOUND_MESSAGE",
    "OPERATORS_ONLY_MESSAGE",
    "SERVICE_NAME",
    "SlaServicer",
    "WorkOrderClocksNotVisibleError",
    "is_canonical_uuid",
    "sla_api",
    "sla_grpc_api",
]
