"""``fixloop orders ...``: look at work orders through the partner gRPC API.

The CLI sees exactly what a partner with the same API key sees: its own tenant's orders.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from fixloop_shared.default_ports import DEV_PORTS

if TYPE_CHECKING:
    from fixloop.v1 import work_order_pb2

app = typer.Typer(
    name="orders",
    help="Work orders: look them up through the orders gRPC API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

TARGET_ENV = "FIXLOOP_ORDERS_GRPC_TARGET"
API_KEY_ENV = "FIXLOOP_API_KEY"
DEFAULT_TARGET = f"127.0.0.1:{DEV_PORTS.grpc}"

EXIT_FAILURE = 1
EXIT_USAGE = 2


def _fail(message: str, exit_code: int = EXIT_FAILURE) -> NoReturn:
    Console(stderr=True, highlight=False).print(
        Text(f"error: {message}", style="red"), soft_wrap=True
    )
    raise typer.Exit(exit_code)


def _field_violations(error: object) -> list[str]:
    """``field: description`` for each ``google.rpc.BadRequest`` violation in a failed call."""
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    try:
        status = rpc_status.from_call(error)
    except ValueError:
        return []
    if status is None:
        return []
    violations: list[str] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            violations.extend(
                f"{violation.field}: {violation.description}"
                for violation in bad_request.field_violations
            )
    return violations


def _local(moment: datetime, zone: ZoneInfo | None) -> str:
    """``moment`` in the site's time zone (UTC if unknown), to the second."""
    shown = moment.astimezone(zone or UTC)
    return shown.strftime("%Y-%m-%d %H:%M:%S %Z")


def _site_zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _enum_label(prefix: str, name: str) -> str:
    return name.removeprefix(prefix).lower() if name else "unknown"


@app.callback()
def orders() -> None:
    """Work orders: look them up through the orders gRPC API."""


@app.command()
def show(
    work_order_id: Annotated[str, typer.Argument(metavar="ID", help="Work order id (a UUID).")],
    api_key: Annotated[
        str,
        typer.Option(
            help="Partner API key; shows only orders of the key's tenant.",
            envvar=API_KEY_ENV,
            show_default=False,
        ),
    ],
    target: Annotated[
        str,
        typer.Option(help="host:port of the orders gRPC API.", envvar=TARGET_ENV),
    ] = DEFAULT_TARGET,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for an answer.", min=0.1, max=300.0)
    ] = 10.0,
) -> None:
    """Show a work order and its timeline."""
    if not api_key or not all(" " <= char <= "~" for char in api_key):
        _fail(f"--api-key / {API_KEY_ENV} must be a non-empty printable ASCII string", EXIT_USAGE)

    import grpc

    from fixloop.v1 import work_orders_service_pb2, work_orders_service_pb2_grpc

    request = work_orders_service_pb2.GetWorkOrderRequest(work_order_id=work_order_id)
    try:
        with grpc.insecure_channel(target) as channel:
            stub = work_orders_service_pb2_grpc.WorkOrdersServiceStub(channel)  # type: ignore[no-untyped-call]
            response = stub.GetWorkOrder(
                request, timeout=timeout, metadata=(("x-api-key", api_key),)
            )
    except grpc.RpcError as error:
        code = error.code()
        if code == grpc.StatusCode.NOT_FOUND:
            _fail(f"work order {work_order_id} not found for this API key's tenant")
        if code == grpc.StatusCode.UNAUTHENTICATED:
            _fail("the orders gRPC API rejected the API key (missing or invalid)")
        if code == grpc.StatusCode.PERMISSION_DENIED:
            _fail("this API key may not read work orders")
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            violations = "; ".join(_field_violations(error)) or error.details()
            _fail(f"invalid request: {violations}", EXIT_USAGE)
        if code == grpc.StatusCode.UNAVAILABLE:
            _fail(f"cannot reach the orders gRPC API at {target}")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            _fail(f"the orders gRPC API at {target} did not answer within {timeout:g}s")
        _fail(f"the orders gRPC API answered {code.name}: {error.details()}")

    _print_order(response.work_order)


def _print_order(wo: work_order_pb2.WorkOrder) -> None:
    """Print a ``fixloop.v1.WorkOrder`` as a panel of facts and a table of its timeline."""
    from fixloop.v1 import work_order_pb2

    zone = _site_zone(wo.site.timezone)
    state = _enum_label("WORK_ORDER_STATE_", work_order_pb2.WorkOrderState.Name(wo.state))
    category = _enum_label("CATEGORY_", work_order_pb2.Category.Name(wo.category))
    priority = _enum_label("PRIORITY_", work_order_pb2.Priority.Name(wo.priority))

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
        ("state", state),
        ("priority", priority),
        ("category", category),
        ("source", f"{wo.source_platform} / {wo.external_id}"),
        ("site", f"{site.name} ({site.site_id})"),
        ("address", f"{street}, {address.postal_code} {address.city}, {address.country}"),
        ("time zone", site.timezone),
        ("equipment", f"{equipment.equipment_class} {equipment.equipment_id} {make}".strip()),
        ("requester", f"{requester.name} <{contact}> [{requester.locale}]"),
        ("received", _local(wo.received_at.ToDatetime(tzinfo=UTC), zone)),
        ("updated", _local(wo.updated_at.ToDatetime(tzinfo=UTC), zone)),
    ]
    if wo.required_parts:
        parts = ", ".join(f"{part.quantity} x {part.part_number}" for part in wo.required_parts)
        rows.append(("parts", parts))
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
        timeline.add_row(
            Text(_local(entry.at.ToDatetime(tzinfo=UTC), zone)), Text(entry.kind), what
        )

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


__all__ = ["app"]
