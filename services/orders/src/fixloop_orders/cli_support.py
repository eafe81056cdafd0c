"""What the ``fixloop orders``, ``fixloop jobs`` and ``fixloop demo`` commands share.

* :func:`fail`: one ``error: ...`` line on stderr and an exit code (1, or 2 for usage).
* :func:`rpc_failure`: what a failed gRPC call tells the user, in one line: the status message,
  the ``BadRequest`` field violations, and for a mutation that may or may not have been taken,
  how to retry it with the same request id.
* :class:`Api`: a blocking channel to the orders gRPC API with the caller's key; every call either
  answers or ends the command with :func:`fail`.
* Parsers of option values (times, part lines, checklist items, photos, states), each raising
  ``typer.BadParameter`` so that a bad value is a usage error naming the option.
* Labels of the API's enums and times in a site's time zone.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fixloop_shared.default_ports import DEV_PORTS

if TYPE_CHECKING:
    from fixloop.v1 import (
        contractor_jobs_service_pb2_grpc,
        work_order_pb2,
        work_orders_service_pb2_grpc,
    )

TARGET_ENV = "FIXLOOP_ORDERS_GRPC_TARGET"
API_KEY_ENV = "FIXLOOP_API_KEY"
DEFAULT_TARGET = f"127.0.0.1:{DEV_PORTS.grpc}"

EXIT_FAILURE = 1
EXIT_USAGE = 2

out = Console(highlight=False, soft_wrap=True)


def fail(message: str, exit_code: int = EXIT_FAILURE) -> NoReturn:
    """End the command with one ``error: ...`` line on stderr."""
    Console(stderr=True, highlight=False).print(
        Text(f"error: {message}", style="red"), soft_wrap=True
    )
    raise typer.Exit(exit_code)


def say(line: str, style: str | None = None) -> None:
    """Print one line (never wrapped, no markup: ids and user text are printed as they are)."""
    out.print(Text(line, style=style or ""), soft_wrap=True)


# --------------------------------------------------------------------------- options

ApiKeyOption = Annotated[
    str,
    typer.Option(
        "--api-key",
        help="API key of the caller (a partner or operator key for orders, a contractor's key "
        "for jobs).",
        envvar=API_KEY_ENV,
        show_default=False,
    ),
]
TargetOption = Annotated[
    str, typer.Option("--target", help="host:port of the orders gRPC API.", envvar=TARGET_ENV)
]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", help="Seconds to wait for an answer.", min=0.1, max=300.0)
]
RequestIdOption = Annotated[
    str | None,
    typer.Option(
        "--request-id",
        help="Idempotency key of this step (default: a new UUID). Repeat a call that failed "
        "with the id its error named: the step is taken at most once.",
        show_default=False,
    ),
]


def check_api_key(api_key: str, option: str = f"--api-key / {API_KEY_ENV}") -> str:
    if not api_key or not all(" " <= char <= "~" for char in api_key):
        fail(f"{option} must be a non-empty printable ASCII string", EXIT_USAGE)
    return api_key


def new_request_id(given: str | None) -> str:
    return given if given is not None else str(uuid.uuid4())


# --------------------------------------------------------------------------- gRPC errors


def field_violations(error: object) -> list[str]:
    """``field: description`` for each ``google.rpc.BadRequest`` violation in a failed call."""
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    try:
        status = rpc_status.from_call(error)
    except (ValueError, AttributeError, TypeError):
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


def retry_delay(error: object) -> float | None:
    """The delay of a ``google.rpc.RetryInfo`` in a failed call, if it has one."""
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    try:
        status = rpc_status.from_call(error)
    except (ValueError, AttributeError, TypeError):
        return None
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return float(info.retry_delay.ToNanoseconds()) / 1e9
    return None


_UNREACHABLE = ("failed to connect", "connection refused", "dns resolution failed", "unreachable")


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a failed call was about, for :func:`rpc_failure`'s one line."""

    target: str
    timeout: float
    action: str  # "cancel work orders", for "this API key may not cancel work orders"
    not_found: str  # "work order X not found for this API key's tenant"
    request_id: str | None = None  # set for mutations
    key_hint: str = ""  # "use a partner or operator key"


