"""The tenants' webhook endpoints in MongoDB (collection ``webhook_endpoints``).

One document per endpoint: its URL, event-type filter, signing secrets (newest first, each with
an optional expiry after a rotation; stored sealed, see
:mod:`~fixloop_notifications.adapters.secret_box`), whether it is enabled, and its run of
failures.

Times that change after insertion are stored as epoch milliseconds (``*_ms``; 0 = none) and
the state as a string (``status``: ``enabled`` | ``disabled``): both compare the same on every
MongoDB-wire store (the embedded one rewrites a ``$set`` datetime as a string and reads ``true``
back as ``1``). The event-type filter is checked here, not in the query (equality on an array
field is not matched alike everywhere); a tenant has few endpoints.

Every value in a filter is a string or number from our own code: ids are checked to be canonical
UUIDs first, and equality is written with :func:`~fixloop_shared.store.equals` (``$eq``), so a
value like ``{"$ne": null}`` stays data. Writes here are outside any transaction and take the
store's write slot (``Store.exclusive``).
"""

from __future__ import annotations

import builtins
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from fixloop_notifications.adapters.secret_box import SecretBox, UnreadableSecret, dev_box
from fixloop_notifications.domain.webhooks import (
    DisabledReason,
    DisablePolicy,
    WebhookEndpoint,
    WebhookSecret,
    new_secret,
    validate_endpoint_url,
)
from fixloop_shared.due_work import epoch_ms
from fixloop_shared.store import Document, Store, equals

log = logging.getLogger(__name__)

WEBHOOK_ENDPOINTS = "webhook_endpoints"

ENABLED = "enabled"
DISABLED = "disabled"

EVENT_TYPE_MAX_LENGTH = 200
EVENT_TYPES_MAX = 100


async def create_webhook_indexes(store: Store) -> None:
    """The endpoints' indexes (run at start-up with the service's others; idempotent)."""
    await store.ensure_indexes(
        {
            WEBHOOK_ENDPOINTS: [
                IndexModel([("tenant", ASCENDING), ("status", ASCENDING)]),
                IndexModel([("tenant", ASCENDING), ("created_at_ms", ASCENDING)]),
            ]
        }
    )


def canonical_id(endpoint_id: str) -> str | None:
    """``endpoint_id`` if it is a canonical UUID string (what :meth:`add` makes), else None."""
    if len(endpoint_id) != 36:
        return None
    try:
        parsed = uuid.UUID(endpoint_id)
    except ValueError:
        return None
    return endpoint_id if str(parsed) == endpoint_id else None


