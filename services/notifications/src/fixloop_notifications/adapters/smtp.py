"""Sending e-mail through an SMTP relay (aiosmtplib), with failures sorted for retrying.

Permanent failures (5yz replies, a relay that cannot do what it is configured for) end a
delivery at once; transient ones (4yz replies, connection refused or lost, timeouts) are retried.

Connections are reused: a sender keeps the connections of its finished sends open (a few, for a
short while, for a bounded number of messages each), since connecting and greeting cost more than
the message. A kept connection the relay has closed meanwhile is replaced once, silently; any
failed send closes its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from email.errors import MessageError
from email.message import EmailMessage

import aiosmtplib
from aiosmtplib import (
    SMTPException,
    SMTPRecipientsRefused,
    SMTPResponseException,
    SMTPServerDisconnected,
)
from pydantic import SecretStr

from fixloop_notifications.domain.delivery import DeliveryError, smtp_reply_is_permanent
from fixloop_notifications.domain.mail import OutgoingMail, build_email

IDLE_SECONDS = 10.0
"""How long a finished connection is kept for the next message (relays drop idle ones)."""
MESSAGES_PER_CONNECTION = 100


@dataclass
class _Connection:
    smtp: aiosmtplib.SMTP
    sent: int = 0
    idle_since: float = 0.0


class SmtpSender:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str | None = None,
        password: SecretStr | None = None,
        starttls: bool = False,
        timeout_seconds: float = 10.0,
        keep_connections: int = 4,
    ) -> None:
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout = timeout_seconds
        self._keep = keep_connections
        self._idle: list[_Connection] = []

    @property
    def relay(self) -> str:
        return f"{self._host}:{self._port}"

    async def send(self, mail: OutgoingMail) -> None:
        try:
            message = build_email(mail)
        except (ValueError, TypeError, MessageError) as exc:
            raise DeliveryError(f"message cannot be built: {exc}", permanent=True) from exc
        try:
            async with asyncio.timeout(self._timeout):
                await self._send(message, mail)
        except SMTPRecipientsRefused as exc:
            codes = [refused.code for refused in exc.recipients]
            detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            raise DeliveryError(
                f"recipient refused by {self.relay}: {detail}",
                permanent=all(smtp_reply_is_permanent(code) for code in codes),
            ) from exc
        except SMTPResponseException as exc:
            raise DeliveryError(
                f"{self.relay} replied {exc.code} {exc.message}",
                permanent=smtp_reply_is_permanent(exc.code),
            ) from exc
        except TimeoutError as exc:
            raise DeliveryError(
                f"{self.relay} did not answer within {self._timeout:g} s", permanent=False
            ) from exc
        except (OSError, SMTPServerDisconnected) as exc:
            raise DeliveryError(f"{self.relay} unreachable: {exc}", permanent=False) from exc
        except SMTPException as exc:
            # e.g. STARTTLS required but not offered: retrying the same relay cannot help.
            raise DeliveryError(f"{self.relay}: {exc}", permanent=True) from exc

    async def _send(self, message: EmailMessage, mail: OutgoingMail) -> None:
        kept = self._take_idle()
        if kept is not None:
            try:
                await self._transmit(kept, message, mail)
            except SMTPServerDisconnected:
                pass  # the relay closed the kept connection meanwhile: once more, on a new one
            else:
                return
        await self._transmit(await self._connect(), message, mail)

    async def _transmit(
        self, connection: _Connection, message: EmailMessage, mail: OutgoingMail
    ) -> None:
        try:
            await connection.smtp.send_message(
                message,
                sender=mail.sender.smtp_address,
                recipients=[mail.recipient.smtp_address],
            )
        except BaseException:
            await self._close(connection)
            raise
        connection.sent += 1
        await self._give_back(connection)

    async def _connect(self) -> _Connection:
        smtp = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            username=self._username,
            password=self._password.get_secret_value() if self._password else None,
            start_tls=self._starttls,
            timeout=self._timeout,
        )
        await smtp.connect()
        return _Connection(smtp)

    def _take_idle(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if now - connection.idle_since < IDLE_SECONDS and connection.smtp.is_connected:
                return connection
            self._discard(connection)
        return None

    async def _give_back(self, connection: _Connection) -> None:
        if connection.sent >= MESSAGES_PER_CONNECTION or len(self._idle) >= self._keep:
            await self._close(connection)
            return
        connection.idle_since = time.monotonic()
        self._idle.append(connection)

    async def _close(self, connection: _Connection) -> None:
        if not connection.smtp.is_connected:
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await connection.smtp.quit()
        connection.smtp.close()

    def _discard(self, connection: _Connection) -> None:
        if connection.smtp.is_connected:
            connection.smtp.close()

    async def close(self) -> None:
        """Close the kept connections (at shutdown)."""
        while self._idle:
            await self._close(self._idle.pop())