def rpc_failure(error: Any, ctx: CallContext) -> tuple[str, int]:  # noqa: PLR0911 - one per code
    """The one line and exit code a failed call of the orders gRPC API ends a command with."""
    import grpc

    code = error.code()
    details = (error.details() or "").strip().replace("\n", " ")
    retry = (
        f"; the step may have been taken or not: run the command again with --request-id "
        f"{ctx.request_id} to take it at most once"
        if ctx.request_id
        else ""
    )
    hint = f" ({ctx.key_hint})" if ctx.key_hint else ""
    if code == grpc.StatusCode.NOT_FOUND:
        return ctx.not_found, EXIT_FAILURE
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return "the orders gRPC API rejected the API key (missing or invalid)", EXIT_FAILURE
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return f"this API key may not {ctx.action}: {details}{hint}", EXIT_FAILURE
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return f"invalid request: {'; '.join(field_violations(error)) or details}", EXIT_USAGE
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return f"refused: {details}", EXIT_FAILURE
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        delay = retry_delay(error)
        after = f"; retry in {delay:.1f}s" if delay is not None else ""
        return f"too many calls: {details}{after}", EXIT_FAILURE
    if code == grpc.StatusCode.UNAVAILABLE:
        if any(marker in details.lower() for marker in _UNREACHABLE):  # never sent: no retry hint
            return f"cannot reach the orders gRPC API at {ctx.target}", EXIT_FAILURE
        return f"the orders gRPC API at {ctx.target} is unavailable: {details}{retry}", EXIT_FAILURE
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return (
            f"the orders gRPC API at {ctx.target} did not answer within {ctx.timeout:g}s{retry}",
            EXIT_FAILURE,
        )
    return f"the orders gRPC API answered {code.name}: {details}{retry}", EXIT_FAILURE


class Api:
    """A blocking channel to the orders gRPC API, calling as the owner of ``api_key``.

    ``with Api(...) as api: api.call(api.orders.CancelWorkOrder, request, ctx)`` answers or ends
    the command with one line (:func:`rpc_failure`).
    """

    def __init__(self, target: str, api_key: str, timeout: float) -> None:
        import grpc

        self.target = target
        self.timeout = timeout
        self.metadata = (("x-api-key", check_api_key(api_key)),)
        self._channel = grpc.insecure_channel(target)

    def __enter__(self) -> Api:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._channel.close()

    @property
    def orders(self) -> work_orders_service_pb2_grpc.WorkOrdersServiceStub:
        from fixloop.v1 import work_orders_service_pb2_grpc

        return work_orders_service_pb2_grpc.WorkOrdersServiceStub(self._channel)  # type: ignore[no-untyped-call]

    @property
    def jobs(self) -> contractor_jobs_service_pb2_grpc.ContractorJobsServiceStub:
        from fixloop.v1 import contractor_jobs_service_pb2_grpc

        return contractor_jobs_service_pb2_grpc.ContractorJobsServiceStub(self._channel)  # type: ignore[no-untyped-call]

    def context(
        self, action: str, not_found: str, *, request_id: str | None = None, key_hint: str = ""
    ) -> CallContext:
        return CallContext(
            target=self.target,
            timeout=self.timeout,
            action=action,
            not_found=not_found,
            request_id=request_id,
            key_hint=key_hint,
        )

    def call(self, method: Any, request: Any, ctx: CallContext) -> Any:
        import grpc

        try:
            return method(request, timeout=self.timeout, metadata=self.metadata)
        except grpc.RpcError as error:
            message, code = rpc_failure(error, ctx)
            fail(message, code)


def take_step(
    *,
    target: str,
    api_key: str,
    timeout: float,
    request_id: str | None,
    service: Literal["orders", "jobs"],
    method: str,
    action: str,
    not_found: str,
    key_hint: str,
    build: Callable[[str], Any],
) -> Any:
    """Send one step (a mutation) with its request id (``--request-id``, or a new UUID) to
    ``WorkOrdersService`` (``orders``) or ``ContractorJobsService`` (``jobs``): the answer, or
    one line and an exit code that names the request id when the step may have been taken."""
    rid = new_request_id(request_id)
    with Api(target, api_key, timeout) as api:
        stub = api.orders if service == "orders" else api.jobs
        ctx = api.context(action, not_found, request_id=rid, key_hint=key_hint)
        return api.call(getattr(stub, method), build(rid), ctx)


# --------------------------------------------------------------------------- option values

_DURATION = re.compile(r"(\d{1,6})([smhdw])")
_DURATION_TEXT = re.compile(r"(?:\d{1,6}[smhdw])+")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
TIME_HELP = "RFC 3339 with a zone (2026-03-02T09:00:00+01:00), or relative: +2h, +30m, +1d2h"


