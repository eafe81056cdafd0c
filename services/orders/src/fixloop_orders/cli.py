"""``fixloop orders ...``: a tenant's work orders through the partner gRPC API.

The CLI sees exactly what a partner or operator with the same API key sees: its own tenant's
orders. It looks them up (``show``, ``list``), follows one (``watch``) and takes the requester's
steps (``cancel``, ``verify``, ``reject``, ``comment``). Each step is sent with a request id (a
new UUID, or ``--request-id`` to retry one), so a retried step is taken at most once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from fixloop_orders.cli_support import (
    DEFAULT_TARGET,
    TERMINAL_STATES,
    TIME_HELP,
    Api,
    ApiKeyOption,
    RequestIdOption,
    TargetOption,
    TimeoutOption,
    at_site,
    enum_label,
    fail,
    local,
    parse_past_time,
    parse_state,
    print_rows,
    priority_label,
    result_line,
    rpc_failure,
    say,
    site_zone,
    state_label,
    state_labels,
    take_step,
    timestamp,
)

if TYPE_CHECKING:
    from fixloop.v1 import work_order_pb2, work_orders_service_pb2

app = typer.Typer(
    name="orders",
    help="Work orders of your tenant through the orders gRPC API: look them up, follow them, "
    "cancel, verify, reject, comment.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

PARTNER_HINT = "use a partner or operator key of the order's tenant"
WorkOrderId = Annotated[str, typer.Argument(metavar="ID", help="Work order id (a UUID).")]


def _not_found(work_order_id: str) -> str:
    return f"work order {work_order_id} not found for this API key's tenant"


@app.callback()
def orders() -> None:
    """Work orders of your tenant through the orders gRPC API."""


# --------------------------------------------------------------------------- show


@app.command()
def show(
    work_order_id: WorkOrderId,
    api_key: ApiKeyOption,
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Show a work order and its timeline."""
    from fixloop.v1 import work_orders_service_pb2

    with Api(target, api_key, timeout) as api:
        response = api.call(
            api.orders.GetWorkOrder,
            work_orders_service_pb2.GetWorkOrderRequest(work_order_id=work_order_id),
            api.context("read work orders", _not_found(work_order_id), key_hint=PARTNER_HINT),
        )
    _print_order(response.work_order)


def _print_order(wo: work_order_pb2.WorkOrder) -> None:
    """Print a ``fixloop.v1.WorkOrder`` as a panel of facts and a table of its timeline."""
    from fixloop.v1 import work_order_pb2

    zone = site_zone(wo.site.timezone)
    category = enum_label("CATEGORY_", work_order_pb2.Category.Name(wo.category))

    site = wo.site
    address = site.address
    street = ", ".join(line for line in (address.line1, address.line2) if line)
    equipment = wo.equipment
    make = " ".join(part for part in (equipment.manufacturer, equipment.model) if part)
    requester = wo.requester
    contact = ", ".join(part for part in (requester.email, requester.phone) if part)

    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    rows: list[tuple[str, str]] = [
        ("id", wo.id),
        ("tenant", wo.tenant),
        ("state", state_label(wo.state)),
        ("priority", priority_label(wo.priority)),
        ("category", category),
        ("source", f"{wo.source_platform} / {wo.external_id}"),
        ("site", f"{site.name} ({site.site_id})"),
        ("address", f"{street}, {address.postal_code} {address.city}, {address.country}"),
        ("time zone", site.timezone),
        ("equipment", f"{equipment.equipment_class} {equipment.equipment_id} {make}".strip()),
        ("requester", f"{requester.name} <{contact}> [{requester.locale}]"),
        ("received", local(wo.received_at.ToDatetime(tzinfo=UTC), zone)),
        ("updated", local(wo.updated_at.ToDatetime(tzinfo=UTC), zone)),
    ]
    if wo.HasField("contractor_id"):
        rows.append(("contractor", wo.contractor_id))
    if wo.HasField("appointment"):
        window = f"{at_site(wo.appointment.start, wo)} to {at_site(wo.appointment.end, wo)}"
        rows.append(("appointment", window))
    if wo.HasField("eta"):
        rows.append(("eta", at_site(wo.eta, wo)))
    if wo.required_parts:
        parts = ", ".join(f"{part.quantity} x {part.part_number}" for part in wo.required_parts)
        rows.append(("parts", parts))
    if wo.HasField("completion"):
        report = wo.completion
        rows.append(
            (
                "completion",
                f"{report.resolution_code}: {report.work_summary} ({report.labour_minutes} min, "
                f"{len(report.photos)} photos)",
            )
        )
    for label, value in rows:
        facts.add_row(label, Text(value))

    timeline = Table(title="Timeline", expand=True)
    timeline.add_column("at", no_wrap=True)
    timeline.add_column("kind", no_wrap=True)
    timeline.add_column("what happened", overflow="fold")
    for entry in wo.timeline:
        what = Text(entry.summary)
        facts_of_entry = [f"{key}={entry.details[key]}" for key in sorted(entry.details)]
        if entry.HasField("event_type"):
            facts_of_entry.insert(0, entry.event_type)
        if facts_of_entry:
            what.append("".join(f"\n{fact}" for fact in facts_of_entry), style="dim")
        timeline.add_row(Text(local(entry.at.ToDatetime(tzinfo=UTC), zone)), Text(entry.kind), what)

    console = Console(highlight=False)
    console.print(
        Panel(
            Group(facts, Text(), Text(wo.description)),
            title=Text(f"Work order {wo.id}"),
            title_align="left",
        )
    )
    if wo.timeline:
        console.print(timeline)
    else:
        console.print(Text("No timeline entries yet."))


