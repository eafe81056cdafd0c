"""Settings of the notifications service (env prefix ``FIXLOOP_NOTIFICATIONS_``).

Every value has a safe default for the embedded stack: the local SMTP sink on
``DEV_PORTS.smtp`` and the service's own store. Production sets the relay's host, port,
credentials (from a Secret) and STARTTLS.
"""

from __future__ import annotations

from datetime import time
from email.utils import parseaddr
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from fixloop_notifications.adapters.secret_box import DEV_SECRET_KEY, KEY_MIN_LENGTH, SecretBox
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
        default=500,
        ge=1,
        le=10_000,
        description="Attempts per notification before it fails (the horizon usually comes first)",
    )
    retry_base_seconds: float = Field(
        default=5.0, gt=0, le=600, description="Wait before the first retry; doubles each time"
    )
    retry_max_seconds: float = Field(
        default=900.0, gt=0, le=6 * 3600, description="Longest wait between two attempts"
    )
    retry_horizon_seconds: float = Field(
        default=24 * 3600.0,
        gt=0,
        le=14 * 24 * 3600,
        description="How long a notification is retried before it is failed (retry by hand)",
    )
    delivery_concurrency: int = Field(
        default=4, ge=1, le=100, description="Notifications delivered at the same time"
    )
    delivery_batch_size: int = Field(
        default=8,
        ge=1,
        le=500,
        description="Pending notifications claimed and recorded together (each sent on its own)",
    )
    delivery_lease_margin_seconds: float = Field(
        default=15.0,
        ge=1,
        le=600,
        description="How long past an attempt's deadline a worker's lease lasts: a worker that "
        "died gives its deliveries back after deadline + margin",
    )
    delivery_poll_seconds: float = Field(
        default=1.0, gt=0, le=60, description="How often pending deliveries are looked for"
    )
    sms_api_url: str = Field(
        default=f"http://127.0.0.1:{DEV_PORTS.sms}",
        description="Base URL of the SMS provider's HTTP API (Twilio-style Messages resource)",
    )
    sms_account: str = "fixloop-dev"
    sms_token: SecretStr = SecretStr("dev-sms-token")
    sms_sender: str = Field(default="Fixloop", min_length=1, max_length=16)
    sms_max_segments: int = Field(default=3, ge=1, le=10)
    sms_timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_disable_after_failures: int = Field(
        default=20, ge=1, le=10_000, description="Consecutive failures before an endpoint stops"
    )
    webhook_disable_after_seconds: float = Field(
        default=24 * 3600.0,
        ge=0,
        le=30 * 24 * 3600,
        description="...and failing for at least this long",
    )

    links_host: str = Field(default="127.0.0.1", description="Interface of the public links")
    links_port: int = Field(
        default=DEV_PORTS.links, ge=0, le=65535, description="Port of the public links (survey)"
    )
    public_url: str = Field(
        default=f"http://127.0.0.1:{DEV_PORTS.links}",
        description="Base URL under which the public links are reached",
    )
    link_secret: SecretStr = Field(
        default=SecretStr("fixloop-dev-link-secret-change-me"),
        description="Key that signs survey, verify and unsubscribe links (a Secret in production)",
    )
    link_previous_secrets: tuple[SecretStr, ...] = Field(
        default=(),
        description="Earlier link secrets still accepted (JSON list), while links signed with "
        "them are out there: rotate by moving the old secret here",
    )
    webhook_allow_loopback: bool = Field(
        default=True,
        description="Allow webhook endpoints on localhost (the embedded stack); false in "
        "production, where endpoints on private or loopback addresses are refused",
    )
    webhook_secret_key: SecretStr = Field(
        default=SecretStr(DEV_SECRET_KEY),
        description="Key that seals the webhook endpoints' signing secrets in the store (at "
        "least 32 characters; a Secret in production)",
    )
    webhook_previous_secret_keys: tuple[SecretStr, ...] = Field(
        default=(),
        description="Earlier webhook secret keys (JSON list): secrets sealed under them are "
        "still read, and sealed under the current key when next written",
    )
    desks_file: Path | None = Field(
        default=None, description="YAML file of the tenants' dispatch desks"
    )
    quiet_hours_start: time = time(21, 0)
    quiet_hours_end: time = time(7, 0)

    shutdown_grace_seconds: float = Field(
        default=10.0, ge=0, le=120, description="How long shutdown waits for in-flight deliveries"
    )

    def secret_box(self) -> SecretBox:
        """The box that seals and opens webhook signing secrets with the configured keys."""
        keys = [self.webhook_secret_key, *self.webhook_previous_secret_keys]
        return SecretBox([key.get_secret_value() for key in keys])

    @field_validator("webhook_secret_key", "webhook_previous_secret_keys")
    @classmethod
    def _keys_are_long_enough(
        cls, value: SecretStr | tuple[SecretStr, ...]
    ) -> SecretStr | tuple[SecretStr, ...]:
        keys = value if isinstance(value, tuple) else (value,)
        if any(len(key.get_secret_value()) < KEY_MIN_LENGTH for key in keys):
            msg = f"a webhook secret key has at least {KEY_MIN_LENGTH} characters"
            raise ValueError(msg)
        return value

    @field_validator("mail_from")
    @classmethod
    def _mail_from_has_address(cls, value: str) -> str:
        _, address = parseaddr(value)
        if "@" not in address or any(ch in value for ch in "\r\n"):
            msg = "mail_from must be an address like 'Fixloop <no-reply@example.com>'"
            raise ValueError(msg)
        return value
