"""``fixloop parts ...``: import stock counts and look at stock levels.

The store is the parts service's own database (``FIXLOOP_PARTS_MONGODB_URI`` and
``FIXLOOP_PARTS_DATABASE``, as for the service).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fixloop_parts.settings import PartsSettings

if TYPE_CHECKING:
    from fixloop_parts.adapters.stock_file import FileProblem
    from fixloop_parts.app import StockCountSummary
    from fixloop_shared.store import Store

T = TypeVar("T")

app = typer.Typer(
    name="parts",
    help="Parts: warehouses, stock counts and stock levels.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

EXIT_FAILURE = 1
EXIT_USAGE = 2
MAX_PROBLEMS_SHOWN = 200


def _out() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(message: str, exit_code: int = EXIT_FAILURE) -> NoReturn:
    _err().print(Text(f"error: {message}", style="red"))
    raise typer.Exit(exit_code)


def _redacted(uri: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", uri)


def _settings() -> PartsSettings:
    from pydantic import ValidationError

    try:
        return PartsSettings()
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        _fail(f"invalid setting FIXLOOP_PARTS_{where.upper()}: {first['msg']}", EXIT_USAGE)


def _with_store(settings: PartsSettings, work: Callable[[Store], Awaitable[T]]) -> T:
    """Run ``work`` against the parts store; store failures become one-line errors."""
    from pymongo.errors import ConnectionFailure, PyMongoError

    from fixloop_parts.adapters.mongo import ensure_indexes
    from fixloop_parts.domain import StockRuleViolation
    from fixloop_shared.store import Store, make_client

    async def run() -> T:
        client = make_client(
            settings.mongodb_uri,
            app_name="fixloop-parts-cli",
            timeout_ms=int(settings.store_timeout_seconds * 1000),
        )
        try:
            store = Store(client, settings.database, service="parts")
            await ensure_indexes(store)
            return await work(store)
        finally:
            await client.close()

    try:
        return asyncio.run(run())
    except ConnectionFailure as exc:
        _fail(
            f"cannot reach the parts store at {_redacted(settings.mongodb_uri)} "
            f"({type(exc).__name__})"
        )
    except PyMongoError as exc:
        _fail(f"the parts store failed: {_first_line(exc)}")
    except StockRuleViolation as exc:
        _fail(f"the parts store holds an invalid stock record: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return _one_line(text.splitlines()[0][:300])


def _one_line(text: str) -> str:
    """``text`` with control characters escaped, so that one problem is one line."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _print_problems(file: Path, problems: Sequence[FileProblem]) -> NoReturn:
    from fixloop_parts.adapters.stock_file import format_location

    err = _err()
    shown = problems[:MAX_PROBLEMS_SHOWN]
    for problem in shown:
        where = f"{file}:{problem.line}" if problem.line is not None else f"{file}"
        line = f"{where}: {format_location(problem.location)}: {problem.message}"
        err.print(Text(_one_line(line)))
    if len(problems) > len(shown):
        err.print(Text(f"... and {len(problems) - len(shown)} more problems"))
    noun = "problem" if len(problems) == 1 else "problems"
    _fail(f"{len(problems)} {noun} in {file}; nothing was imported")


@app.callback()
def parts() -> None:
    """Parts: warehouses, stock counts and stock levels."""


@app.command("import")
def import_stock(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="Stock count (.yaml, .yml or .json): warehouses and on-hand quantities.",
            show_default=False,
        ),
    ],
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Check the file against the store; write nothing."),
    ] = False,
) -> None:
    """Import a stock count: set on-hand quantities, keep existing reservations.

    Lines not in the file are left as they are. Any problem rejects the whole file.
    """
    from fixloop_parts.adapters.mongo import MongoStock
    from fixloop_parts.adapters.stock_file import StockFileInvalid, read_stock_file
    from fixloop_parts.app import StockChanged, StockCountRejected, import_stock_count

    settings = _settings()
    try:
        stock_file = read_stock_file(file)
    except StockFileInvalid as invalid:
        _print_problems(file, invalid.problems)

    async def work(store: Store) -> StockCountSummary | StockCountRejected:
        try:
            return await import_stock_count(store, MongoStock(), stock_file.count, dry_run=dry_run)
        except StockCountRejected as rejected:
            return rejected

    try:
        result = _with_store(settings, work)
    except StockChanged:
        _fail("the stock kept changing while the count was applied; try again")
    if isinstance(result, StockCountRejected):
        _print_problems(file, stock_file.locate(result.problems))
    _print_summary(file, result)