# --------------------------------------------------------------------------- list

STATE_HELP = "Only orders in this state (repeatable): " + ", ".join(state_labels()) + "."


@app.command("list")
def list_orders(
    *,
    api_key: ApiKeyOption,
    states: Annotated[
        list[int] | None,
        typer.Option("--state", parser=parse_state, metavar="STATE", help=STATE_HELP),
    ] = None,
    site: Annotated[str | None, typer.Option("--site", help="Only orders of this site id.")] = None,
    equipment_class: Annotated[
        str | None, typer.Option("--equipment-class", help="Only this equipment class (hvac).")
    ] = None,
    updated_since: Annotated[
        datetime | None,
        typer.Option(
            "--updated-since",
            parser=parse_past_time,
            metavar="TIME",
            help=f"Only orders updated since then: {TIME_HELP}; 2h alone means 2 hours ago.",
        ),
    ] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many.", min=1, max=10_000)] = 50,
    page_size: Annotated[int, typer.Option(help="Orders fetched per call.", min=1, max=200)] = 100,
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = 10.0,
) -> None:
    """List your tenant's work orders, most recently updated first."""
    from fixloop.v1 import work_orders_service_pb2

    found: list[work_order_pb2.WorkOrder] = []
    more = False
    token = ""
    with Api(target, api_key, timeout) as api:
        ctx = api.context("list work orders", "work orders not found", key_hint=PARTNER_HINT)
        while len(found) < limit:
            request = work_orders_service_pb2.ListWorkOrdersRequest(
                page_size=min(page_size, limit - len(found)),
                page_token=token,
                states=states or [],  # type: ignore[arg-type]
                site_id=site,
                equipment_class=equipment_class,
            )
            if updated_since is not None:
                request.updated_since.CopyFrom(timestamp(updated_since))
            answer = api.call(api.orders.ListWorkOrders, request, ctx)
            found.extend(answer.work_orders)
            token = answer.next_page_token
            if not token:
                break
        more = bool(token)
    if not found:
        say("no work orders match")
        return
    print_rows(
        f"Work orders ({len(found)}{', more match' if more else ''})",
        ("id", "external id", "state", "priority", "site", "updated"),
        [
            (
                wo.id,
                wo.external_id,
                state_label(wo.state),
                priority_label(wo.priority),
                wo.site.site_id,
                at_site(wo.updated_at, wo, short=True),
            )
            for wo in found[:limit]
        ],
    )
    if more:
        say(f"more orders match: raise --limit (now {limit})", style="dim")


# --------------------------------------------------------------------------- watch


def _step_summaries() -> dict[str, str]:
    """Event type -> the one-line summary its contract gives (``A contractor accepted ...``)."""
    from fixloop_shared.contracts import EVENTS_ON_TOPIC
    from fixloop_shared.topics import Topic

    return {
        model.event_type: str(getattr(model, "summary", ""))
        for model in EVENTS_ON_TOPIC[Topic.WORKORDERS_EVENTS]
    }