def parse_time(text: str, *, past: bool = False, now: datetime | None = None) -> datetime:
    """An RFC 3339 time with a zone, ``now``, or a time relative to now (``+2h``, ``-30m``,
    ``1d2h``; without a sign it lies ahead, or behind when ``past``)."""
    raw = text.strip()
    moment = now if now is not None else datetime.now(UTC)
    if raw.lower() == "now":
        return moment
    sign, body = (raw[0], raw[1:]) if raw[:1] in {"+", "-"} else ("", raw)
    if _DURATION_TEXT.fullmatch(body):
        seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION.findall(body))
        delta = timedelta(seconds=seconds)
        backwards = sign == "-" or (not sign and past)
        return moment - delta if backwards else moment + delta
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        msg = f"{text!r} is not a time: use {TIME_HELP}"
        raise typer.BadParameter(msg) from None
    if parsed.tzinfo is None:
        msg = f"{text!r} has no zone: use {TIME_HELP}"
        raise typer.BadParameter(msg)
    return parsed.astimezone(UTC)


def parse_future_time(text: str) -> datetime:
    return parse_time(text)


def parse_past_time(text: str) -> datetime:
    return parse_time(text, past=True)


@dataclass(frozen=True, slots=True)
class PartQuantity:
    part_number: str
    quantity: int


_PART_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def parse_part(text: str) -> PartQuantity:
    """``PN:QTY``, e.g. ``FLT-HEPA-24:2``."""
    number, colon, quantity = text.strip().rpartition(":")
    if not colon or not _PART_NUMBER.fullmatch(number) or not quantity.isdigit():
        msg = f"{text!r}: expected PART_NUMBER:QUANTITY, e.g. FLT-HEPA-24:2"
        raise typer.BadParameter(msg)
    if not 1 <= int(quantity) <= 10_000:
        msg = f"{text!r}: the quantity must be 1 to 10000"
        raise typer.BadParameter(msg)
    return PartQuantity(number, int(quantity))


CHECK_OUTCOMES = {"passed": 1, "failed": 2, "n/a": 3, "na": 3}  # fixloop.v1.ChecklistOutcome


@dataclass(frozen=True, slots=True)
class Check:
    item: str
    outcome: int  # fixloop.v1.ChecklistOutcome


def parse_check(text: str) -> Check:
    """``item=passed|failed|n/a``, e.g. ``Airflow measured=passed``."""
    item, equals, outcome = text.rpartition("=")
    if not equals or not item.strip() or outcome.strip().lower() not in CHECK_OUTCOMES:
        msg = f"{text!r}: expected ITEM=passed|failed|n/a, e.g. 'Airflow measured=passed'"
        raise typer.BadParameter(msg)
    return Check(item.strip(), CHECK_OUTCOMES[outcome.strip().lower()])


@dataclass(frozen=True, slots=True)
class PhotoRef:
    uri: str
    content_type: str
    size_bytes: int
    sha256: str


def parse_photo(text: str) -> PhotoRef:
    """``URI,CONTENT_TYPE,SIZE,SHA256`` (the URI may itself contain commas)."""
    pieces = text.rsplit(",", 3)
    example = "https://files.example.com/p/1.jpg,image/jpeg,245760,<64 hex digits>"
    if len(pieces) != 4 or not all(piece.strip() for piece in pieces):
        msg = f"{text!r}: expected URI,CONTENT_TYPE,SIZE,SHA256, e.g. {example}"
        raise typer.BadParameter(msg)
    uri, content_type, size, digest = (piece.strip() for piece in pieces)
    if not size.isdigit():
        msg = f"{text!r}: the size must be a number of bytes, e.g. {example}"
        raise typer.BadParameter(msg)
    return PhotoRef(uri, content_type, int(size), digest.lower())


# --------------------------------------------------------------------------- enums and times

STATE_PREFIX = "WORK_ORDER_STATE_"
_RETIRED_STATES = {  # deprecated numbers, never sent any more: read as their successors
    "DISPATCH_REQUESTED": "dispatching",
    "STARTED": "on_site",
    "COMPLETED": "work_completed",
}
TERMINAL_STATES = frozenset({"closed", "cancelled", "archived"})


def state_label(number: int) -> str:
    from fixloop.v1 import work_order_pb2

    try:
        name = work_order_pb2.WorkOrderState.Name(number).removeprefix(STATE_PREFIX)
    except ValueError:
        return "unknown"
    return _RETIRED_STATES.get(name, name.lower())


LIFECYCLE_ORDER = (
    "received",
    "dispatching",
    "assigned",
    "scheduled",
    "en_route",
    "on_site",
    "awaiting_parts",
    "work_completed",
    "verified",
    "closed",
    "cancelled",
    "archived",
)


