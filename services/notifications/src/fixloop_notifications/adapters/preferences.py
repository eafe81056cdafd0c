"""Recipients' preferences in MongoDB (``recipient_preferences``), or in memory for tests.

One document per recipient, ``_id`` ``{tenant}:{address}`` and unique on ``(tenant, address)``.
Each change is one atomic update of its own fields (concurrent changes never overwrite each
other): opt-outs are a map ``opt_outs.<channel>.<kind or _all>`` of when they were recorded;
SMS consent and quiet hours are flat fields. Moments are stored as epoch milliseconds and flags
read back through ``bool`` (see DESIGN.md §6 on the embedded store's ``$set`` of datetimes and
booleans). Every filter is built with ``equals`` from validated values, so nothing a link or a
caller supplies is ever read as an operator.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel

from fixloop_notifications.domain.preferences import (
    OptOut,
    RecipientPreferences,
    SmsConsent,
    default_preferences,
    notice_kind,
    recipient_address,
)
from fixloop_notifications.domain.quiet_hours import (
    QuietHours,
    format_local_time,
    parse_local_time,
)
from fixloop_shared.due_work import epoch_ms
from fixloop_shared.store import Document, Store, equals
from fixloop_shared.vocabulary import Channel

RECIPIENT_PREFERENCES = "recipient_preferences"
EVERY_KIND = "_all"
"""The map key of an opt-out of every kind on a channel (no kind of notice starts with ``_``)."""


async def create_preference_indexes(store: Store) -> None:
    """The ``recipient_preferences`` collection's indexes (idempotent; run at start-up)."""
    await store.ensure_indexes(
        {
            RECIPIENT_PREFERENCES: [
                IndexModel(
                    [("tenant", ASCENDING), ("address", ASCENDING)],
                    unique=True,
                    name="one_per_recipient",
                )
            ]
        }
    )


def _key(tenant: str, address: str) -> tuple[str, str, str]:
    """The validated (tenant, address) and the document's id."""
    if not tenant or ":" in tenant or len(tenant) > 63:
        msg = f"not a tenant: {tenant[:64]!r}"
        raise ValueError(msg)
    address = recipient_address(address)
    return tenant, address, f"{tenant}:{address}"


def _opt_out_field(kind: str | None, channel: Channel) -> str:
    name = EVERY_KIND if kind is None else notice_kind(kind)
    return f"opt_outs.{Channel(channel).value}.{name}"