def _from_ms(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromtimestamp(int(value) / 1000, UTC)


def _secret_document(secret: WebhookSecret, box: SecretBox) -> Document:
    return {
        "sealed": box.seal(secret.value),
        "created_at_ms": epoch_ms(secret.created_at),
        "expires_at_ms": epoch_ms(secret.expires_at) if secret.expires_at else 0,
    }


def _secret_from(doc: Document, box: SecretBox) -> WebhookSecret:
    created = _from_ms(doc.get("created_at_ms"))
    # "value": a secret written before secrets were sealed (sealed when next written).
    value = box.open(str(doc["sealed"])) if "sealed" in doc else str(doc["value"])
    return WebhookSecret(
        value=value,
        created_at=created or datetime.fromtimestamp(0, UTC),
        expires_at=_from_ms(doc.get("expires_at_ms")),
    )


def _readable_secrets(doc: Document, box: SecretBox) -> tuple[WebhookSecret, ...]:
    """The endpoint's secrets the configured keys open (an unreadable one is left out and
    logged: the endpoint then signs with what is left, or not at all)."""
    secrets: list[WebhookSecret] = []
    for secret in doc.get("secrets", []):
        try:
            secrets.append(_secret_from(secret, box))
        except UnreadableSecret:
            log.error(
                "a webhook signing secret cannot be opened with the configured keys "
                "(FIXLOOP_NOTIFICATIONS_WEBHOOK_SECRET_KEY changed without keeping the old one "
                "in FIXLOOP_NOTIFICATIONS_WEBHOOK_PREVIOUS_SECRET_KEYS?)",
                extra={"endpoint_id": str(doc.get("_id")), "tenant": str(doc.get("tenant"))},
            )
    return tuple(secrets)


def endpoint_from_document(doc: Document, box: SecretBox) -> WebhookEndpoint:
    reason = doc.get("disabled_reason") or None
    return WebhookEndpoint(
        endpoint_id=str(doc["_id"]),
        tenant=str(doc["tenant"]),
        url=str(doc["url"]),
        secrets=_readable_secrets(doc, box),
        event_types=tuple(str(event_type) for event_type in doc.get("event_types", [])),
        enabled=doc.get("status") == ENABLED,
        created_at=_from_ms(doc.get("created_at_ms")) or datetime.fromtimestamp(0, UTC),
        consecutive_failures=int(doc.get("consecutive_failures") or 0),
        failing_since=_from_ms(doc.get("failing_since_ms")),
        disabled_at=_from_ms(doc.get("disabled_at_ms")),
        disabled_reason=DisabledReason(reason) if reason else None,
    )


def _checked_event_types(event_types: Sequence[str]) -> list[str]:
    if isinstance(event_types, str):
        msg = "event types are a list of names, not one string"
        raise ValueError(msg)
    if len(event_types) > EVENT_TYPES_MAX:
        msg = f"at most {EVENT_TYPES_MAX} event types per endpoint"
        raise ValueError(msg)
    checked: list[str] = []
    for event_type in event_types:
        name = str(event_type).strip()
        if not name or len(name) > EVENT_TYPE_MAX_LENGTH or not name.isprintable():
            msg = f"not an event type name: {event_type!r}"
            raise ValueError(msg)
        if name not in checked:
            checked.append(name)
    return checked


class MongoWebhookRegistry:
    """The webhook endpoints of all tenants."""

    def __init__(
        self, store: Store, *, allow_loopback: bool = True, box: SecretBox | None = None
    ) -> None:
        self._store = store
        self._allow_loopback = allow_loopback
        self._box = box or dev_box()

    @property
    def allow_loopback(self) -> bool:
        """Whether endpoints on localhost are accepted (the embedded stack)."""
        return self._allow_loopback

    @property
    def _endpoints(self) -> AsyncCollection[Document]:
        return self._store.db[WEBHOOK_ENDPOINTS]

    async def add(
        self, tenant: str, url: str, event_types: Sequence[str], now: datetime
    ) -> WebhookEndpoint:
        """Register an endpoint with a new secret (shown to the operator once, to give the
        receiver). ``InvalidEndpointUrl``/``ValueError`` for an unusable URL or filter."""
        if not tenant:
            msg = "an endpoint belongs to a tenant"
            raise ValueError(msg)
        validate_endpoint_url(url, allow_loopback=self._allow_loopback)
        endpoint = WebhookEndpoint(
            endpoint_id=str(uuid.uuid4()),
            tenant=tenant,
            url=url,
            secrets=(WebhookSecret(value=new_secret(), created_at=now),),
            event_types=tuple(_checked_event_types(event_types)),
            enabled=True,
            created_at=now,
        )
        document: Document = {
            "_id": endpoint.endpoint_id,
            "tenant": tenant,
            "url": url,
            "event_types": list(endpoint.event_types),
            "secrets": [_secret_document(secret, self._box) for secret in endpoint.secrets],
            "status": ENABLED,
            "consecutive_failures": 0,
            "failing_since_ms": 0,
            "disabled_at_ms": 0,
            "disabled_reason": "",
            "created_at_ms": epoch_ms(now),
            "updated_at_ms": epoch_ms(now),
        }
        async with self._store.exclusive():
            await self._endpoints.insert_one(document)
        return endpoint

    async def list(self, tenant: str | None = None) -> builtins.list[WebhookEndpoint]:
        """Endpoints of ``tenant`` (of every tenant if None), oldest first."""
        query = {} if tenant is None else equals({"tenant": tenant})
        found = self._endpoints.find(query).sort([("created_at_ms", ASCENDING), ("_id", ASCENDING)])
        return [endpoint_from_document(doc, self._box) async for doc in found]

    async def get(self, endpoint_id: str, *, tenant: str | None = None) -> WebhookEndpoint | None:
        """The endpoint, or None if there is none with this id (or it is another tenant's)."""
        doc = await self._endpoints.find_one(self._filter(endpoint_id, tenant))
        return None if doc is None else endpoint_from_document(doc, self._box)

    async def endpoints_for(self, tenant: str, event_type: str) -> builtins.list[WebhookEndpoint]:
        """The enabled endpoints of ``tenant`` that receive ``event_type``, without their secrets
        (asked for every event; a call reads its endpoint, secrets and all, when it is sent)."""
        found = self._endpoints.find(
            equals({"tenant": tenant, "status": ENABLED}), {"secrets": False}
        ).sort([("created_at_ms", ASCENDING), ("_id", ASCENDING)])
        endpoints = [endpoint_from_document(doc, self._box) async for doc in found]
        return [endpoint for endpoint in endpoints if endpoint.accepts(event_type)]

    async def rotate_secret(
        self,
        endpoint_id: str,
        now: datetime,
        keep_previous_for: timedelta,
        *,
        tenant: str | None = None,
    ) -> WebhookEndpoint | None:
        """Give the endpoint a new secret (signing first from now on); the secrets it had keep
        signing until ``now + keep_previous_for`` (or their earlier expiry), then drop out.
        None if there is no such endpoint."""
        if keep_previous_for < timedelta(0):
            msg = "keep_previous_for cannot be negative"
            raise ValueError(msg)
        selector = self._filter(endpoint_id, tenant)
        until = now + keep_previous_for
        async with self._store.exclusive():
            doc = await self._endpoints.find_one(selector)
            if doc is None:
                return None
            current = endpoint_from_document(doc, self._box)
            kept = [
                WebhookSecret(
                    value=secret.value,
                    created_at=secret.created_at,
                    expires_at=min(until, secret.expires_at) if secret.expires_at else until,
                )
                for secret in current.secrets
                if secret.active_at(now) and keep_previous_for > timedelta(0)
            ]
            secrets = [WebhookSecret(value=new_secret(), created_at=now), *kept]
            updated = await self._endpoints.find_one_and_update(
                selector,
                {
                    "$set": {
                        "secrets": [_secret_document(secret, self._box) for secret in secrets],
                        "updated_at_ms": epoch_ms(now),
                    }
                },
                return_document=ReturnDocument.AFTER,
            )
        return None if updated is None else endpoint_from_document(updated, self._box)

    async def reseal(self, now: datetime) -> tuple[int, int]:
        """Seal every endpoint's secrets under the current key (after a key rotation, before the
        old key is dropped). Returns (endpoints resealed, endpoints with a secret no configured
        key opens — left as they are)."""
        resealed = unreadable = 0
        async for doc in self._endpoints.find({}, {"secrets": True, "updated_at_ms": True}):
            stored = list(doc.get("secrets", []))
            try:
                secrets = [_secret_from(secret, self._box) for secret in stored]
            except UnreadableSecret:
                unreadable += 1
                continue
            # Unless the endpoint changed since it was read (a rotation meanwhile wins).
            written = int(doc.get("updated_at_ms") or 0)
            async with self._store.exclusive():
                result = await self._endpoints.update_one(
                    equals({"_id": str(doc["_id"]), "updated_at_ms": written}),
                    {
                        "$set": {
                            "secrets": [_secret_document(s, self._box) for s in secrets],
                            "updated_at_ms": max(epoch_ms(now), written + 1),
                        }
                    },
                )
            resealed += result.modified_count
        return resealed, unreadable

    async def set_enabled(
        self, endpoint_id: str, enabled: bool, now: datetime, *, tenant: str | None = None
    ) -> bool:
        """Enable (its failure count starting afresh) or disable the endpoint as its operator
        asks; False if there is no such endpoint."""
        if not enabled:
            changed = await self.disable(endpoint_id, now, DisabledReason.OPERATOR, tenant=tenant)
            return changed or await self.get(endpoint_id, tenant=tenant) is not None
        async with self._store.exclusive():
            result = await self._endpoints.update_one(
                self._filter(endpoint_id, tenant),
                {
                    "$set": {
                        "status": ENABLED,
                        "consecutive_failures": 0,
                        "failing_since_ms": 0,
                        "disabled_at_ms": 0,
                        "disabled_reason": "",
                        "updated_at_ms": epoch_ms(now),
                    }
                },
            )
        return result.matched_count == 1

    async def disable(
        self,
        endpoint_id: str,
        now: datetime,
        reason: DisabledReason,
        *,
        tenant: str | None = None,
    ) -> bool:
        """Disable the endpoint if it is enabled; True only for the call that disabled it (so
        exactly one caller tells the operator)."""
        selector = {**self._filter(endpoint_id, tenant), **equals({"status": ENABLED})}
        async with self._store.exclusive():
            result = await self._endpoints.update_one(
                selector,
                {
                    "$set": {
                        "status": DISABLED,
                        "disabled_at_ms": epoch_ms(now),
                        "disabled_reason": reason.value,
                        "updated_at_ms": epoch_ms(now),
                    }
                },
            )
        return result.modified_count == 1

    async def remove(self, endpoint_id: str, *, tenant: str | None = None) -> bool:
        """Delete the endpoint; False if there was none."""
        async with self._store.exclusive():
            result = await self._endpoints.delete_one(self._filter(endpoint_id, tenant))
        return result.deleted_count == 1

    async def record_success(self, endpoint_id: str, now: datetime) -> None:
        """A delivery to the endpoint succeeded: its run of failures ends (written only if it
        had one, so a healthy endpoint costs no write per message)."""
        key = canonical_id(endpoint_id)
        if key is None:
            return
        async with self._store.exclusive():
            await self._endpoints.update_one(
                {**equals({"_id": key}), "consecutive_failures": {"$gt": 0}},
                {
                    "$set": {
                        "consecutive_failures": 0,
                        "failing_since_ms": 0,
                        "updated_at_ms": epoch_ms(now),
                    }
                },
            )

    async def record_failure(
        self, endpoint_id: str, now: datetime, policy: DisablePolicy
    ) -> WebhookEndpoint | None:
        """A delivery to the endpoint failed: count it, and disable the endpoint if ``policy``
        says so. The endpoint as disabled if this failure disabled it (exactly one caller gets
        it, to tell the operator), else None."""
        key = canonical_id(endpoint_id)
        if key is None:
            return None
        now_ms = epoch_ms(now)
        async with self._store.exclusive():
            doc = await self._endpoints.find_one_and_update(
                equals({"_id": key}),
                {"$inc": {"consecutive_failures": 1}, "$set": {"updated_at_ms": now_ms}},
                return_document=ReturnDocument.AFTER,
            )
            if doc is None:
                return None
            if not doc.get("failing_since_ms"):
                # The first failure of a run: it starts now (unless another writer set it).
                started = await self._endpoints.find_one_and_update(
                    equals({"_id": key, "failing_since_ms": 0}),
                    {"$set": {"failing_since_ms": now_ms}},
                    return_document=ReturnDocument.AFTER,
                )
                doc = started or await self._endpoints.find_one(equals({"_id": key}))
                if doc is None:
                    return None
        endpoint = endpoint_from_document(doc, self._box)
        if not endpoint.enabled or not policy.should_disable(
            endpoint.consecutive_failures, endpoint.failing_since, now
        ):
            return None
        if not await self.disable(key, now, DisabledReason.FAILING):
            return None
        return await self.get(key)

    def _filter(self, endpoint_id: str, tenant: str | None) -> Document:
        """The filter for one endpoint (of ``tenant`` if given); matches nothing for an id that
        is not a canonical UUID."""
        key = canonical_id(endpoint_id)
        fields: dict[str, Any] = {"_id": key if key is not None else ""}
        if tenant is not None:
            fields["tenant"] = tenant
        return equals(fields)
