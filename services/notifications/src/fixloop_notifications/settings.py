"""Settings of the notifications service (env prefix ``FIXLOOP_NOTIFICATIONS_``).

Every value has a safe default for the embedded stack: the local SMTP sink on
``DEV_PORTS.smtp`` and the service's own store. Production sets the relay's host, port,
credentials (from a Secret) and STARTTLS.
"""

from __future__ import annotations

from email.utils import parseaddr

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from fixloop_shared.default_ports import DEV_PORTS
from fixloop_shared.settings import ServiceSettings


class NotificationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="FIXLOOP_NOTIFICATIONS_", extra="ignore", populate_by_name=True
    )

    database: str = "fixloop_notifications"
    mongodb_uri: str = DEV_PORTS.mongodb_uri("notifications")
    health_port: int = Field(default=DEV_PORTS.health["notifications"], ge=0, le=65535)

    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=DEV_PORTS.smtp, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = Field(
        default=False, description="Require STARTTLS (true) or never upgrade (false)"
    )
    smtp_timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="Deadline of one delivery attempt"
    )
    mail_from: str = "Fixloop <no-reply@fixloop.local>"

    delivery_attempts: int = Field(
        default=4, ge=1, le=20, description="SMTP attempts per notification before it fails"
    )
    retry_base_seconds: float = Field(
        default=2.0, gt=0, le=600, description="Wait before the first retry; doubles each time"
    )
    retry_max_seconds: float = Field(default=60.0, gt=0, le=3600)
    delivery_concurrency: int = Field(
        default=4, ge=1, le=100, description="Notifications delivered at the same time"
    )
    delivery_batch_size: int = Field(
        default=50,
        ge=1,
        le=500,
        description="Pending notifications claimed and recorded together (each sent on its own)",
    )
    delivery_poll_seconds: float = Field(
        default=1.0, gt=0, le=60, description="How often pending deliveries are looked for"
    )
    shutdown_grace_seconds: float = Field(
        default=10.0, ge=0, le=120, description="How long shutdown waits for in-flight deliveries"
    )

    @field_validator("mail_from")
    @classmethod
    def _mail_from_has_address(cls, value: str) -> str:
        _, address = parseaddr(value)
        if "@" not in address or any(ch in value for ch in "\r\n"):
            msg = "mail_from must be an address like 'Fixloop <no-reply@example.com>'"
            raise ValueError(msg)
        return value