def _step_line(
    step: work_orders_service_pb2.WorkOrderStep, zone: Any, summaries: dict[str, str]
) -> str:
    """``time  state  what happened; by whom; facts`` for one step of the watch."""
    state = state_label(step.state)
    kind = step.event_type.split(".")[2] if step.event_type.count(".") >= 3 else step.event_type
    what = summaries.get(step.event_type) or kind.replace("_", " ")
    actor = step.actor_kind + (f" {step.actor_id}" if step.HasField("actor_id") else "")
    facts = [what, f"by {actor}"]
    if step.HasField("contractor_id") and step.contractor_id not in actor:
        facts.append(f"contractor {step.contractor_id}")
    if step.HasField("reason"):
        facts.append(f"reason: {step.reason}")
    if step.HasField("note"):
        facts.append(f"note: {step.note}")
    for key in sorted(step.details):
        value = " ".join(step.details[key].split())
        facts.append(f"{key}={value if len(value) <= 60 else value[:59] + '…'}")
    at = local(step.occurred_at.ToDatetime(tzinfo=UTC), zone)
    return f"{at}  {state:<14}  {'; '.join(facts)}"


@app.command()
def watch(
    *,
    work_order_id: WorkOrderId,
    api_key: ApiKeyOption,
    target: TargetOption = DEFAULT_TARGET,
    timeout: Annotated[
        float,
        typer.Option(
            help="Give up (exit code 1) when the order is not closed, cancelled or archived by "
            "then, in seconds.",
            min=1.0,
            max=7 * 24 * 3600.0,
        ),
    ] = 600.0,
) -> None:
    """Follow a work order step by step until it is closed, cancelled or archived.

    Prints the order's current state, then every later step as it happens (from the oldest
    retained step, without repeating what the current state already covers). A broken stream is
    resumed where it stopped.
    """
    import grpc

    from fixloop.v1 import work_orders_service_pb2

    deadline = time.monotonic() + timeout
    with Api(target, api_key, min(timeout, 30.0)) as api:
        ctx = api.context("watch work orders", _not_found(work_order_id), key_hint=PARTNER_HINT)
        order = api.call(
            api.orders.GetWorkOrder,
            work_orders_service_pb2.GetWorkOrderRequest(work_order_id=work_order_id),
            ctx,
        ).work_order
        zone = site_zone(order.site.timezone)
        state = state_label(order.state)
        say(
            f"{local(order.updated_at.ToDatetime(tzinfo=UTC), zone)}  {state:<14}  "
            f"work order {order.id} ({order.external_id}), step {order.version}"
        )
        if state in TERMINAL_STATES:
            return
        printed, cursor, backoff = order.version, "", 0.5
        summaries = _step_summaries()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                fail(f"work order {work_order_id} is still {state} after {timeout:g}s")
            request = work_orders_service_pb2.WatchWorkOrdersRequest(
                work_order_id=work_order_id, cursor=cursor, from_oldest=not cursor
            )
            stream = api.orders.WatchWorkOrders(request, timeout=remaining, metadata=api.metadata)
            try:
                for answer in stream:
                    cursor, backoff = answer.cursor, 0.5
                    if answer.step.version <= printed:
                        continue
                    printed, state = answer.step.version, state_label(answer.step.state)
                    say(_step_line(answer.step, zone, summaries))
                    if state in TERMINAL_STATES:
                        stream.cancel()
                        return
                why = "the stream ended"
            except grpc.RpcError as error:
                code = error.code()
                if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    fail(f"work order {work_order_id} is still {state} after {timeout:g}s")
                if code != grpc.StatusCode.UNAVAILABLE:
                    message, exit_code = rpc_failure(error, ctx)
                    fail(message, exit_code)
                why = f"UNAVAILABLE: {error.details()}"
            # The stream broke (a restarted service, a lost connection): resume after the last
            # step it delivered, or from the oldest again when none came yet.
            Console(stderr=True, highlight=False).print(
                Text(f"lost the watch ({why}); resuming in {backoff:g}s", style="dim"),
                soft_wrap=True,
            )
            time.sleep(min(backoff, max(0.0, deadline - time.monotonic())))
            backoff = min(backoff * 2, 5.0)


