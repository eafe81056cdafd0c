"""``fixloop jobs ...``: a contractor's offers and jobs through the partner gRPC API.

What a contractor's field-service app does, from the command line, with the contractor's API key:
look at its offers and accept or decline them, then take its jobs through the visit (schedule,
progress, delay, complete, comment). Each step is sent with a request id (a new UUID, or
``--request-id`` to retry one), so a retried step is taken at most once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fixloop_orders.cli_support import (
    DEFAULT_TARGET,
    TIME_HELP,
    Api,
    ApiKeyOption,
    Check,
    PartQuantity,
    PhotoRef,
    RequestIdOption,
    TargetOption,
    TimeoutOption,
    at_site,
    enum_label,
    fail,
    parse_check,
    parse_future_time,
    parse_part,
    parse_photo,
    parse_state,
    print_rows,
    priority_label,
    result_line,
    say,
    state_label,
    state_labels,
    take_step,
    timestamp,
)
from fixloop_shared.contracts.lifecycle import MAX_LABOUR_MINUTES

if TYPE_CHECKING:
    from fixloop.v1 import work_order_pb2

app = typer.Typer(
    name="jobs",
    help="A contractor's offers and jobs through the orders gRPC API: accept or decline offers, "
    "schedule the visit, report progress and delays, complete the work.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

CONTRACTOR_HINT = "use the API key of the contractor the job is assigned to"
JobId = Annotated[str, typer.Argument(metavar="ID", help="Work order id of the job (a UUID).")]
OfferId = Annotated[str, typer.Argument(metavar="OFFER_ID", help="Offer id (from `offers`).")]
NoteOption = Annotated[str | None, typer.Option(help="A note for the record.")]
PartsOption = Annotated[
    list[PartQuantity] | None,
    typer.Option(
        "--part",
        parser=parse_part,
        metavar="PN:QTY",
        help="A part and its quantity, e.g. FLT-HEPA-24:2 (repeatable).",
    ),
]


def _job_not_found(work_order_id: str) -> str:
    return (
        f"job {work_order_id} not found for this API key's contractor "
        "(no such work order, or not assigned to it)"
    )


def _offer_not_found(offer_id: str) -> str:
    return f"offer {offer_id} not found for this API key's contractor"


@app.callback()
def jobs() -> None:
    """A contractor's offers and jobs through the orders gRPC API."""


# --------------------------------------------------------------------------- offers


@app.command()
def offers(
    *,
    api_key: ApiKeyOption,
    include_closed: Annotated[
        bool,
        typer.Option(
            "--all", help="Also offers that are no longer open (accepted, declined, expired)."
        ),
    ] = False,
    limit: Annotated[int, typer.Option(help="Show at most this many.", min=1, max=10_000)] = 50,
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = 10.0,
) -> None:
    """List the offers made to your contractor, oldest first."""
    from fixloop.v1 import contractor_jobs_service_pb2 as pb

    found: list[pb.Offer] = []
    token = ""
    with Api(target, api_key, timeout) as api:
        ctx = api.context("list offers", "offers not found", key_hint="use a contractor's key")
        while len(found) < limit:
            request = pb.ListOffersRequest(
                page_size=min(200, limit - len(found)),
                page_token=token,
                include_closed=include_closed,
            )
            answer = api.call(api.jobs.ListOffers, request, ctx)
            found.extend(answer.offers)
            token = answer.next_page_token
            if not token:
                break
    if not found:
        say("no offers" if include_closed else "no open offers")
        return
    print_rows(
        f"Offers ({len(found)}{', more' if token else ''})",
        ("offer id", "work order", "status", "priority", "job", "site", "expires"),
        [
            (
                offer.offer_id,
                offer.work_order_id,
                enum_label("OFFER_STATUS_", pb.OfferStatus.Name(offer.status)),
                priority_label(offer.priority),
                f"{offer.equipment.equipment_class} {offer.equipment.equipment_id}".strip(),
                f"{offer.site.address.city} ({offer.site.site_id})",
                at_site(offer.expires_at, offer, short=True),
            )
            for offer in found
        ],
    )


