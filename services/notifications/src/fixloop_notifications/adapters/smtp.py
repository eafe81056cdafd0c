"""Sending e-mail through an SMTP relay (aiosmtplib), with failures sorted for retrying.

Permanent failures (5yz replies, a relay that cannot do what it is configured for) end a
delivery at once; transient ones (4yz replies, connection refused or lost, timeouts) are retried.
"""

from __future__ import annotations

import asyncio
from email.errors import MessageError

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
    ) -> None:
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout = timeout_seconds

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
                await aiosmtplib.send(
                    message,
                    sender=mail.sender.smtp_address,
                    recipients=[mail.recipient.smtp_address],
                    hostname=self._host,
                    port=self._port,
                    username=self._username,
                    password=self._password.get_secret_value() if self._password else None,
                    start_tls=self._starttls,
                    timeout=self._timeout,
                )
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
