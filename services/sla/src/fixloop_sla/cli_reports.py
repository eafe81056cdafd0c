"""``fixloop sla at-risk`` and ``fixloop sla report``: the SLA desk's views of the clocks.

- ``at-risk``: open clock cycles that need attention now (breached, predicted late, warned, or
  due within ``--within``), the least time left first.
- ``report``: compliance per clock (and contractor, equipment class or tenant) of the cycles
  closed in a period, with the cycles breached and still open.

Both read the sla service's own store (``FIXLOOP_SLA_MONGODB_URI`` and ``FIXLOOP_SLA_DATABASE``,
defaults for the embedded stack); every tenant's clocks unless ``--tenant`` says one. Times are
shown in UTC. A bad argument ends the command with one line on stderr and exit code 2; a store
that cannot be reached with one line and exit code 1.

:func:`register` adds the commands to a typer app (the ``fixloop sla`` group).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from fixloop_sla.app.reporting import SlaReports
    from fixloop_sla.domain.report import AtRiskRow, ReportGroup, ReportRow
    from fixloop_sla.settings import SlaSettings

T = TypeVar("T")

EXIT_FAILURE = 1
EXIT_USAGE = 2
STORE_TIMEOUT_MS = 3000
"""How long the store may take to answer before the command gives up."""
COMMAND_TIMEOUT_SECONDS = 30.0
DEFAULT_WITHIN = "2h"
DEFAULT_LIMIT = 50

_SPAN = re.compile(r"(?:(\d{1,4})d)?(?:(\d{1,6})h)?(?:(\d{1,8})m)?(?:(\d{1,9})s)?")
_GROUPS = {
    "none": "none",
    "contractor": "contractor",
    "equipment-class": "equipment_class",
    "equipment_class": "equipment_class",
    "tenant": "tenant",
    "clock": "clock",
}


def fail(message: str, exit_code: int = EXIT_FAILURE) -> NoReturn:
    """End the command with one ``error: ...`` line on stderr."""
    Console(stderr=True, highlight=False, width=10_000).print(
        Text(f"error: {message}", style="red"), soft_wrap=True
    )
    raise typer.Exit(exit_code)


def _shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


# --------------------------------------------------------------------------- arguments


def parse_span(value: str, option: str) -> timedelta:
    """``2h``, ``30m``, ``1d12h``, ``90s`` (units d, h, m, s, largest first)."""
    match = _SPAN.fullmatch(value.strip())
    if not value.strip() or match is None:
        fail(f"{option} {_shown(value)} is not a time span such as 2h, 30m or 1d12h", EXIT_USAGE)
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def parse_moment(value: str, option: str) -> datetime:
    """A date (its midnight, UTC) or a date and time (UTC unless it names an offset)."""
    text = value.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=UTC)
        moment = datetime.fromisoformat(text.removesuffix("Z").removesuffix("z"))
    except ValueError:
        fail(
            f"{option} {_shown(value)} is not a date (2025-01-31) or date and time "
            "(2025-01-31T08:00Z)",
            EXIT_USAGE,
        )
    if moment.tzinfo is None or text[-1:] in {"Z", "z"}:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def check_tenant(tenant: str | None) -> str | None:
    from fixloop_sla.app.reporting import TENANT_PATTERN

    if tenant is not None and not TENANT_PATTERN.fullmatch(tenant):
        fail(f"--tenant {_shown(tenant)} is not a tenant id", EXIT_USAGE)
    return tenant


def parse_limit(value: str) -> int:
    from fixloop_sla.app.reporting import MAX_AT_RISK

    if not value.strip().isdigit() or not 1 <= int(value) <= MAX_AT_RISK:
        fail(f"--limit {_shown(value)} is not a number from 1 to {MAX_AT_RISK}", EXIT_USAGE)
    return int(value)


def parse_group(value: str) -> ReportGroup:
    from fixloop_sla.domain.report import ReportGroup

    group = _GROUPS.get(value.strip().lower())
    if group is None:
        fail(
            f"--by {_shown(value)} is not one of contractor, equipment-class, tenant, clock",
            EXIT_USAGE,
        )
    return ReportGroup(group)


# --------------------------------------------------------------------------- the store


def service_settings() -> SlaSettings:
    from pydantic import ValidationError

    from fixloop_sla.settings import SlaSettings

    try:
        return SlaSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors(include_url=False, include_input=False)
        )
        fail(f"invalid FIXLOOP_SLA_* settings: {problems}", EXIT_USAGE)


def with_reports(work: Callable[[SlaReports], Awaitable[T]]) -> T:
    """Run ``work`` against the sla store's records; a store that cannot be reached (within a
    few seconds) ends the command with one line and exit code 1."""
    from pymongo.errors import PyMongoError

    from fixloop_shared.errors import InvalidInput
    from fixloop_shared.store import make_client
    from fixloop_sla.app.reporting import SlaReports

    settings = service_settings()

    async def run() -> T:
        client = make_client(
            settings.mongodb_uri, app_name="fixloop-sla-cli", timeout_ms=STORE_TIMEOUT_MS
        )
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT_SECONDS):
                return await work(SlaReports(client[settings.database]))
        finally:
            await client.close()

    try:
        return asyncio.run(run())
    except InvalidInput as exc:
        fail(exc.told, EXIT_USAGE)
    except TimeoutError:
        fail(f"the sla store did not answer within {COMMAND_TIMEOUT_SECONDS:g} s")
    except PyMongoError as exc:
        detail = str(exc).split(" (configured timeouts")[0].splitlines()[0][:200]
        fail(
            "the sla store (FIXLOOP_SLA_MONGODB_URI, database "
            f"{settings.database!r}) failed: {type(exc).__name__}: {detail}"
        )


# --------------------------------------------------------------------------- showing


def utc_text(moment: datetime | None) -> str:
    """``2025-01-31T08:00:00Z``; empty for None."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def span_text(span: timedelta | None) -> str:
    """``1d 2h``, ``3h 05m``, ``12m``, ``-45m`` (overdue); empty for None."""
    if span is None:
        return ""
    sign = "-" if span < timedelta(0) else ""
    minutes = int(abs(span).total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{sign}{days}d {hours}h"
    return f"{sign}{hours}h {minutes:02d}m" if hours else f"{sign}{minutes}m"


def _seconds(span: timedelta | None) -> float | None:
    return None if span is None else span.total_seconds()


def at_risk_json(row: AtRiskRow) -> dict[str, Any]:
    cycle = row.cycle
    return {
        "work_order_id": cycle.work_order_id,
        "tenant": cycle.tenant,
        "clock": cycle.clock,
        "cycle": cycle.cycle,
        "state": cycle.state.value,
        "reason": row.reason.value,
        "started_at": utc_text(cycle.started_at),
        "deadline": utc_text(cycle.deadline) or None,
        "warn_at": utc_text(cycle.warn_at) or None,
        "breached_at": utc_text(cycle.breached_at) or None,
        "predicted_at": utc_text(cycle.predicted_at) or None,
        "basis": cycle.basis,
        "time_left_seconds": _seconds(row.time_left),
        "predicted_lateness_seconds": _seconds(row.predicted_lateness),
        "contractor_id": cycle.profile.contractor_id,
        "priority": cycle.profile.priority,
        "equipment_class": cycle.profile.equipment_class,
    }


def report_json(row: ReportRow) -> dict[str, Any]:
    return {
        "group": row.group,
        "clock": row.clock,
        "met": row.met,
        "missed": row.missed,
        "cancelled": row.cancelled,
        "running_breached": row.running_breached,
        "ever_breached": row.ever_breached,
        "compliance_percent": row.compliance_percent,
    }


def _reason_text(row: AtRiskRow) -> Text:
    label = row.reason.value.replace("_", " ")
    if row.predicted_lateness is not None:
        label += f" (predicted {span_text(row.predicted_lateness)} late)"
    style = {"breached": "bold red", "predicted_late": "red", "warned": "yellow"}
    return Text(label, style=style.get(row.reason.value, ""))


def at_risk_table(rows: list[AtRiskRow], now: datetime) -> Table:
    table = Table(
        title=f"{len(rows)} clocks at risk at {utc_text(now)}", title_justify="left", expand=False
    )
    for column in ("time left", "deadline", "work order", "tenant", "clock", "cycle", "state"):
        table.add_column(column, justify="right" if column in {"time left", "cycle"} else "left")
    for column in ("contractor", "priority", "why"):
        table.add_column(column)
    for row in rows:
        cycle = row.cycle
        table.add_row(
            span_text(row.time_left),
            utc_text(cycle.deadline),
            cycle.work_order_id,
            cycle.tenant,
            cycle.clock,
            str(cycle.cycle),
            cycle.state.value,
            cycle.profile.contractor_id or "-",
            cycle.profile.priority or "-",
            _reason_text(row),
        )
    return table


def report_table(
    rows: list[ReportRow], start: datetime, end: datetime, group: ReportGroup
) -> Table:
    table = Table(
        title=f"SLA compliance {utc_text(start)} to {utc_text(end)}", title_justify="left"
    )
    grouped = group.value not in {"none", "clock"}
    if grouped:
        table.add_column(group.value.replace("_", " "))
    table.add_column("clock")
    for column in ("met", "missed", "cancelled", "breached open", "ever breached", "compliance"):
        table.add_column(column, justify="right")
    for row in rows:
        percent = row.compliance_percent
        cells = [
            row.clock,
            str(row.met),
            str(row.missed),
            str(row.cancelled),
            str(row.running_breached),
            str(row.ever_breached),
            "-" if percent is None else f"{percent:.1f}%",
        ]
        table.add_row(*([row.group or "(none)"] if grouped else []), *cells)
    return table


# --------------------------------------------------------------------------- the commands


def at_risk_command(
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Only this tenant's clocks.")
    ] = None,
    within: Annotated[
        str,
        typer.Option("--within", help="Clocks due within this time count too (2h, 30m, 1d)."),
    ] = DEFAULT_WITHIN,
    limit: Annotated[
        str, typer.Option("--limit", help="At most this many clocks (1 to 1000).")
    ] = str(DEFAULT_LIMIT),
    output_json: Annotated[
        bool, typer.Option("--json", help="Print the clocks as JSON lines.")
    ] = False,
) -> None:
    """Open clock cycles that need attention now: breached, predicted late, warned, or due
    within --within; the least time left first."""
    tenant = check_tenant(tenant)
    span = parse_span(within, "--within")
    count = parse_limit(limit)
    now = datetime.now(UTC)
    rows = with_reports(
        lambda reports: reports.at_risk(tenant=tenant, now=now, within=span, limit=count)
    )
    if output_json:
        for row in rows:
            typer.echo(json.dumps(at_risk_json(row)))
        return
    console = Console(highlight=False)
    if not rows:
        console.print(f"No clocks at risk at {utc_text(now)}.")
        return
    console.print(at_risk_table(rows, now))


