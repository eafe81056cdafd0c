"""Sending webhooks to tenant endpoints over HTTP, signed per Standard Webhooks.

Each attempt reads the endpoint from the registry, so it is signed with the secrets active at
that moment (a rotation takes effect at once) and goes to the endpoint's current URL. The body
is sent exactly as stored; ``webhook-id`` is the same on every attempt, ``webhook-timestamp``
is the attempt's. An attempt takes at most ``timeout_seconds`` in all (connecting, sending,
and reading at most 4 KiB of the answer), so a receiver answering drop by drop cannot hold it.

Outcomes, as :class:`DeliveryError` (``permanent`` = retrying cannot help):

- 2xx: sent; the endpoint's run of failures ends.
- the endpoint is disabled, removed, or its URL is no longer acceptable: permanent.
- 410 Gone: permanent, and the endpoint is disabled.
- anything else (3xx — redirects are not followed —, 4xx, 5xx, a timeout, a refused or lost
  connection): transient; the failure is counted on the endpoint, and when the
  :class:`DisablePolicy` says so the endpoint is disabled.

When an attempt disables its endpoint the error raised is :class:`WebhookEndpointDisabled` (a
permanent :class:`DeliveryError`) carrying the endpoint as disabled: the caller tells the
tenant's operator (notice ``webhook_disabled``). Exactly one attempt disables an endpoint, so
the operator is told once, however many deliveries were failing beside it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import NoReturn, Protocol

import httpx

from fixloop_notifications.adapters.sms_http import read_bounded
from fixloop_notifications.domain.delivery import DeliveryError
from fixloop_notifications.domain.webhooks import (
    DisabledReason,
    DisablePolicy,
    InvalidEndpointUrl,
    OutgoingWebhook,
    WebhookEndpoint,
    sign,
    validate_endpoint_url,
)

USER_AGENT = "Fixloop-Webhooks/1"
RESPONSE_MAX_BYTES = 4 * 1024
"""An endpoint's answer is read up to this size (a snippet of it goes into the error)."""
SNIPPET_CHARS = 120


class WebhookEndpoints(Protocol):
    """What sending needs of the endpoint registry
    (:class:`~fixloop_notifications.adapters.webhook_registry.MongoWebhookRegistry`)."""

    async def get(
        self, endpoint_id: str, *, tenant: str | None = None
    ) -> WebhookEndpoint | None: ...

    async def record_success(self, endpoint_id: str, now: datetime) -> None: ...

    async def record_failure(
        self, endpoint_id: str, now: datetime, policy: DisablePolicy
    ) -> WebhookEndpoint | None: ...

    async def disable(
        self,
        endpoint_id: str,
        now: datetime,
        reason: DisabledReason,
        *,
        tenant: str | None = None,
    ) -> bool: ...


class WebhookEndpointDisabled(DeliveryError):  # noqa: N818 - an outcome, raised as the error
    """This attempt's failure disabled the endpoint (persistent failure, or 410 Gone)."""

    def __init__(self, detail: str, *, endpoint: WebhookEndpoint) -> None:
        super().__init__(detail, permanent=True)
        self.endpoint = endpoint


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _snippet(body: bytes) -> str:
    text = " ".join(body.decode("utf-8", "replace").split())
    return text[:SNIPPET_CHARS] + ("…" if len(text) > SNIPPET_CHARS else "")


class WebhookSender:
    """Delivers :class:`OutgoingWebhook` messages to their endpoints."""

    def __init__(
        self,
        registry: WebhookEndpoints,
        client: httpx.AsyncClient | None = None,
        *,
        timeout_seconds: float = 10.0,
        disable_policy: DisablePolicy | None = None,
        clock: Callable[[], datetime] = _utc_now,
        allow_loopback: bool = True,
    ) -> None:
        self._registry = registry
        self._timeout = timeout_seconds
        self._policy = disable_policy or DisablePolicy()
        self._clock = clock
        self._allow_loopback = allow_loopback
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds), follow_redirects=False
        )

    async def send(self, webhook: OutgoingWebhook) -> None:
        """One attempt at ``webhook``; :class:`DeliveryError` (or
        :class:`WebhookEndpointDisabled`) if it was not delivered."""
        endpoint = await self._registry.get(webhook.endpoint_id)
        if endpoint is None:
            msg = f"webhook endpoint {webhook.endpoint_id} was removed"
            raise DeliveryError(msg, permanent=True)
        if not endpoint.enabled:
            reason = endpoint.disabled_reason.value if endpoint.disabled_reason else "disabled"
            msg = f"webhook endpoint {endpoint.url} is disabled ({reason})"
            raise DeliveryError(msg, permanent=True)
        try:
            validate_endpoint_url(endpoint.url, allow_loopback=self._allow_loopback)
        except InvalidEndpointUrl as exc:
            raise DeliveryError(f"webhook endpoint refused: {exc}", permanent=True) from exc
        now = self._clock()
        secrets = endpoint.active_secrets(now)
        if not secrets:
            msg = f"webhook endpoint {endpoint.url} has no active signing secret"
            raise DeliveryError(msg, permanent=True)
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            **sign(webhook, secrets, now),
        }
        try:
            async with asyncio.timeout(self._timeout):
                async with self._client.stream(
                    "POST",
                    endpoint.url,
                    content=webhook.body.encode("utf-8"),
                    headers=headers,
                    timeout=self._timeout,
                    follow_redirects=False,
                ) as response:
                    body = await read_bounded(response, RESPONSE_MAX_BYTES)
        except (httpx.TimeoutException, TimeoutError) as exc:
            await self._failed(
                endpoint, f"{endpoint.url} did not answer within {self._timeout:g} s", exc
            )
        except httpx.TransportError as exc:
            await self._failed(endpoint, f"{endpoint.url} unreachable: {exc!r}", exc)
        status = response.status_code
        if 200 <= status <= 299:
            await self._registry.record_success(endpoint.endpoint_id, self._clock())
            return
        detail = f"{endpoint.url} answered {status}"
        if snippet := _snippet(body):
            detail = f"{detail}: {snippet}"
        if status == 410:
            if await self._registry.disable(
                endpoint.endpoint_id, self._clock(), DisabledReason.GONE
            ):
                disabled = await self._registry.get(endpoint.endpoint_id) or endpoint
                raise WebhookEndpointDisabled(
                    f"{detail} (endpoint gone; disabled)", endpoint=disabled
                )
            raise DeliveryError(detail, permanent=True)
        await self._failed(endpoint, detail, None)

    async def _failed(
        self, endpoint: WebhookEndpoint, detail: str, cause: BaseException | None
    ) -> NoReturn:
        """Count a failed attempt on the endpoint and raise its error."""
        disabled = await self._registry.record_failure(
            endpoint.endpoint_id, self._clock(), self._policy
        )
        if disabled is not None:
            raise WebhookEndpointDisabled(
                f"{detail} (failing {disabled.consecutive_failures} times; endpoint disabled)",
                endpoint=disabled,
            ) from cause
        raise DeliveryError(detail, permanent=False) from cause

    async def close(self) -> None:
        """Close the HTTP client, if this sender made it (at shutdown)."""
        if self._owns_client:
            await self._client.aclose()
