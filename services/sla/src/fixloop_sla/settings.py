"""Settings of the sla service (environment variables prefixed ``FIXLOOP_SLA_``)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from fixloop_shared.default_ports import DEV_PORTS
from fixloop_shared.grpc_edge.rate_limit import RateLimitSetting
from fixloop_shared.grpc_edge.settings import (
    GrpcApiSettings,
    grpc_port_field,
    grpc_rate_limit_field,
)


class SlaSettings(GrpcApiSettings):
    """Defaults fit the embedded stack that ``make run`` starts.

    The SLA figures themselves (targets, calendars, thresholds) are a policy in the service's
    store (``fixloop sla policy import FILE``); the standard policy applies until one is imported.
    The operators' gRPC API (``fixloop.v1.SlaService``) takes the edge's settings
    (``FIXLOOP_SLA_GRPC_*``, callers in ``FIXLOOP_SLA_PRINCIPALS``).
    """

    model_config = SettingsConfigDict(
        env_prefix="FIXLOOP_SLA_", extra="ignore", populate_by_name=True
    )

    database: str = "fixloop_sla"
    mongodb_uri: str = DEV_PORTS.mongodb_uri("sla")
    health_port: int = Field(default=DEV_PORTS.health["sla"], ge=0, le=65535)
    grpc_port: int = grpc_port_field(
        DEV_PORTS.sla_grpc, "Port of the operators' SLA gRPC API (fixloop.v1.SlaService)."
    )
    grpc_rate_limit: RateLimitSetting = grpc_rate_limit_field("20/second;600/minute")

    outbox_batch_size: int = Field(
        default=1000,
        ge=1,
        le=5000,
        description="Outbox records the relay publishes in one round (thousands of clocks can "
        "come due in the same second)",
    )
    late_after_seconds: float = Field(
        default=5.0,
        ge=0,
        le=86_400,
        description="A warning, breach or escalation firing later than this after its moment is "
        "flagged late",
    )
    timer_batch_size: int = Field(
        default=2_000,
        ge=1,
        le=50_000,
        description="Due orders settled per store transaction when many clocks fire at once",
    )
    timer_horizon_seconds: float = Field(
        default=7_200,
        gt=0,
        le=30 * 86_400,
        description="How far ahead due clocks are held in memory; later ones are read from the "
        "store as their time comes nearer",
    )
    timer_read_ahead_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="How long before their moment due orders are read from the store (at most "
        "50,000 held), so that thousands due at once are fired without reading them then",
    )
    policy_refresh_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="How often a newly imported policy is looked for",
    )

    @property
    def late_after(self) -> timedelta:
        return timedelta(seconds=self.late_after_seconds)