def report_command(
    start: Annotated[
        str | None,
        typer.Option("--from", help="Start of the period: a date (midnight UTC) or date and time."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", help="End of the period, not included (default: now)."),
    ] = None,
    by: Annotated[
        str,
        typer.Option("--by", help="Group by contractor, equipment-class, tenant or clock."),
    ] = "none",
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Only this tenant's clocks.")
    ] = None,
    output_json: Annotated[
        bool, typer.Option("--json", help="Print the rows as JSON lines.")
    ] = False,
) -> None:
    """SLA compliance of the clock cycles closed in a period (and those breached and still
    open): met, missed, cancelled, ever breached, and met / (met + missed + breached open)."""
    from fixloop_sla.app.reporting import MAX_REPORT_PERIOD

    if start is None:
        fail("--from is required (a date such as 2025-01-01, or a date and time)", EXIT_USAGE)
    now = datetime.now(UTC)
    period_start = parse_moment(start, "--from")
    period_end = now if end is None else parse_moment(end, "--to")
    if period_end <= period_start:
        fail(
            f"--to {utc_text(period_end)} is not after --from {utc_text(period_start)}", EXIT_USAGE
        )
    if period_end - period_start > MAX_REPORT_PERIOD:
        fail(f"the period may cover at most {MAX_REPORT_PERIOD.days} days", EXIT_USAGE)
    group = parse_group(by)
    tenant = check_tenant(tenant)
    rows = with_reports(
        lambda reports: reports.report(
            tenant=tenant, start=period_start, end=period_end, by=group, now=now
        )
    )
    if output_json:
        for row in rows:
            typer.echo(json.dumps(report_json(row)))
        return
    console = Console(highlight=False)
    if not rows:
        console.print(
            f"No clock cycles closed from {utc_text(period_start)} to {utc_text(period_end)}, "
            "and none breached open."
        )
        return
    console.print(report_table(rows, period_start, period_end, group))


def register(app: typer.Typer) -> None:
    """Add ``at-risk`` and ``report`` to ``app``."""
    app.command("at-risk")(at_risk_command)
    app.command("report")(report_command)


__all__ = ["register"]
