"""``fixloop notifications ...``: what was told, to whom, and how.

``notifications preview`` renders any notice from sample data without a running stack (for
translators and reviewers); ``notifications log ORDER`` shows every notice and attempt of an
order; ``notifications retry`` puts failed deliveries back to be tried now;
``notifications preferences`` records what a recipient asked for
(:mod:`fixloop_notifications.cli_preferences`). (``fixloop webhooks`` is in
:mod:`fixloop_notifications.cli_webhooks`.)

The commands that read or write the delivery log use the notifications service's own store
(``FIXLOOP_NOTIFICATIONS_MONGODB_URI`` and ``FIXLOOP_NOTIFICATIONS_DATABASE``).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from fixloop_notifications.settings import NotificationsSettings
    from fixloop_shared.store import Store

T = TypeVar("T")

EXIT_FAILURE = 1
EXIT_USAGE = 2
STORE_TIMEOUT_MS = 2000

app = typer.Typer(
    name="notifications",
    help="Notifications: preview any notice, an order's delivery log, retry failed deliveries, "
    "recipients' preferences.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

out = Console(soft_wrap=True, highlight=False)


def fail(message: str, exit_code: int = EXIT_FAILURE) -> NoReturn:
    Console(stderr=True, highlight=False).print(
        Text(f"error: {message}", style="red"), soft_wrap=True
    )
    raise typer.Exit(exit_code)


def service_settings() -> NotificationsSettings:
    from pydantic import ValidationError

    from fixloop_notifications.settings import NotificationsSettings

    try:
        return NotificationsSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors(include_url=False, include_input=False)
        )
        fail(f"invalid FIXLOOP_NOTIFICATIONS_* settings: {problems}", EXIT_USAGE)


def with_store(work: Callable[[Store, NotificationsSettings], Awaitable[T]]) -> T:
    """Run ``work`` against the service's store; a store that cannot be reached is an error."""
    from pymongo.errors import PyMongoError

    from fixloop_notifications.adapters.mongo import create_indexes
    from fixloop_shared.store import Store, make_client

    settings = service_settings()

    async def run() -> T:
        client = make_client(
            settings.mongodb_uri, app_name="fixloop-notifications-cli", timeout_ms=STORE_TIMEOUT_MS
        )
        try:
            store = Store(
                client,
                settings.database,
                service="notifications",
                serialize_writes=settings.store_serialize_writes,
            )
            await create_indexes(store)
            return await work(store, settings)
        finally:
            await client.close()

    try:
        return asyncio.run(run())
    except PyMongoError as exc:
        detail = " ".join(str(exc).split(" (configured timeouts")[0].split())[:200]
        fail(
            "the notifications store (FIXLOOP_NOTIFICATIONS_MONGODB_URI, database "
            f"{settings.database!r}) failed: {type(exc).__name__}: {detail}"
        )


def moment_option(value: str, option: str) -> datetime:
    """A timezone-aware ISO 8601 moment, or a relative one like ``2h`` / ``3d`` ago."""
    relative = re.fullmatch(r"(\d{1,5})([mhd])", value.strip())
    if relative:
        amount, unit = int(relative[1]), relative[2]
        seconds = {"m": 60, "h": 3600, "d": 86400}[unit] * amount
        return datetime.now(UTC) - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        fail(f"{option}: not a moment: {value!r} (ISO 8601 with offset, or 30m, 2h, 3d)", 2)
    if moment.tzinfo is None:
        fail(f"{option}: give a time zone offset, e.g. {value}+00:00", EXIT_USAGE)
    return moment


_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def order_argument(value: str, what: str) -> str:
    """A work order id as the contracts write it (letters, digits, ``._:-``)."""
    if not _IDENTIFIER.fullmatch(value):
        fail(f"{what} is not a work order id: {value[:80]!r}", EXIT_USAGE)
    return value


def uuid_argument(value: str, what: str) -> str:
    from fixloop_shared.grpc_edge.reads import is_canonical_uuid

    if not is_canonical_uuid(value):
        fail(f"{what} must be a UUID like 3f2b8c1e-...: {value[:80]!r}", EXIT_USAGE)
    return value


# --------------------------------------------------------------------------- notifications


@app.callback()
def notifications() -> None:
    """Notifications: preview any notice, an order's delivery log, retry failed deliveries."""