def _from_ms(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


def preferences_from_document(doc: Mapping[str, Any]) -> RecipientPreferences:
    opted_out: set[OptOut] = set()
    for channel_name, kinds in (doc.get("opt_outs") or {}).items():
        try:
            channel = Channel(channel_name)
        except ValueError:
            continue  # a channel this version does not know
        for kind in kinds or {}:
            opted_out.add((None if kind == EVERY_KIND else str(kind), channel))
    consent = None
    if doc.get("sms_consent_at_ms") is not None:
        consent = SmsConsent(
            granted=bool(doc.get("sms_consent_granted")),
            at=_from_ms(doc["sms_consent_at_ms"]),
            source=str(doc.get("sms_consent_source") or "unknown"),
        )
    quiet = None
    if doc.get("quiet_start") is not None and doc.get("quiet_end") is not None:
        quiet = QuietHours(
            start=parse_local_time(str(doc["quiet_start"])),
            end=parse_local_time(str(doc["quiet_end"])),
        )
    return RecipientPreferences(
        tenant=str(doc["tenant"]),
        address=str(doc["address"]),
        opted_out=frozenset(opted_out),
        sms_consent=consent,
        quiet_hours=quiet,
        locale=doc.get("locale"),
        timezone=doc.get("timezone"),
    )


class MongoPreferences:
    """:class:`~fixloop_notifications.app.feedback.PreferenceBook` in the service's store.

    Writes happen outside any transaction, each holding the store's write slot
    (``Store.exclusive``), each one idempotent.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    async def get(self, tenant: str, address: str) -> RecipientPreferences | None:
        """The recipient's recorded preferences; None if they recorded none."""
        _, _, doc_id = _key(tenant, address)
        doc = await self._store.db[RECIPIENT_PREFERENCES].find_one(equals({"_id": doc_id}))
        return None if doc is None else preferences_from_document(doc)

    async def _update(
        self, tenant: str, address: str, changes: Document, *, at: datetime | None = None
    ) -> None:
        tenant, address, doc_id = _key(tenant, address)
        now_ms = epoch_ms(at or datetime.now(UTC))
        update: Document = {
            **changes,
            "$setOnInsert": {"tenant": tenant, "address": address, "created_at_ms": now_ms},
        }
        update.setdefault("$set", {})["updated_at_ms"] = now_ms
        async with self._store.exclusive():
            await self._store.db[RECIPIENT_PREFERENCES].update_one(
                equals({"_id": doc_id}), update, upsert=True
            )

    async def opt_out(
        self, tenant: str, address: str, kind: str | None, channel: Channel, *, at: datetime
    ) -> None:
        await self._update(
            tenant, address, {"$set": {_opt_out_field(kind, channel): epoch_ms(at)}}, at=at
        )

    async def opt_in(self, tenant: str, address: str, kind: str | None, channel: Channel) -> None:
        await self._update(tenant, address, {"$unset": {_opt_out_field(kind, channel): ""}})

    async def record_sms_consent(self, tenant: str, address: str, consent: SmsConsent) -> None:
        changes = {
            "sms_consent_granted": consent.granted,
            "sms_consent_at_ms": epoch_ms(consent.at),
            "sms_consent_source": consent.source,
        }
        await self._update(tenant, address, {"$set": changes}, at=consent.at)

    async def set_quiet_hours(
        self, tenant: str, address: str, quiet_hours: QuietHours | None
    ) -> None:
        if quiet_hours is None:
            await self._update(tenant, address, {"$unset": {"quiet_start": "", "quiet_end": ""}})
            return
        changes = {
            "quiet_start": format_local_time(quiet_hours.start),
            "quiet_end": format_local_time(quiet_hours.end),
        }
        await self._update(tenant, address, {"$set": changes})

    async def set_overrides(
        self, tenant: str, address: str, *, locale: str | None, timezone: str | None
    ) -> None:
        """Set (or with None clear) the recipient's own locale and time zone."""
        sets = {name: v for name, v in (("locale", locale), ("timezone", timezone)) if v}
        unsets = {name: "" for name, v in (("locale", locale), ("timezone", timezone)) if not v}
        changes: Document = {"$set": sets}
        if unsets:
            changes["$unset"] = unsets
        await self._update(tenant, address, changes)


class MemoryPreferences:
    """:class:`~fixloop_notifications.app.feedback.PreferenceBook` in a dict (for tests)."""

    def __init__(self) -> None:
        self.recipients: dict[tuple[str, str], RecipientPreferences] = {}

    async def get(self, tenant: str, address: str) -> RecipientPreferences | None:
        tenant, address, _ = _key(tenant, address)
        return self.recipients.get((tenant, address))

    async def _current(self, tenant: str, address: str) -> RecipientPreferences:
        tenant, address, _ = _key(tenant, address)
        return self.recipients.get((tenant, address)) or default_preferences(tenant, address)

    async def _put(self, preferences: RecipientPreferences) -> None:
        self.recipients[(preferences.tenant, preferences.address)] = preferences

    async def opt_out(
        self,
        tenant: str,
        address: str,
        kind: str | None,
        channel: Channel,
        *,
        at: datetime,  # noqa: ARG002 - the memory keeps no times
    ) -> None:
        _opt_out_field(kind, channel)  # validated like the store's
        await self._put((await self._current(tenant, address)).with_opt_out(kind, channel))

    async def opt_in(self, tenant: str, address: str, kind: str | None, channel: Channel) -> None:
        await self._put((await self._current(tenant, address)).with_opt_in(kind, channel))

    async def record_sms_consent(self, tenant: str, address: str, consent: SmsConsent) -> None:
        await self._put((await self._current(tenant, address)).with_sms_consent(consent))

    async def set_quiet_hours(
        self, tenant: str, address: str, quiet_hours: QuietHours | None
    ) -> None:
        await self._put((await self._current(tenant, address)).with_quiet_hours(quiet_hours))


__all__ = [
    "RECIPIENT_PREFERENCES",
    "MemoryPreferences",
    "MongoPreferences",
    "create_preference_indexes",
    "preferences_from_document",
]
