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

A host name is resolved at each attempt and the connection goes to an address that was checked
(:class:`PublicAddressesOnly`): a name that resolves to an internal address (private networks,
link-local cloud metadata, this machine unless loopback is allowed) is refused before anything is
sent, and a name that resolves differently a moment later (DNS rebinding) cannot redirect the
connection, because the address checked is the address connected to. TLS still verifies the
certificate against the host name.

When an attempt disables its endpoint the error raised is :class:`WebhookEndpointDisabled` (a
permanent :class:`DeliveryError`) carrying the endpoint as disabled: the caller tells the
tenant's operator (notice ``webhook_disabled``). Exactly one attempt disables an endpoint, so
the operator is told once, however many deliveries were failing beside it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import NoReturn, Protocol
from urllib.parse import urlsplit

import httpcore
import httpx

from fixloop_notifications.adapters.sms_http import read_bounded
from fixloop_notifications.domain.delivery import DeliveryError
from fixloop_notifications.domain.webhooks import (
    DisabledReason,
    DisablePolicy,
    InvalidEndpointUrl,
    OutgoingWebhook,
    WebhookEndpoint,
    refused_address,
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


Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Host name and port -> the IP addresses to try, in order."""


async def resolve_host(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to for a TCP connection (the system's resolver)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for *_, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def vetted_addresses(host: str, addresses: Iterable[str], *, allow_loopback: bool) -> list[str]:
    """``addresses`` (what ``host`` resolved to) if every one may be reached by a webhook, else
    :class:`httpcore.ConnectError` naming the first that may not."""
    found = list(addresses)
    if not found:
        msg = f"{host} resolves to no address"
        raise httpcore.ConnectError(msg)
    for text in found:
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError as exc:
            msg = f"{host} resolves to {text!r}, not an IP address"
            raise httpcore.ConnectError(msg) from exc
        refused = refused_address(address, allow_loopback=allow_loopback)
        if refused is not None:
            msg = f"{host} resolves to {address}, {refused}: refused"
            raise httpcore.ConnectError(msg)
    return found


class PublicAddressesOnly(httpcore.AsyncNetworkBackend):
    """A network backend that connects only to addresses a webhook may reach.

    The host is resolved here, every address it resolves to is checked (one internal address
    refuses the name: a public name does not point inside), and the connection is made to the
    checked address itself, so what was checked is what is reached."""

    def __init__(self, *, allow_loopback: bool, resolver: Resolver = resolve_host) -> None:
        self._allow_loopback = allow_loopback
        self._resolve = resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            resolved = await asyncio.wait_for(self._resolve(host, port), timeout)
        except (OSError, TimeoutError) as exc:
            msg = f"{host} could not be resolved: {exc}"
            raise httpcore.ConnectError(msg) from exc
        last: Exception | None = None
        for address in vetted_addresses(host, resolved, allow_loopback=self._allow_loopback):
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None  # noqa: S101 - vetted_addresses() returns at least one
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        del path, timeout, socket_options  # the interface httpcore calls; never connected
        msg = "webhooks are not sent to local sockets"
        raise httpcore.ConnectError(msg)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


async def address_refusal(
    url: str, *, allow_loopback: bool, resolver: Resolver = resolve_host, timeout: float = 5.0
) -> tuple[str | None, bool]:
    """Why calls to ``url`` would be refused by the addresses its host resolves to now (None if
    they would not), and whether it resolved at all (a name that does not resolve yet is not
    refused: each call checks again)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        resolved = await asyncio.wait_for(resolver(host, port), timeout)
    except (OSError, TimeoutError):
        return None, False
    try:
        vetted_addresses(host, resolved, allow_loopback=allow_loopback)
    except httpcore.ConnectError as exc:
        return str(exc), True
    return None, True


def webhook_client(
    timeout_seconds: float, *, allow_loopback: bool, resolver: Resolver = resolve_host
) -> httpx.AsyncClient:
    """The HTTP client webhooks are sent with: no redirects, no proxies from the environment,
    and connections only to checked public addresses (:class:`PublicAddressesOnly`)."""
    transport = httpx.AsyncHTTPTransport(retries=0)
    # httpx takes no network backend; its transport's pool is replaced by one with ours and the
    # same default TLS verification (a test fails if an upgrade changes how this is done).
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        network_backend=PublicAddressesOnly(allow_loopback=allow_loopback, resolver=resolver),
    )
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(timeout_seconds),
        follow_redirects=False,
        trust_env=False,
    )


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
        self._client = client or webhook_client(timeout_seconds, allow_loopback=allow_loopback)

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
