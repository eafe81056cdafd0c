"""Settings of the contractors service (env vars ``FIXLOOP_CONTRACTORS_*``)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from fixloop_shared.default_ports import DEV_PORTS
from fixloop_shared.settings import ServiceSettings

SERVICE = "contractors"


class ContractorsSettings(ServiceSettings):
    """Defaults fit the embedded stack that ``make run`` starts."""

    model_config = SettingsConfigDict(
        env_prefix="FIXLOOP_CONTRACTORS_", extra="ignore", populate_by_name=True
    )

    mongodb_uri: str = DEV_PORTS.mongodb_uri(SERVICE)
    database: str = "fixloop_contractors"
    health_port: int = Field(default=DEV_PORTS.health[SERVICE], ge=0, le=65535)
    offer_ttl_seconds: int = Field(
        default=1800,
        ge=1,
        le=7 * 24 * 3600,
        description="How long a contractor has to answer an offer before it times out.",
    )

    @property
    def offer_ttl(self) -> timedelta:
        return timedelta(seconds=self.offer_ttl_seconds)
