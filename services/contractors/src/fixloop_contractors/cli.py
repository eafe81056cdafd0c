"""``fixloop contractors ...``: load the contractor registry from a file and look at it.

The CLI writes to the contractors service's own store (``FIXLOOP_CONTRACTORS_MONGODB_URI`` and
``FIXLOOP_CONTRACTORS_DATABASE``, defaults for the embedded stack) through the service's use cases.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from fixloop_contractors.app.performance import StoredScorecard
    from fixloop_contractors.app.registry import CredentialAlert, ImportReport
    from fixloop_contractors.domain.dispatch import Candidate
    from fixloop_contractors.domain.model import Contractor
    from fixloop_contractors.settings import ContractorsSettings
    from fixloop_shared.store import Store

T = TypeVar("T")

app = typer.Typer(
    name="contractors",
    help=(
        "Contractors: import the registry from a file, list contractors and their load, show "
        "one with its credentials and scorecard."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

EXIT_FAILURE = 1
EXIT_USAGE = 2


def fail(message: str, exit_code: int = EXIT_FAILURE) -> NoReturn:
    Console(stderr=True, highlight=False).print(
        Text(f"error: {message}", style="red"), soft_wrap=True
    )
    raise typer.Exit(exit_code)


def _today() -> date:
    return datetime.now(UTC).date()


def service_settings() -> ContractorsSettings:
    from pydantic import ValidationError

    from fixloop_contractors.settings import ContractorsSettings

    try:
        return ContractorsSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors(include_url=False, include_input=False)
        )
        fail(f"invalid FIXLOOP_CONTRACTORS_* settings: {problems}", EXIT_USAGE)


def check_value(type_name: str, value: str | None, option: str, what: str) -> None:
    """Exit with one line (usage error) unless ``value`` (if given) is a valid ``type_name`` of
    :mod:`fixloop_shared.contracts.types`."""
    if value is None:
        return
    from pydantic import TypeAdapter, ValidationError

    from fixloop_shared.contracts import types

    try:
        TypeAdapter(getattr(types, type_name)).validate_python(value)
    except ValidationError:
        shown = repr(value if len(value) <= 60 else value[:57] + "...")
        label = f"{option} {shown}" if option.startswith("--") else shown
        fail(f"{label} is not {what}", EXIT_USAGE)


def with_store(settings: ContractorsSettings, work: Callable[[Store], Awaitable[T]]) -> T:
    """Run ``work`` against the contractors store; a store that cannot be reached is an error."""
    from pymongo.errors import PyMongoError

    from fixloop_contractors.adapters.mongo import ensure_indexes
    from fixloop_contractors.settings import SERVICE
    from fixloop_shared.store import Store, make_client

    async def run() -> T:
        client = make_client(settings.mongodb_uri, app_name="fixloop-contractors-cli")
        try:
            store = Store(client, settings.database, service=SERVICE)
            await ensure_indexes(store)
            return await work(store)
        finally:
            await client.close()

    try:
        return asyncio.run(run())
    except PyMongoError as exc:
        detail = str(exc).split(" (configured timeouts")[0][:200]
        fail(
            "the contractors store (FIXLOOP_CONTRACTORS_MONGODB_URI, database "
            f"{settings.database!r}) failed: {type(exc).__name__}: {detail}"
        )


def _read(path: Path) -> list[Contractor]:
    from fixloop_contractors.adapters.contractor_file import (
        MAX_PROBLEMS_SHOWN,
        ContractorFileError,
        read_contractor_file,
    )

    try:
        return read_contractor_file(path)
    except ContractorFileError as exc:
        for problem in exc.problems[:MAX_PROBLEMS_SHOWN]:
            typer.echo(problem, err=True)
        hidden = len(exc.problems) - MAX_PROBLEMS_SHOWN
        if hidden > 0:
            typer.echo(f"... and {hidden} more problems", err=True)
        count = len(exc.problems)
        fail(f"{path}: {count} problem{'s' if count != 1 else ''}; nothing was imported")


def _alert_table(title: str, alerts: Sequence[CredentialAlert], *, style: str) -> Table:
    table = Table(title=title, title_justify="left", title_style=style)
    table.add_column("contractor")
    table.add_column("credential")
    table.add_column("number")
    table.add_column("expires on")
    table.add_column("days left", justify="right")
    for alert in alerts:
        credential = alert.credential
        table.add_row(
            alert.contractor_id,
            credential.name or credential.kind.label,
            credential.number,
            credential.expires_on.isoformat(),
            str(alert.days_left),
        )
    return table


def _print_alerts(console: Console, report: ImportReport) -> None:
    if report.expiring:
        console.print(
            _alert_table(
                f"Credentials expiring within {report.warning_days} days "
                f"(as of {report.as_of.isoformat()})",
                report.expiring,
                style="yellow",
            )
        )
    else:
        console.print(f"No credential expires within {report.warning_days} days.")
    if report.expired:
        console.print(
            _alert_table(
                "Expired credentials: these contractors get no offers until renewed",
                report.expired,
                style="red",
            )
        )


@app.callback()
def contractors() -> None:
    """Contractors: import the registry from a file, list contractors and their load."""


@app.command("import")
def import_file(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="Contractor file, YAML or JSON (see examples/contractors.yaml).",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    as_of: Annotated[
        datetime | None,
        typer.Option(
            "--as-of",
            formats=["%Y-%m-%d"],
            help="Day to check credential expiry against (default: today, UTC).",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only validate the file; write nothing.")
    ] = False,
) -> None:
    """Import (upsert) the contractors of FILE, keyed by contractor_id.

    The whole file is validated first; if anything is wrong, every problem is printed with its
    location and nothing is imported. Re-importing updates profiles and never duplicates them.
    """
    from fixloop_contractors.adapters.credential_alerts import MongoCredentialAlerts
    from fixloop_contractors.adapters.mongo import MongoContractorRegistry
    from fixloop_contractors.app.ports import UpsertCounts
    from fixloop_contractors.app.registry import (
        EXPIRY_WARNING_DAYS,
        ImportReport,
        credential_alerts,
        import_contractors,
    )

    day = as_of.date() if as_of is not None else _today()
    contractors = _read(file)
    console = Console(highlight=False)

    if dry_run:
        expiring, expired = credential_alerts(contractors, as_of=day)
        console.print(f"{file} is valid: {len(contractors)} contractors (nothing written).")
        checked = ImportReport(
            counts=UpsertCounts(created=0, updated=0, unchanged=0),
            as_of=day,
            warning_days=EXPIRY_WARNING_DAYS,
            expiring=expiring,
            expired=expired,
        )
        _print_alerts(console, checked)
        return

    settings = service_settings()

    async def work(store: Store) -> ImportReport:
        alerts = MongoCredentialAlerts(store, morning=settings.credential_alert_morning)
        return await import_contractors(
            MongoContractorRegistry(store), contractors, as_of=day, alerts=alerts
        )

    report = with_store(settings, work)
    counts = report.counts
    summary = Table(title=f"Imported {counts.total} contractors from {file}", title_justify="left")
    summary.add_column("imported", justify="right")
    summary.add_column("updated", justify="right")
    summary.add_column("unchanged", justify="right")
    summary.add_column(f"expiring ≤{report.warning_days}d", justify="right")
    summary.add_column("expired", justify="right")
    summary.add_row(
        str(counts.created),
        str(counts.updated),
        str(counts.unchanged),
        str(len(report.expiring)),
        str(len(report.expired)),
    )
    console.print(summary)
    _print_alerts(console, report)


def _next_expiry(candidate: Candidate, day: date) -> Text:
    credentials = candidate.contractor.credentials
    if not credentials:
        return Text("no credentials", style="yellow")
    first = min(credentials, key=lambda c: c.expires_on)
    days = first.days_left(day)
    text = f"{first.expires_on.isoformat()} {first.kind.label}"
    if days < 0:
        return Text(f"{text} (expired)", style="red")
    if days <= 30:
        return Text(f"{text} ({days}d)", style="yellow")
    return Text(text)


@app.command("list")
def list_contractors(
    tenant: Annotated[
        str | None, typer.Option(help="Only contractors serving this tenant.")
    ] = None,
) -> None:
    """List contractors with their skills, regions, load (open offers) and next expiry."""
    from fixloop_contractors.adapters.mongo import MongoContractorRegistry

    check_value("TenantId", tenant, "--tenant", "a tenant id")

    async def work(store: Store) -> list[Candidate]:
        return await MongoContractorRegistry(store).list_contractors(tenant=tenant)

    candidates = with_store(service_settings(), work)
    console = Console(highlight=False)
    if not candidates:
        console.print("No contractors." if tenant is None else f"No contractors serve {tenant}.")
        return
    day = _today()
    table = Table(title=f"{len(candidates)} contractors", title_justify="left")
    for column in ("contractor", "name", "tenants", "skills", "regions", "open offers"):
        table.add_column(column, justify="right" if column == "open offers" else "left")
    table.add_column("next credential expiry")
    for candidate in candidates:
        contractor = candidate.contractor
        table.add_row(
            contractor.contractor_id,
            contractor.name,
            ", ".join(sorted(contractor.tenants)),
            ", ".join(sorted(contractor.skills)),
            "; ".join(r.describe() for r in contractor.regions),
            str(candidate.open_offers),
            _next_expiry(candidate, day),
        )
    console.print(table)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = round(seconds)
    minutes = whole // 60
    if minutes < 60:
        return f"{minutes}m {whole % 60:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    return f"{hours // 24}d {hours % 24}h"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _profile_table(candidate: Candidate) -> Table:
    contractor = candidate.contractor
    table = Table(
        title=f"Contractor {contractor.contractor_id}", title_justify="left", show_header=False
    )
    table.add_column("field", style="bold")
    table.add_column("value")
    levels = dict(contractor.skill_levels)
    capacity = contractor.max_concurrent_jobs
    base = contractor.base_location
    rows = (
        ("name", contractor.name),
        ("email", contractor.email),
        ("phone", contractor.phone or "-"),
        ("time zone", contractor.timezone),
        ("tenants", ", ".join(sorted(contractor.tenants))),
        (
            "skills",
            ", ".join(
                f"{skill} (level {levels[skill]})" if skill in levels else skill
                for skill in sorted(contractor.skills)
            ),
        ),
        ("regions", "; ".join(r.describe() for r in contractor.regions)),
        ("base", "-" if base is None else f"{base.latitude:.4f}, {base.longitude:.4f}"),
        ("on call", "by its rota" if contractor.rota is not None else "around the clock"),
        (
            "load",
            f"open jobs {candidate.open_jobs}, open offers {candidate.open_offers}"
            + ("" if capacity is None else f" (capacity {capacity})"),
        ),
    )
    for name, value in rows:
        table.add_row(name, value)
    return table


def _credentials_table(candidate: Candidate, day: date) -> Table:
    table = Table(title="Credentials", title_justify="left")
    for column in ("credential", "number", "expires on"):
        table.add_column(column)
    table.add_column("status")
    for credential in sorted(candidate.contractor.credentials, key=lambda c: c.expires_on):
        days = credential.days_left(day)
        if days < 0:
            status = Text(f"expired {-days}d ago", style="red")
        elif days <= 30:
            status = Text(f"{days}d left", style="yellow")
        else:
            status = Text(f"valid ({days}d left)")
        table.add_row(
            credential.name or credential.kind.label,
            credential.number,
            credential.expires_on.isoformat(),
            status,
        )
    return table


def _scorecard_table(stored: StoredScorecard, min_sample: int) -> Table:
    card = stored.scorecard
    when = stored.updated_at.strftime("%Y-%m-%d %H:%M %Z")
    score = (
        f"quality score {card.score:.2f}"
        if card.score is not None
        else f"no quality score yet (a measure needs {min_sample} cases; neutral in ranking)"
    )
    table = Table(title=f"Scorecard: {score}, updated {when}", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("cases", justify="right")
    table.add_column("counted in the score")
    accept = (
        "-"
        if card.median_seconds_to_accept is None
        else f"median {_duration(card.median_seconds_to_accept)}, "
        f"mean {_duration(card.mean_seconds_to_accept)}"
    )
    rating = "-" if card.mean_rating is None else f"{card.mean_rating:.1f} / 5"
    completion = _share(card.completion_within_target_rate)
    if card.median_seconds_to_complete is not None:
        completion += f" (median {_duration(card.median_seconds_to_complete)})"
    rows = (
        ("acceptance rate", _share(card.acceptance_rate), card.offers_answered),
        ("time to accept", accept, card.accept_times),
        ("on-time arrival", _share(card.on_time_arrival_rate), card.arrivals),
        ("completed within target", completion, card.completions),
        ("first-time fix", _share(card.first_time_fix_rate), card.fixes),
        ("customer rating", rating, card.ratings),
    )
    for name, value, cases in rows:
        counted: str | Text = "yes"
        if cases == 0:
            counted = Text("no cases yet", style="dim")
        elif cases < min_sample:
            counted = Text(f"not yet (fewer than {min_sample} cases)", style="dim")
        table.add_row(name, value, str(cases), counted)
    return table


@app.command("show")
def show_contractor(
    contractor_id: Annotated[str, typer.Argument(metavar="ID", help="The contractor's id.")],
) -> None:
    """A contractor's profile, load, credentials with their expiry, and scorecard."""
    from fixloop_contractors.adapters.performance import MongoPerformanceLedger

    check_value("Identifier", contractor_id, "ID", "a contractor id")
    settings = service_settings()

    async def work(
        store: Store,
    ) -> tuple[Candidate | None, StoredScorecard | None, int]:
        ledger = MongoPerformanceLedger(store)
        candidate = await ledger.profile(contractor_id)
        if candidate is None:
            return None, None, 0
        alerts = await ledger.alerts(contractor_id=contractor_id, limit=1000)
        return candidate, await ledger.scorecard(contractor_id), len(alerts)

    candidate, stored, open_alerts = with_store(settings, work)
    if candidate is None:
        fail(f"no contractor {contractor_id}")
    console = Console(highlight=False)
    console.print(_profile_table(candidate))
    if candidate.contractor.credentials:
        console.print(_credentials_table(candidate, _today()))
    else:
        console.print(Text("No credentials on file.", style="yellow"))
    if stored is None:
        console.print("No scorecard yet: none of its offers or jobs has been recorded.")
    else:
        console.print(_scorecard_table(stored, settings.scorecard_min_sample))
    if open_alerts:
        console.print(
            Text(
                f"{open_alerts} open quality alert{'s' if open_alerts != 1 else ''}: "
                f"fixloop dispatch alerts --contractor {contractor_id}",
                style="yellow",
            )
        )
