"""Sending SMS through an HTTP provider speaking the Twilio Messages API, failures sorted for
retrying.

``POST {base_url}/2010-04-01/Accounts/{account}/Messages.json`` with the form fields ``To``,
``From`` and ``Body``, HTTP basic auth (account, token), and ``Idempotency-Key: <message id>``
so a provider that honours it sends a message re-sent after a crash only once.

2xx: sent. 4xx: permanent (a bad number, bad credentials, a refused message), except 408
(request timeout), 409 (a request with the same idempotency key still in progress), 425 and 429
(too many requests), which are transient like 5xx, timeouts and connection errors. Anything else
(a redirect: the base URL is wrong) is permanent.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from fixloop_notifications.domain.delivery import DeliveryError
from fixloop_notifications.domain.sms import OutgoingSms

API_VERSION = "2010-04-01"
RESPONSE_MAX_BYTES = 16 * 1024
"""A provider's answer is read up to this size (its error detail, the message sid)."""
TRANSIENT_4XX = frozenset({408, 409, 425, 429})


def sms_status_is_permanent(status: int) -> bool:
    """Whether a provider answer ``status`` (not 2xx) means retrying cannot help."""
    return not (status in TRANSIENT_4XX or 500 <= status <= 599)


async def read_bounded(response: httpx.Response, limit: int) -> bytes:
    """At most ``limit`` bytes of a streamed response's body (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


def _provider_error(body: bytes) -> str:
    """The provider's error as one short phrase: Twilio answers ``{"code", "message"}``."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(data, dict):
        code, message = data.get("code"), data.get("message")
        if message:
            return f"{message} (code {code})" if code else str(message)
    return body[:200].decode("utf-8", "replace")


class HttpSmsSender:
    """An SMS provider reached over HTTP (Twilio-shaped API)."""

    def __init__(
        self,
        *,
        base_url: str,
        account: str,
        token: SecretStr | str,
        sender: str,
        timeout_seconds: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not base_url.startswith(("https://", "http://")):
            msg = f"SMS provider base URL must be http(s)://…: {base_url!r}"
            raise ValueError(msg)
        if not account:
            msg = "SMS provider account is empty"
            raise ValueError(msg)
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        self._account = account
        self.sender = sender
        """The default ``From`` (used when an :class:`OutgoingSms` names no sender)."""
        self._url = (
            f"{base_url.rstrip('/')}/{API_VERSION}/Accounts/{quote(account, safe='')}/Messages.json"
        )
        self._timeout = timeout_seconds
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds), follow_redirects=False
        )

    @property
    def provider(self) -> str:
        """Where messages go (for logs; no credentials in it)."""
        return httpx.URL(self._url).host or self._url

    async def send(self, sms: OutgoingSms) -> str | None:
        """Send ``sms``; the provider's message id (sid) if it named one.
        :class:`DeliveryError` if not sent."""
        form = {"To": sms.to, "From": sms.sender or self.sender, "Body": sms.text}
        try:
            async with asyncio.timeout(self._timeout):
                async with self._client.stream(
                    "POST",
                    self._url,
                    data=form,
                    auth=(self._account, self._token.get_secret_value()),
                    headers={"Idempotency-Key": sms.message_id, "Accept": "application/json"},
                    timeout=self._timeout,
                    follow_redirects=False,
                ) as response:
                    body = await read_bounded(response, RESPONSE_MAX_BYTES)
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise DeliveryError(
                f"SMS provider {self.provider} did not answer within {self._timeout:g} s",
                permanent=False,
            ) from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise DeliveryError(f"SMS provider URL unusable: {exc}", permanent=True) from exc
        except httpx.TransportError as exc:
            raise DeliveryError(
                f"SMS provider {self.provider} unreachable: {exc!r}", permanent=False
            ) from exc
        status = response.status_code
        if 200 <= status <= 299:
            return _sid_of(body)
        raise DeliveryError(
            f"SMS provider {self.provider} answered {status}: {_provider_error(body)}",
            permanent=sms_status_is_permanent(status),
        )

    async def close(self) -> None:
        """Close the HTTP client, if this sender made it (at shutdown)."""
        if self._owns_client:
            await self._client.aclose()


def _sid_of(body: bytes) -> str | None:
    try:
        data: Any = json.loads(body)
    except ValueError:
        return None
    sid = data.get("sid") if isinstance(data, dict) else None
    return sid if isinstance(sid, str) else None
