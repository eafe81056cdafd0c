"""``fixloop sla ...``: the SLA policies of the sla service (import a policy file, list versions).

The CLI writes to the sla service's own store (``FIXLOOP_SLA_MONGODB_URI`` and
``FIXLOOP_SLA_DATABASE``, defaults for the embedded stack). A running service picks up a newly
imported policy within ``FIXLOOP_SLA_POLICY_REFRESH_SECONDS``; it applies to clock cycles that
start after that, while running cycles keep the version they started under.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fixloop_sla.cli_reports import register as register_reports

if TYPE_CHECKING:
    from fixloop_sla.adapters.policies import MongoPolicyStore, PolicyImport, StoredPolicy
    from fixloop_sla.domain.policy import ClockDefinition, Goal
    from fixloop_sla.settings import SlaSettings

T = TypeVar("T")

app = typer.Typer(
    name="sla",
    help="SLA: import and list the policies that time work orders' milestones.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
policy_app = typer.Typer(
    help="SLA policies: import a policy file as a new version, list the stored versions.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(policy_app, name="policy")

EXIT_FAILURE = 1
EXIT_USAGE = 2
STORE_TIMEOUT_MS = 2000
"""How long the CLI waits for the store before it gives up (server selection and connect)."""


def fail(message: str, exit_code: int = EXIT_FAILURE) -> NoReturn:
    Console(stderr=True, highlight=False).print(
        Text(f"error: {message}", style="red"), soft_wrap=True
    )
    raise typer.Exit(exit_code)


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


def with_policies(settings: SlaSettings, work: Callable[[MongoPolicyStore], Awaitable[T]]) -> T:
    """Run ``work`` against the policy store; a store that cannot be reached is an error."""
    from pymongo.errors import PyMongoError

    from fixloop_shared.store import make_client
    from fixloop_sla.adapters.policies import MongoPolicyStore, policy_indexes

    async def run() -> T:
        client = make_client(
            settings.mongodb_uri, app_name="fixloop-sla-cli", timeout_ms=STORE_TIMEOUT_MS
        )
        try:
            database = client[settings.database]
            for collection, models in policy_indexes().items():
                await database[collection].create_indexes(list(models))
            return await work(MongoPolicyStore(database))
        finally:
            await client.close()

    try:
        return asyncio.run(run())
    except PyMongoError as exc:
        detail = " ".join(str(exc).split(" (configured timeouts")[0].split())[:200]
        fail(
            "the sla store (FIXLOOP_SLA_MONGODB_URI, database "
            f"{settings.database!r}) failed: {type(exc).__name__}: {detail}"
        )


def _operator() -> str | None:
    import getpass

    try:
        return getpass.getuser() or None
    except (OSError, KeyError, ImportError):
        return None


@app.callback()
def sla() -> None:
    """SLA: import and list the policies that time work orders' milestones."""


@policy_app.callback()
def policy() -> None:
    """SLA policies: import a policy file as a new version, list the stored versions."""


@policy_app.command("import")
def import_policy(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE", help="Policy file, YAML or JSON (see examples/sla-policy.yaml)."
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only validate the file; write nothing.")
    ] = False,
) -> None:
    """Import FILE as the next version of the policy it names (nothing if it is unchanged).

    The file is validated first; a problem is printed as one line with its location and nothing
    is stored. New clock cycles run under the newest version of the policy imported last.
    """
    from fixloop_sla.policy_file import InvalidPolicyFile, load_policy_file

    try:
        document, parsed = load_policy_file(file)
    except InvalidPolicyFile as exc:
        fail(str(exc), EXIT_USAGE)
    console = Console(highlight=False)
    if dry_run:
        console.print(
            f"{file} is valid: policy {parsed.name}, {len(parsed.clocks)} clocks (nothing written)."
        )
        return

    async def work(store: MongoPolicyStore) -> PolicyImport:
        return await store.import_policy(document, now=datetime.now(UTC), imported_by=_operator())

    result = with_policies(service_settings(), work)
    if result.unchanged:
        console.print(f"policy {result.name} unchanged (version {result.version})")
    else:
        console.print(f"imported policy {result.name} version {result.version}")


def _goal_text(goal: Goal) -> str:
    from fixloop_sla.domain.calendar import TWENTY_FOUR_SEVEN
    from fixloop_sla.policy_file import format_duration

    match = goal.match
    parts = [
        prefix + ",".join(sorted(values))
        for prefix, values in (
            ("", match.priorities),
            ("", match.equipment_classes),
            ("", match.categories),
            ("tenant:", match.tenants),
        )
        if values
    ]
    target = "not timed" if goal.target is None else format_duration(goal.target)
    if goal.target is not None and goal.calendar != TWENTY_FOUR_SEVEN.name:
        target += f" ({goal.calendar})"
    if not parts:
        return target
    return f"{' '.join(parts)} {target}"


def _clock_text(definition: ClockDefinition) -> str:
    goals = list(definition.goals)
    shown = [_goal_text(goal) for goal in goals[:-1]]
    last = _goal_text(goals[-1])
    shown.append(f"else {last}" if shown else last)
    return f"{definition.clock.value}: {' · '.join(shown)}"


def _json_line(entry: StoredPolicy, *, active: bool) -> str:
    return json.dumps(
        {
            "name": entry.policy.name,
            "version": entry.policy.version,
            "active": active,
            "imported_at": entry.imported_at.isoformat(),
            "imported_by": entry.imported_by,
            "digest": entry.digest,
            "document": entry.document,
        },
        ensure_ascii=False,
        sort_keys=True,
    )


@policy_app.command("list")
def list_policies(
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per version and line.")
    ] = False,
) -> None:
    """List every stored policy version; the one in force for new clock cycles is marked."""

    async def work(store: MongoPolicyStore) -> list[StoredPolicy]:
        return await store.stored()

    stored = with_policies(service_settings(), work)
    if as_json:
        for index, entry in enumerate(stored):
            typer.echo(_json_line(entry, active=index == len(stored) - 1))
        return
    console = Console(highlight=False)
    if not stored:
        console.print(
            "No SLA policy stored: the standard policy applies "
            "(fixloop sla policy import examples/sla-policy.yaml)."
        )
        return
    table = Table(title=f"{len(stored)} SLA policy versions", title_justify="left")
    table.add_column("policy")
    table.add_column("version", justify="right")
    table.add_column("in force")
    table.add_column("imported at")
    table.add_column("goals per clock")
    for index, entry in enumerate(stored):
        active = index == len(stored) - 1
        by = f"\nby {entry.imported_by}" if entry.imported_by else ""
        table.add_row(
            entry.policy.name,
            str(entry.policy.version),
            Text("active", style="green") if active else "",
            entry.imported_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") + by,
            "\n".join(_clock_text(definition) for definition in entry.policy.clocks),
        )
    console.print(table)


# -- the reports: at-risk, report ----------------------------------------------------------------

register_reports(app)
