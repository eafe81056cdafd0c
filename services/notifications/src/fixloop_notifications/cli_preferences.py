"""``fixloop notifications preferences ...``: what a recipient asked for, recorded by an operator.

A requester calls the desk: "no more texts", "you may text me", "not before 08:00", "in German,
please". The desk records it here, in the notifications service's store, and every later notice
follows it (an e-mail's one-click unsubscribe and the SMS STOP word record the same things on
their own). A recipient is an e-mail address or an E.164 phone number within a tenant.

    fixloop notifications preferences show --tenant acme +4915112345678
    fixloop notifications preferences sms-consent --tenant acme +4915112345678 --given \
        --source operator:desk-7
    fixloop notifications preferences opt-out --tenant acme ana@example.com --channel email \
        --kind visit_scheduled
    fixloop notifications preferences quiet-hours --tenant acme ana@example.com 22:00-06:30
    fixloop notifications preferences language --tenant acme ana@example.com --locale de-AT \
        --time-zone Europe/Vienna
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from fixloop_notifications.cli import EXIT_USAGE, fail, out, with_store

if TYPE_CHECKING:
    from fixloop_notifications.domain.preferences import RecipientPreferences
    from fixloop_notifications.domain.quiet_hours import QuietHours
    from fixloop_notifications.settings import NotificationsSettings
    from fixloop_shared.store import Store

app = typer.Typer(
    name="preferences",
    help="A recipient's preferences: show, opt-out, opt-in, sms-consent, quiet-hours, language.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

TenantOption = Annotated[str, typer.Option("--tenant", help="The recipient's tenant.")]
AddressArgument = Annotated[
    str, typer.Argument(metavar="RECIPIENT", help="E-mail address or E.164 phone number.")
]
ChannelOption = Annotated[str, typer.Option("--channel", help="email or sms.")]
KindOption = Annotated[
    str | None,
    typer.Option("--kind", help="A kind of notice (e.g. visit_scheduled); every kind if absent."),
]

CHANNELS = ("email", "sms")


def _recipient(tenant: str, address: str) -> tuple[str, str]:
    from fixloop_notifications.domain.preferences import InvalidAddress, recipient_address

    if not tenant or ":" in tenant or len(tenant) > 63 or not tenant.isprintable():
        fail(f"--tenant is not a tenant: {tenant[:64]!r}", EXIT_USAGE)
    try:
        return tenant, recipient_address(address)
    except InvalidAddress as exc:
        fail(f"RECIPIENT {address[:80]!r}: {exc}", EXIT_USAGE)


def _channel(value: str) -> Any:
    from fixloop_shared.vocabulary import Channel

    if value not in CHANNELS:
        fail(f"--channel {value[:20]!r} is not one of {', '.join(CHANNELS)}", EXIT_USAGE)
    return Channel(value)


def _kind(value: str | None) -> str | None:
    from fixloop_notifications.domain.notices import NOTICE_KINDS

    if value is None:
        return None
    if value not in NOTICE_KINDS:
        fail(
            f"--kind {value[:64]!r} is not a kind of notice; one of "
            + ", ".join(sorted(NOTICE_KINDS)),
            EXIT_USAGE,
        )
    return value


def _preferences_book(store: Store) -> Any:
    from fixloop_notifications.adapters.preferences import MongoPreferences

    return MongoPreferences(store)


def _shown(tenant: str, address: str, found: RecipientPreferences | None) -> dict[str, Any]:
    from fixloop_notifications.domain.preferences import default_preferences
    from fixloop_notifications.domain.quiet_hours import format_local_time

    prefs = found or default_preferences(tenant, address)
    quiet = prefs.effective_quiet_hours
    consent = prefs.sms_consent
    return {
        "tenant": tenant,
        "recipient": address,
        "recorded": found is not None,
        "opted_out": sorted(f"{kind or '*'}:{channel.value}" for kind, channel in prefs.opted_out),
        "sms_consent": None
        if consent is None
        else {
            "granted": consent.granted,
            "at": consent.at.isoformat().replace("+00:00", "Z"),
            "source": consent.source,
        },
        "quiet_hours": f"{format_local_time(quiet.start)}-{format_local_time(quiet.end)}",
        "quiet_hours_default": prefs.quiet_hours is None,
        "locale": prefs.locale,
        "time_zone": prefs.timezone,
    }


def _print(shown: dict[str, Any]) -> None:
    table = Table(title=f"{shown['recipient']} ({shown['tenant']})", title_justify="left")
    table.add_column("preference")
    table.add_column("value", overflow="fold")
    consent = shown["sms_consent"]
    said = "none recorded (the order's own consent decides)"
    if consent is not None:
        word = "given" if consent["granted"] else "withdrawn"
        said = f"{word} {consent['at']} ({consent['source']})"
    table.add_row("SMS consent", said)
    table.add_row(
        "opted out of",
        ", ".join(shown["opted_out"]) or "nothing",
    )
    table.add_row(
        "quiet hours",
        shown["quiet_hours"] + (" (default)" if shown["quiet_hours_default"] else ""),
    )
    table.add_row("locale", shown["locale"] or "the order's")
    table.add_row("time zone", shown["time_zone"] or "the order's (else the site's)")
    out.print(table)


def _change_then_show(tenant: str, address: str, change: Any, *, as_json: bool = False) -> None:
    async def work(store: Store, settings: NotificationsSettings) -> dict[str, Any]:
        del settings
        book = _preferences_book(store)
        await change(book)
        return _shown(tenant, address, await book.get(tenant, address))

    shown = with_store(work)
    if as_json:
        sys.stdout.write(json.dumps(shown) + "\n")
    else:
        _print(shown)


@app.command("show")
def show(
    address: AddressArgument,
    tenant: TenantOption,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """What the recipient asked for (the defaults if they asked for nothing)."""
    tenant, address = _recipient(tenant, address)

    async def nothing(book: Any) -> None:
        del book

    _change_then_show(tenant, address, nothing, as_json=as_json)


@app.command("opt-out")
def opt_out(
    address: AddressArgument, tenant: TenantOption, channel: ChannelOption, kind: KindOption = None
) -> None:
    """No more notices of this kind (or of any kind) on this channel. Essential notices still go
    by e-mail; no SMS at all goes against an SMS opt-out."""
    tenant, address = _recipient(tenant, address)
    chosen, wanted = _channel(channel), _kind(kind)

    async def change(book: Any) -> None:
        await book.opt_out(tenant, address, wanted, chosen, at=datetime.now(UTC))

    _change_then_show(tenant, address, change)


@app.command("opt-in")
def opt_in(
    address: AddressArgument, tenant: TenantOption, channel: ChannelOption, kind: KindOption = None
) -> None:
    """Take back an opt-out (the same kind, or ``*`` without --kind, and channel)."""
    tenant, address = _recipient(tenant, address)
    chosen, wanted = _channel(channel), _kind(kind)

    async def change(book: Any) -> None:
        await book.opt_in(tenant, address, wanted, chosen)

    _change_then_show(tenant, address, change)


@app.command("sms-consent")
def sms_consent(
    address: AddressArgument,
    tenant: TenantOption,
    source: Annotated[
        str,
        typer.Option("--source", help="How it was given, e.g. operator:desk-7 or call:2026-11-27."),
    ],
    given: Annotated[
        bool | None,
        typer.Option("--given/--withdrawn", help="The recipient agreed to SMS, or no longer does."),
    ] = None,
) -> None:
    """Record the recipient's word on SMS, now: it overrides the consent recorded with orders."""
    from fixloop_notifications.domain.preferences import SmsConsent

    tenant, address = _recipient(tenant, address)
    if given is None:
        fail("say --given or --withdrawn", EXIT_USAGE)
    if not address.startswith("+"):
        fail(f"SMS consent is recorded for a phone number in E.164, not {address!r}", EXIT_USAGE)
    try:
        consent = SmsConsent(granted=given, at=datetime.now(UTC), source=source)
    except ValueError as exc:
        fail(f"--source {source[:80]!r}: {exc}", EXIT_USAGE)

    async def change(book: Any) -> None:
        await book.record_sms_consent(tenant, address, consent)

    _change_then_show(tenant, address, change)