@app.command("preview")
def preview(
    template: Annotated[str, typer.Argument(metavar="TEMPLATE", help="Notice kind to render.")],
    locale: Annotated[str, typer.Option("--locale", help="Locale, e.g. de, de-AT, ar.")] = "en",
    channel: Annotated[str, typer.Option("--channel", help="email (HTML part) or sms.")] = "email",
    part: Annotated[
        str, typer.Option("--part", help="For e-mail: html, text or subject.")
    ] = "html",
    timezone: Annotated[
        str | None, typer.Option("--timezone", help="Show times in this IANA zone.")
    ] = None,
) -> None:
    """Render a notice from sample data, as its recipient would get it (no stack needed)."""
    from fixloop_notifications.adapters.templates import TemplateCatalog
    from fixloop_notifications.domain.quiet_hours import InvalidTimeZone, zone_of
    from fixloop_shared.vocabulary import Channel

    catalog = TemplateCatalog()
    if template not in catalog.templates:
        known = ", ".join(sorted(catalog.templates))
        fail(f"no template {template!r}; known: {known}", EXIT_USAGE)
    try:
        wanted = Channel(channel)
    except ValueError:
        fail(f"--channel must be email or sms, not {channel!r}", EXIT_USAGE)
    if wanted not in catalog.channels(template):
        fail(f"{template} is not sent on {channel}", EXIT_USAGE)
    if not re.fullmatch(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8}){0,2}", locale):
        fail(f"--locale must be a language tag like de or zh-CN, not {locale[:40]!r}", 2)
    if part not in ("html", "text", "subject"):
        fail(f"--part must be html, text or subject, not {part!r}", EXIT_USAGE)
    values = catalog.sample_values(template)
    zone = timezone or str(values.get("site_timezone") or "Europe/Berlin")
    try:
        zone_of(zone)
    except InvalidTimeZone:
        fail(f"--timezone: unknown time zone {zone[:64]!r}", EXIT_USAGE)
    message = catalog.render(template, locale, channel=wanted, values=values, timezone=zone)
    if wanted is Channel.SMS:
        from fixloop_notifications.domain.sms import fit_sms

        text, segments = fit_sms(message.text)
        out.print(text, markup=False)
        Console(stderr=True).print(f"({segments} segment(s), locale {message.locale})")
        return
    chosen = {"html": message.html, "text": message.text, "subject": message.subject}[part]
    sys.stdout.write(chosen if chosen.endswith("\n") else chosen + "\n")


@app.command("log")
def delivery_log(
    order: Annotated[str, typer.Argument(metavar="ORDER", help="Work order id.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Every notice of a work order and every attempt to deliver it."""
    from fixloop_notifications.adapters.mongo import MongoDeliveryLog

    order_argument(order, "ORDER")

    async def work(store: Store, _settings: NotificationsSettings) -> list[dict[str, Any]]:
        log = MongoDeliveryLog(store)
        deliveries = await log.for_order(order)
        attempts = await log.attempts_of([d.notification_id for d in deliveries])
        return [
            {
                "notification_id": d.notification_id,
                "created_at": d.created_at.astimezone(UTC).isoformat(),
                "held_until": d.not_before.astimezone(UTC).isoformat() if d.not_before else None,
                "event_type": d.event_type,
                "template": d.template,
                "channel": d.channel.value,
                "recipient": d.recipient,
                "locale": d.locale,
                "status": d.status.value,
                "attempts": [
                    {
                        "attempt": int(a["attempt"]),
                        "at": _iso(a["at"]),
                        "outcome": a["outcome"],
                        "error": a.get("error"),
                    }
                    for a in attempts.get(d.notification_id, [])
                ],
                "last_error": d.last_error,
            }
            for d in deliveries
        ]

    rows = with_store(work)
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    if not rows:
        out.print(f"no notifications for {order}")
        return
    table = Table(title=f"Notifications of {order}", title_justify="left")
    for column in ("created (UTC)", "notice", "channel", "to", "locale", "status", "attempts"):
        table.add_column(column)
    for row in rows:
        tries = "; ".join(
            f"#{a['attempt']} {a['outcome']}" + (f" ({a['error'][:60]})" if a["error"] else "")
            for a in row["attempts"]
        )
        status = row["status"] + (f" until {row['held_until'][:16]}" if row["held_until"] else "")
        table.add_row(
            row["created_at"][:19],
            row["template"],
            row["channel"],
            row["recipient"][:60],
            row["locale"] or "-",
            status,
            tries or "-",
        )
    out.print(table)


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat()
    return str(value)


@app.command("retry")
def retry(
    failed: Annotated[
        bool,
        typer.Option(
            "--failed/--waiting",
            help="Failed deliveries (default), or also those waiting for their next attempt.",
        ),
    ] = True,
    since: Annotated[
        str | None, typer.Option("--since", help="Only deliveries recorded since (ISO, 2h, 3d).")
    ] = None,
    order: Annotated[str | None, typer.Option("--order", help="Only this work order's.")] = None,
) -> None:
    """Try failed deliveries again now (with a fresh retry horizon)."""
    from fixloop_notifications.adapters.mongo import MongoDeliveryLog

    moment = moment_option(since, "--since") if since else None
    if order is not None:
        order_argument(order, "--order")

    async def work(store: Store, _settings: NotificationsSettings) -> int:
        return await MongoDeliveryLog(store).retry(
            now=datetime.now(UTC), failed=failed, since=moment, work_order_id=order
        )

    count = with_store(work)
    out.print(f"{count} deliver{'y' if count == 1 else 'ies'} to be tried again now")


def _add_preferences() -> None:
    # Here, after everything the preferences commands import from this module is defined.
    from fixloop_notifications.cli_preferences import app as preferences

    app.add_typer(preferences)


_add_preferences()

__all__ = ["app", "fail", "moment_option", "order_argument", "uuid_argument", "with_store"]
