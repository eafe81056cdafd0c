"""Settings of the sla service (environment variables prefixed ``FIXLOOP_SLA_``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from fixloop_shared.contracts import Milestone
from fixloop_shared.default_ports import DEV_PORTS
from fixloop_shared.settings import ServiceSettings
from fixloop_sla.domain import ClockPolicy, SlaPolicy

_YEAR_SECONDS = 366 * 24 * 3600


class SlaSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="FIXLOOP_SLA_", extra="ignore", populate_by_name=True
    )

    database: str = "fixloop_sla"
    mongodb_uri: str = DEV_PORTS.mongodb_uri("sla")
    health_port: int = Field(default=DEV_PORTS.health["sla"], ge=0, le=65535)

    dispatch_target_seconds: int = Field(
        default=7200,
        ge=1,
        le=_YEAR_SECONDS,
        description="How long after a work order is received a contractor must have accepted it",
    )
    dispatch_warning_before_seconds: int = Field(
        default=3600,
        ge=1,
        le=_YEAR_SECONDS,
        description="How long before the dispatch deadline the warning goes out",
    )
    scheduler_poll_seconds: float = Field(
        default=0.5, gt=0, le=60, description="How often the scheduler looks for due clocks"
    )
    scheduler_batch_size: int = Field(
        default=200, ge=1, le=10_000, description="Due clocks fired per store query"
    )
    scheduler_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="How long a pod holds the due clocks it claimed; a dead pod's clocks are "
        "fired by another pod after this",
    )
    late_after_seconds: float = Field(
        default=5.0,
        ge=0,
        le=86_400,
        description="A warning or breach firing later than this after its moment is flagged late",
    )
    metrics_refresh_seconds: float = Field(
        default=5.0, gt=0, le=3600, description="How often the clock gauges are recounted"
    )

    @model_validator(mode="after")
    def _warning_before_deadline(self) -> Self:
        if self.dispatch_warning_before_seconds >= self.dispatch_target_seconds:
            msg = (
                "dispatch_warning_before_seconds must be less than dispatch_target_seconds "
                f"({self.dispatch_warning_before_seconds} >= {self.dispatch_target_seconds})"
            )
            raise ValueError(msg)
        return self

    def sla_policy(self) -> SlaPolicy:
        return SlaPolicy.of(
            [
                ClockPolicy.of_seconds(
                    Milestone.DISPATCH_CONFIRMATION,
                    target_seconds=self.dispatch_target_seconds,
                    warning_before_seconds=self.dispatch_warning_before_seconds,
                )
            ]
        )

    @property
    def late_after(self) -> timedelta:
        return timedelta(seconds=self.late_after_seconds)