def _quiet_hours(value: str) -> QuietHours | None:
    from fixloop_notifications.domain.quiet_hours import QuietHours, parse_local_time

    if value == "default":
        return None
    start, sep, end = value.partition("-")
    try:
        if not sep:
            raise ValueError(value)
        return QuietHours(start=parse_local_time(start), end=parse_local_time(end))
    except ValueError:
        fail(
            f"quiet hours {value[:40]!r}: give HH:MM-HH:MM local (e.g. 22:00-06:30), "
            "00:00-00:00 for never, or default",
            EXIT_USAGE,
        )


@app.command("quiet-hours")
def quiet_hours(
    address: AddressArgument,
    tenant: TenantOption,
    hours: Annotated[
        str,
        typer.Argument(
            metavar="HH:MM-HH:MM", help="Local quiet period; 00:00-00:00 never; default 21-07."
        ),
    ],
) -> None:
    """When notices that can wait are held (in the recipient's time zone)."""
    tenant, address = _recipient(tenant, address)
    period = _quiet_hours(hours)

    async def change(book: Any) -> None:
        await book.set_quiet_hours(tenant, address, period)

    _change_then_show(tenant, address, change)


@app.command("language")
def language(
    address: AddressArgument,
    tenant: TenantOption,
    locale: Annotated[
        str | None, typer.Option("--locale", help="e.g. de-AT; none to use the order's.")
    ] = None,
    time_zone: Annotated[
        str | None,
        typer.Option("--time-zone", help="IANA name, e.g. Europe/Vienna; none for the order's."),
    ] = None,
) -> None:
    """The recipient's own language and time zone (over what their orders say)."""
    from babel import Locale, UnknownLocaleError

    from fixloop_notifications.domain.locales import normalize_tag
    from fixloop_notifications.domain.quiet_hours import InvalidTimeZone, zone_of

    tenant, address = _recipient(tenant, address)
    if locale is None and time_zone is None:
        fail("give --locale, --time-zone or both (none clears one)", EXIT_USAGE)
    chosen_locale = None if locale in (None, "none") else normalize_tag(str(locale))
    if chosen_locale is not None:
        try:
            Locale.parse(chosen_locale, sep="-")
        except (ValueError, UnknownLocaleError):
            fail(
                f"--locale {str(locale)[:40]!r} is not a locale such as de-AT or pt-BR", EXIT_USAGE
            )
    chosen_zone = None if time_zone in (None, "none") else str(time_zone)
    if chosen_zone is not None:
        try:
            zone_of(chosen_zone)
        except InvalidTimeZone:
            fail(f"--time-zone {chosen_zone[:64]!r} is not an IANA time zone", EXIT_USAGE)

    async def change(book: Any) -> None:
        current = await book.get(tenant, address)
        keep_locale = current.locale if current is not None and locale is None else None
        keep_zone = current.timezone if current is not None and time_zone is None else None
        await book.set_overrides(
            tenant,
            address,
            locale=chosen_locale if locale is not None else keep_locale,
            timezone=chosen_zone if time_zone is not None else keep_zone,
        )

    _change_then_show(tenant, address, change)


__all__ = ["app"]