@app.command()
def accept(
    *,
    offer_id: OfferId,
    api_key: ApiKeyOption,
    request_id: RequestIdOption = None,
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Accept an open offer: the work order is assigned to your contractor."""
    from fixloop.v1 import contractor_jobs_service_pb2 as pb

    answer = take_step(
        target=target,
        api_key=api_key,
        timeout=timeout,
        request_id=request_id,
        service="jobs",
        method="AcceptOffer",
        action="accept offers",
        not_found=_offer_not_found(offer_id),
        key_hint=CONTRACTOR_HINT,
        build=lambda rid: pb.AcceptOfferRequest(request_id=rid, offer_id=offer_id),
    )
    job = answer.job
    by = f" by {job.contractor_id}" if job.HasField("contractor_id") else ""
    say(result_line(job, f" (offer {offer_id} accepted{by})"))


@app.command()
def decline(
    *,
    offer_id: OfferId,
    reason: Annotated[str, typer.Option(help="Why (required).")],
    api_key: ApiKeyOption,
    request_id: RequestIdOption = None,
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Decline an open offer (a reason is required)."""
    from fixloop.v1 import contractor_jobs_service_pb2 as pb

    answer = take_step(
        target=target,
        api_key=api_key,
        timeout=timeout,
        request_id=request_id,
        service="jobs",
        method="DeclineOffer",
        action="decline offers",
        not_found=_offer_not_found(offer_id),
        key_hint=CONTRACTOR_HINT,
        build=lambda rid: pb.DeclineOfferRequest(request_id=rid, offer_id=offer_id, reason=reason),
    )
    offer = answer.offer
    status = enum_label("OFFER_STATUS_", pb.OfferStatus.Name(offer.status))
    say(f"offer {offer.offer_id} for work order {offer.work_order_id}: {status}")


# --------------------------------------------------------------------------- jobs

STATE_HELP = "Only jobs in this state (repeatable): " + ", ".join(state_labels()) + "."


@app.command("list")
def list_jobs(
    *,
    api_key: ApiKeyOption,
    states: Annotated[
        list[int] | None,
        typer.Option("--state", parser=parse_state, metavar="STATE", help=STATE_HELP),
    ] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many.", min=1, max=10_000)] = 50,
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = 10.0,
) -> None:
    """List the jobs assigned to your contractor, most recently updated first."""
    from fixloop.v1 import contractor_jobs_service_pb2 as pb

    found: list[work_order_pb2.WorkOrder] = []
    token = ""
    with Api(target, api_key, timeout) as api:
        ctx = api.context("list jobs", "jobs not found", key_hint="use a contractor's key")
        while len(found) < limit:
            request = pb.ListJobsRequest(
                page_size=min(200, limit - len(found)),
                page_token=token,
                states=states or [],  # type: ignore[arg-type]
            )
            answer = api.call(api.jobs.ListJobs, request, ctx)
            found.extend(answer.jobs)
            token = answer.next_page_token
            if not token:
                break
    if not found:
        say("no jobs match")
        return

    def visit(job: work_order_pb2.WorkOrder) -> str:
        if not job.HasField("appointment"):
            return ""
        start, end = job.appointment.start, job.appointment.end
        return f"{at_site(start, job, short=True)} to {at_site(end, job, short=True)}"

    print_rows(
        f"Jobs ({len(found)}{', more' if token else ''})",
        ("id", "external id", "state", "priority", "site", "visit", "eta", "updated"),
        [
            (
                job.id,
                job.external_id,
                state_label(job.state),
                priority_label(job.priority),
                f"{job.site.address.city} ({job.site.site_id})",
                visit(job),
                at_site(job.eta, job, short=True) if job.HasField("eta") else "",
                at_site(job.updated_at, job, short=True),
            )
            for job in found
        ],
    )


def _job_step(
    *,
    api_key: str,
    target: str,
    timeout: float,
    request_id: str | None,
    method: str,
    action: str,
    work_order_id: str,
    build: Callable[[str], Any],
) -> work_order_pb2.WorkOrder:
    """Send one step of a job with its request id: the job after it, or one line and an exit."""
    answer = take_step(
        target=target,
        api_key=api_key,
        timeout=timeout,
        request_id=request_id,
        service="jobs",
        method=method,
        action=action,
        not_found=_job_not_found(work_order_id),
        key_hint=CONTRACTOR_HINT,
        build=build,
    )
    job: work_order_pb2.WorkOrder = answer.job
    return job


def _part_lines(parts: list[PartQuantity] | None) -> list[Any]:
    from fixloop.v1 import work_order_pb2

    return [
        work_order_pb2.PartLine(part_number=p.part_number, quantity=p.quantity) for p in parts or []
    ]


@app.command()
def schedule(
    *,
    work_order_id: JobId,
    start: Annotated[
        datetime,
        typer.Option(parser=parse_future_time, metavar="TIME", help=f"Visit from: {TIME_HELP}."),
    ],
    end: Annotated[
        datetime,
        typer.Option(parser=parse_future_time, metavar="TIME", help=f"Visit until: {TIME_HELP}."),
    ],
    api_key: ApiKeyOption,
    note: NoteOption = None,
    request_id: RequestIdOption = None,
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Book (or move) the visit's appointment window with the site."""
    from fixloop.v1 import contractor_jobs_service_pb2 as pb
    from fixloop.v1 import work_order_pb2

    if end <= start:
        first, last = (t.isoformat(timespec="seconds") for t in (start, end))
        fail(f"--end ({last}) must be later than --start ({first})", 2)
    job = _job_step(
        api_key=api_key,
        target=target,
        timeout=timeout,
        request_id=request_id,
        method="ScheduleVisit",
        action="schedule visits",
        work_order_id=work_order_id,
        build=lambda rid: pb.ScheduleVisitRequest(
            request_id=rid,
            work_order_id=work_order_id,
            window=work_order_pb2.AppointmentWindow(start=timestamp(start), end=timestamp(end)),
            note=note,
        ),
    )
    window = (
        f" (visit {at_site(job.appointment.start, job)} to {at_site(job.appointment.end, job)})"
        if job.HasField("appointment")
        else ""
    )
    say(result_line(job, window))


class ProgressKind(StrEnum):
    EN_ROUTE = "en-route"
    ON_SITE = "on-site"
    AWAITING_PARTS = "awaiting-parts"
    NOTE = "note"


_PROGRESS_NUMBERS = {  # fixloop.v1.ProgressKind
    ProgressKind.EN_ROUTE: 1,
    ProgressKind.ON_SITE: 2,
    ProgressKind.AWAITING_PARTS: 3,
    ProgressKind.NOTE: 4,
}


@app.command()
def progress(
    *,
    work_order_id: JobId,
    kind: Annotated[
        ProgressKind,
        typer.Option(
            help="en-route (eta: arrival), on-site (eta: completion), awaiting-parts (with "
            "--part, eta: when they come) or note."
        ),
    ],
    api_key: ApiKeyOption,
    eta: Annotated[
        datetime | None,
        typer.Option(parser=parse_future_time, metavar="TIME", help=f"ETA: {TIME_HELP}."),
    ] = None,
    note: NoteOption = None,
    parts: PartsOption = None,
    request_id: RequestIdOption = None,
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Report progress: on the way, on site, waiting for parts, or a note."""
    from fixloop.v1 import contractor_jobs_service_pb2 as pb

    def build(rid: str) -> Any:
        request = pb.ReportProgressRequest(
            request_id=rid,
            work_order_id=work_order_id,
            kind=_PROGRESS_NUMBERS[kind],  # type: ignore[arg-type]
            note=note,
            parts=_part_lines(parts),
        )
        if eta is not None:
            request.eta.CopyFrom(timestamp(eta))
        return request

    job = _job_step(
        api_key=api_key,
        target=target,
        timeout=timeout,
        request_id=request_id,
        method="ReportProgress",
        action="report progress",
        work_order_id=work_order_id,
        build=build,
    )
    say(result_line(job, f" (eta {at_site(job.eta, job)})" if job.HasField("eta") else ""))


class Cause(StrEnum):
    MANPOWER = "manpower"
    PARTS = "parts"
    TECHNICAL = "technical"
    ACCESS = "access"
    OTHER = "other"


_CAUSE_NUMBERS = {  # fixloop.v1.DelayCause
    Cause.MANPOWER: 1,
    Cause.PARTS: 2,
    Cause.TECHNICAL: 3,
    Cause.ACCESS: 4,
    Cause.OTHER: 5,
}


@app.command()
def delay(
    *,
    work_order_id: JobId,
    cause: Annotated[Cause, typer.Option(help="Why the work is late.")],
    eta: Annotated[
        datetime,
        typer.Option(parser=parse_future_time, metavar="TIME", help=f"The new ETA: {TIME_HELP}."),
    ],
    api_key: ApiKeyOption,
    note: NoteOption = None,
    request_id: RequestIdOption = None,
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Report a delay with its cause and a new ETA."""
    from fixloop.v1 import contractor_jobs_service_pb2 as pb

    job = _job_step(
        api_key=api_key,
        target=target,
        timeout=timeout,
        request_id=request_id,
        method="ReportDelay",
        action="report delays",
        work_order_id=work_order_id,
        build=lambda rid: pb.ReportDelayRequest(
            request_id=rid,
            work_order_id=work_order_id,
            cause=_CAUSE_NUMBERS[cause],  # type: ignore[arg-type]
            new_eta=timestamp(eta),
            note=note,
        ),
    )
    say(result_line(job, f" (delayed: {cause.value}, new eta {at_site(job.eta, job)})"))


@app.command()
def complete(
    *,
    work_order_id: JobId,
    resolution: Annotated[
        str,
        typer.Option(help="Resolution code: replaced_part, adjusted, no_fault_found, ..."),
    ],
    summary: Annotated[str, typer.Option(help="What was done.")],
    labour_minutes: Annotated[
        int, typer.Option(help="Minutes of labour.", min=0, max=MAX_LABOUR_MINUTES)
    ],
    api_key: ApiKeyOption,
    parts: PartsOption = None,
    checks: Annotated[
        list[Check] | None,
        typer.Option(
            "--check",
            parser=parse_check,
            metavar="ITEM=OUTCOME",
            help="A checklist item and its outcome: passed, failed or n/a, e.g. "
            "'Airflow measured=passed' (repeatable).",
        ),
    ] = None,
    photos: Annotated[
        list[PhotoRef] | None,
        typer.Option(
            "--photo",
            parser=parse_photo,
            metavar="URI,CONTENT_TYPE,SIZE,SHA256",
            help="A photo taken as proof: where it is, image/jpeg|png|webp|heic, its size in "
            "bytes and the hex SHA-256 of its bytes (repeatable).",
        ),
    ] = None,
    request_id: RequestIdOption = None,
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Complete the work with a completion report; the requester then verifies it."""
    from fixloop.v1 import contractor_jobs_service_pb2 as pb
    from fixloop.v1 import work_order_pb2

    report = work_order_pb2.CompletionReport(
        resolution_code=resolution,
        work_summary=summary,
        labour_minutes=labour_minutes,
        parts_used=_part_lines(parts),
        checklist=[
            work_order_pb2.ChecklistResult(item=c.item, outcome=c.outcome)  # type: ignore[arg-type]
            for c in checks or []
        ],
        photos=[
            work_order_pb2.PhotoEvidence(
                uri=p.uri, content_type=p.content_type, size_bytes=p.size_bytes, sha256=p.sha256
            )
            for p in photos or []
        ],
    )
    job = _job_step(
        api_key=api_key,
        target=target,
        timeout=timeout,
        request_id=request_id,
        method="CompleteWork",
        action="complete work",
        work_order_id=work_order_id,
        build=lambda rid: pb.CompleteWorkRequest(
            request_id=rid, work_order_id=work_order_id, completion=report
        ),
    )
    count = f"{len(report.photos)} photo{'' if len(report.photos) == 1 else 's'}"
    say(result_line(job, f" ({resolution}, {labour_minutes} min, {count})"))


@app.command()
def comment(
    *,
    work_order_id: JobId,
    text: Annotated[str, typer.Argument(metavar="TEXT", help="The comment.")],
    api_key: ApiKeyOption,
    request_id: RequestIdOption = None,
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Add a comment to the job's thread."""
    from fixloop.v1 import contractor_jobs_service_pb2 as pb

    answer = take_step(
        target=target,
        api_key=api_key,
        timeout=timeout,
        request_id=request_id,
        service="jobs",
        method="CommentOnJob",
        action="comment on jobs",
        not_found=_job_not_found(work_order_id),
        key_hint=CONTRACTOR_HINT,
        build=lambda rid: pb.CommentOnJobRequest(
            request_id=rid, work_order_id=work_order_id, text=text
        ),
    )
    say(result_line(answer.job, f" (comment {answer.comment_id} added)"))


__all__ = ["app"]
