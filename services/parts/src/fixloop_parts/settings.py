"""Settings of the parts service (environment variables prefixed ``FIXLOOP_PARTS_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from fixloop_parts.domain import DEFAULT_MAX_SOURCES
from fixloop_shared.default_ports import DEV_PORTS
from fixloop_shared.settings import ServiceSettings


class PartsSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="FIXLOOP_PARTS_", extra="ignore", populate_by_name=True
    )

    database: str = "fixloop_parts"
    mongodb_uri: str = DEV_PORTS.mongodb_uri("parts")
    health_port: int = Field(default=DEV_PORTS.health["parts"], ge=0, le=65535)

    max_warehouses_per_part: int = Field(
        default=DEFAULT_MAX_SOURCES,
        ge=1,
        le=DEFAULT_MAX_SOURCES,
        description=(
            "How many warehouses one required part may be split across "
            "(1 = never split; at most 3 so that a reservation event stays within its contract)"
        ),
    )
    reservation_attempts: int = Field(
        default=10,
        ge=1,
        le=100,
        description=(
            "How often a reservation is re-planned when the stock changed under it "
            "(another process reserved or counted the same stock) before the event is retried"
        ),
    )
    store_timeout_seconds: float = Field(
        default=5.0, gt=0, le=120, description="How long the CLI waits for the parts store"
    )