def state_labels() -> list[str]:
    """The current states' labels, in the order of the lifecycle (new ones last)."""
    from fixloop.v1 import work_order_pb2

    names = work_order_pb2.WorkOrderState.keys()
    labels = [
        name.removeprefix(STATE_PREFIX).lower()
        for name in names
        if name != f"{STATE_PREFIX}UNSPECIFIED"
        and name.removeprefix(STATE_PREFIX) not in _RETIRED_STATES
    ]
    rank = {label: i for i, label in enumerate(LIFECYCLE_ORDER)}
    return sorted(labels, key=lambda label: rank.get(label, len(rank)))


def parse_state(text: str) -> int:
    """A state label (``en_route`` or ``en-route``) to its ``fixloop.v1.WorkOrderState`` number."""
    from fixloop.v1 import work_order_pb2

    label = text.strip().lower().replace("-", "_")
    if label not in state_labels():
        msg = f"{text!r} is not a work order state; choose from {', '.join(state_labels())}"
        raise typer.BadParameter(msg)
    return int(work_order_pb2.WorkOrderState.Value(f"{STATE_PREFIX}{label.upper()}"))


def enum_label(prefix: str, name: str) -> str:
    return name.removeprefix(prefix).lower() if name else "unknown"


def priority_label(number: int) -> str:
    from fixloop.v1 import work_order_pb2

    try:
        return enum_label("PRIORITY_", work_order_pb2.Priority.Name(number))
    except ValueError:
        return "unknown"


def site_zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def local(moment: datetime, zone: ZoneInfo | None) -> str:
    """``moment`` in the site's time zone (UTC if unknown), to the second."""
    shown = moment.astimezone(zone or UTC)
    return shown.strftime("%Y-%m-%d %H:%M:%S %Z")


def at_site(stamp: Any, owner: Any, *, short: bool = False) -> str:
    """A ``Timestamp`` of a work order or offer in its site's time zone ("" when unset);
    ``short``: to the minute, without the year (``26 Nov 12:16 CET``), for tables."""
    if stamp.seconds == 0 and stamp.nanos == 0:
        return ""
    moment = stamp.ToDatetime(tzinfo=UTC)
    zone = site_zone(owner.site.timezone)
    if short:
        return str(moment.astimezone(zone or UTC).strftime("%d %b %H:%M %Z"))
    return local(moment, zone)


def print_rows(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print a list as a table: ``headers[0]`` is the id column (never cut short). A terminal
    too narrow for the table gets one block per row instead (the id, then ``header: value``
    pairs); output that is not a terminal gets whole lines."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=max(console.width, 250))
    grid = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    grid.add_column(headers[0], no_wrap=True)
    for header in headers[1:]:
        grid.add_column(header, overflow="fold")
    for row in rows:
        grid.add_row(*(Text(value) for value in row))
    natural = [max(len(value) for value in column) for column in zip(headers, *rows, strict=True)]
    if sum(natural) + 3 * len(natural) <= console.width:  # each cell padded, one space apart
        console.print(grid)
        return
    console.print(Text(title, style="italic"), soft_wrap=True)
    for row in rows:
        console.print(Text(row[0], style="bold"), soft_wrap=True)
        pairs = [
            f"{header}: {value}"
            for header, value in zip(headers[1:], row[1:], strict=True)
            if value
        ]
        console.print(Text("  " + "; ".join(pairs)))


def timestamp(moment: datetime) -> Any:
    from google.protobuf import timestamp_pb2

    value = timestamp_pb2.Timestamp()
    value.FromDatetime(moment.astimezone(UTC))
    return value


def result_line(order: work_order_pb2.WorkOrder, extra: str = "") -> str:
    """One line: the order and the state it is in now."""
    external = f" ({order.external_id})" if order.external_id else ""
    return f"work order {order.id}{external}: {state_label(order.state)}{extra}"


__all__ = [
    "API_KEY_ENV",
    "DEFAULT_TARGET",
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "TARGET_ENV",
    "TERMINAL_STATES",
    "TIME_HELP",
    "Api",
    "ApiKeyOption",
    "CallContext",
    "Check",
    "PartQuantity",
    "PhotoRef",
    "RequestIdOption",
    "TargetOption",
    "TimeoutOption",
    "at_site",
    "check_api_key",
    "enum_label",
    "fail",
    "field_violations",
    "local",
    "new_request_id",
    "parse_check",
    "parse_future_time",
    "parse_part",
    "parse_past_time",
    "parse_photo",
    "parse_state",
    "parse_time",
    "print_rows",
    "priority_label",
    "result_line",
    "retry_delay",
    "rpc_failure",
    "say",
    "site_zone",
    "state_label",
    "state_labels",
    "take_step",
    "timestamp",
]