# --------------------------------------------------------------------------- steps


def _take_step(
    *,
    api_key: str,
    target: str,
    timeout: float,
    request_id: str | None,
    method: str,
    action: str,
    work_order_id: str,
    build: Callable[[str], Any],
) -> Any:
    """Send one requester step: its answer, or one line and an exit code."""
    return take_step(
        target=target,
        api_key=api_key,
        timeout=timeout,
        request_id=request_id,
        service="orders",
        method=method,
        action=action,
        not_found=_not_found(work_order_id),
        key_hint=PARTNER_HINT,
        build=build,
    )


@app.command()
def cancel(
    *,
    work_order_id: WorkOrderId,
    reason: Annotated[str, typer.Option(help="Why (required; the contractor sees it).")],
    api_key: ApiKeyOption,
    request_id: RequestIdOption = None,
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Cancel a work order that is not completed yet."""
    from fixloop.v1 import work_orders_service_pb2 as pb

    answer = _take_step(
        api_key=api_key,
        target=target,
        timeout=timeout,
        request_id=request_id,
        method="CancelWorkOrder",
        action="cancel work orders",
        work_order_id=work_order_id,
        build=lambda rid: pb.CancelWorkOrderRequest(
            request_id=rid, work_order_id=work_order_id, reason=reason
        ),
    )
    say(result_line(answer.work_order))


@app.command()
def verify(
    *,
    work_order_id: WorkOrderId,
    api_key: ApiKeyOption,
    note: Annotated[str | None, typer.Option(help="A note for the record.")] = None,
    request_id: RequestIdOption = None,
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Confirm the completed work (the order is closed after that)."""
    from fixloop.v1 import work_orders_service_pb2 as pb

    answer = _take_step(
        api_key=api_key,
        target=target,
        timeout=timeout,
        request_id=request_id,
        method="VerifyCompletion",
        action="verify work",
        work_order_id=work_order_id,
        build=lambda rid: pb.VerifyCompletionRequest(
            request_id=rid, work_order_id=work_order_id, note=note
        ),
    )
    say(result_line(answer.work_order))


@app.command()
def reject(
    *,
    work_order_id: WorkOrderId,
    reason: Annotated[str, typer.Option(help="What is wrong (required; sent to the contractor).")],
    api_key: ApiKeyOption,
    request_id: RequestIdOption = None,
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Reject the completed work: the order is reopened and goes back to its contractor.

    An order closed longer ago than its reopen window stays closed; a follow-up order is
    created for the work instead.
    """
    from fixloop.v1 import work_orders_service_pb2 as pb

    answer = _take_step(
        api_key=api_key,
        target=target,
        timeout=timeout,
        request_id=request_id,
        method="RejectCompletion",
        action="reject work",
        work_order_id=work_order_id,
        build=lambda rid: pb.RejectCompletionRequest(
            request_id=rid, work_order_id=work_order_id, reason=reason
        ),
    )
    if answer.HasField("follow_up") and answer.follow_up.id:
        # Closed longer ago than its reopen window: it stays closed, a new order takes the work.
        follow_up = result_line(answer.follow_up).removeprefix("work order ")
        say(result_line(answer.work_order, f"; follow-up order {follow_up}"))
        return
    say(result_line(answer.work_order))


@app.command()
def comment(
    *,
    work_order_id: WorkOrderId,
    text: Annotated[str, typer.Argument(metavar="TEXT", help="The comment.")],
    api_key: ApiKeyOption,
    request_id: RequestIdOption = None,
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Add a comment to the work order's thread."""
    from fixloop.v1 import work_orders_service_pb2 as pb

    answer = _take_step(
        api_key=api_key,
        target=target,
        timeout=timeout,
        request_id=request_id,
        method="AddComment",
        action="comment on work orders",
        work_order_id=work_order_id,
        build=lambda rid: pb.AddCommentRequest(
            request_id=rid, work_order_id=work_order_id, text=text
        ),
    )
    say(result_line(answer.work_order, f" (comment {answer.comment_id} added)"))


__all__ = ["app"]