def _print_summary(file: Path, summary: StockCountSummary) -> None:
    title = "Stock count checked (dry run)" if summary.dry_run else "Stock count imported"
    table = Table(title=f"{title}: {file.name}", show_footer=True, box=box.SIMPLE_HEAD)
    table.add_column("warehouse", footer="total", no_wrap=True)
    table.add_column("name", overflow="fold", min_width=12)
    totals = [
        ("lines", summary.lines),
        ("changed", summary.new_lines + summary.changed_lines),
        ("on hand", sum(w.on_hand for w in summary.warehouses)),
        ("reserved", sum(w.reserved for w in summary.warehouses)),
        ("available", sum(w.available for w in summary.warehouses)),
    ]
    for label, total in totals:
        table.add_column(label, justify="right", no_wrap=True, footer=str(total))
    for w in summary.warehouses:
        name = Text(w.name)
        if w.status != "known":
            name.append(f" ({w.status})", style="dim")
        table.add_row(
            Text(f"{w.warehouse_id} ({w.country})"),
            name,
            str(w.lines),
            str(w.new_lines + w.changed_lines),
            str(w.on_hand),
            str(w.reserved),
            str(w.available),
        )
    out = _out()
    out.print(table)
    verb = "would be" if summary.dry_run else "were"
    out.print(
        Text(
            f"{summary.lines} stock lines in {len(summary.warehouses)} warehouses {verb} counted "
            f"({summary.new_lines} new, {summary.changed_lines} changed)."
            + (" Nothing was written." if summary.dry_run else "")
        )
    )


@app.command("stock")
def show_stock(
    part: Annotated[
        str | None, typer.Option("--part", help="Only this part number.", show_default=False)
    ] = None,
    warehouse: Annotated[
        str | None,
        typer.Option("--warehouse", help="Only this warehouse id.", show_default=False),
    ] = None,
    limit: Annotated[
        int, typer.Option(help="Show at most this many lines.", min=1, max=5000)
    ] = 200,
) -> None:
    """Show stock levels: on hand, reserved for work orders, available."""
    from pydantic import TypeAdapter, ValidationError

    from fixloop_parts.adapters.mongo import StockRow, stock_overview
    from fixloop_shared.contracts.types import Identifier, PartNumber

    try:
        if part is not None:
            TypeAdapter(PartNumber).validate_python(part)
        if warehouse is not None:
            TypeAdapter(Identifier).validate_python(warehouse)
    except ValidationError:
        _fail("--part and --warehouse take a part number or warehouse id", EXIT_USAGE)

    settings = _settings()

    async def work(store: Store) -> tuple[list[StockRow], int]:
        return await stock_overview(store.db, part_number=part, warehouse_id=warehouse, limit=limit)

    rows, total = _with_store(settings, work)
    out = _out()
    if not rows:
        out.print(Text("No stock lines match."))
        return
    table = Table(title="Stock levels", box=box.SIMPLE_HEAD)
    table.add_column("part number", no_wrap=True)
    table.add_column("description", overflow="fold", min_width=12)
    table.add_column("warehouse", no_wrap=True)
    for label in ("on hand", "reserved", "available"):
        table.add_column(label, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(
            Text(row.part_number),
            Text(row.description or ""),
            Text(f"{row.warehouse_id} ({row.country})"),
            str(row.level.on_hand),
            str(row.level.reserved),
            Text(str(row.level.available), style="red" if row.level.available == 0 else ""),
        )
    out.print(table)
    if total > len(rows):
        out.print(Text(f"{len(rows)} of {total} lines shown; use --limit to see more."))


__all__ = ["app"]
