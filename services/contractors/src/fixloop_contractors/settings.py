"""Settings of the contractors service (env vars ``FIXLOOP_CONTRACTORS_*``)."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic_settings import SettingsConfigDict

from fixloop_contractors.domain.dispatch import TenantPreferences
from fixloop_contractors.domain.scoring import ScoreWeights
from fixloop_shared.default_ports import DEV_PORTS
from fixloop_shared.settings import ServiceSettings

SERVICE = "contractors"

ContractorRef = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,127}$")]
Weight = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]


class Weights(BaseModel):
    """How much each score component counts when eligible contractors are ranked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    travel: Weight = 1.0
    load: Weight = 0.5
    skill: Weight = 0.25
    scorecard: Weight = 0.5
    preference: Weight = 0.25
    on_call: Weight = 0.5
    travel_scale_km: Annotated[float, Field(gt=0, le=10_000, allow_inf_nan=False)] = 25.0
    load_scale: Annotated[float, Field(gt=0, le=1_000, allow_inf_nan=False)] = 2.0

    def score_weights(self) -> ScoreWeights:
        return ScoreWeights(**self.model_dump())


class Preferences(BaseModel):
    """One tenant's preferred and blocked contractors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preferred: Annotated[list[ContractorRef], Field(max_length=1000)] = Field(default_factory=list)
    blocked: Annotated[list[ContractorRef], Field(max_length=1000)] = Field(default_factory=list)

    def tenant_preferences(self) -> TenantPreferences:
        return TenantPreferences(
            preferred=frozenset(self.preferred), blocked=frozenset(self.blocked)
        )


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
    emergency_offer_ttl_seconds: int = Field(
        default=600,
        ge=1,
        le=7 * 24 * 3600,
        description="How long a contractor has to answer an offer of an emergency order.",
    )
    emergency_fan_out: int = Field(
        default=3,
        ge=1,
        le=20,
        description=(
            "An emergency is offered to this many of the best contractors at once; the first "
            "to accept takes it and the others' offers are withdrawn."
        ),
    )
    dispatch_max_rounds: int = Field(
        default=5,
        ge=1,
        le=100,
        description=(
            "How many offers of one work order are made one after the other (each declined or "
            "run out) before it is reported unfilled and waits for an operator."
        ),
    )
    offer_expiry_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often offers that ran out are looked for (they also wake the sweep).",
    )
    credential_alert_morning: time = Field(
        default=time(8, 0),
        description=(
            "The contractor's local time of day (HH:MM, its own time zone) at which credential "
            "alerts are due: 30 and 7 days before a credential expires, and the day after."
        ),
    )
    credential_alert_poll_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="How often credential alerts that fell due are looked for.",
    )

    score_weights: Weights = Field(
        default_factory=Weights,
        description=(
            "Weights of the ranking's components, as JSON: "
            '{"travel": 1.0, "load": 0.5, "skill": 0.25, "scorecard": 0.5, "preference": 0.25, '
            '"on_call": 0.5, "travel_scale_km": 25, "load_scale": 2}; missing keys keep these.'
        ),
    )
    tenant_preferences: Annotated[dict[str, Preferences], Field(max_length=10_000)] = Field(
        default_factory=dict,
        description=(
            "Each tenant's preferred and blocked contractors, as JSON: "
            '{"acme": {"preferred": ["ctr-a"], "blocked": ["ctr-b"]}}. Preferred ones score '
            "higher; blocked ones are never offered the tenant's orders."
        ),
    )

    @property
    def offer_ttl(self) -> timedelta:
        return timedelta(seconds=self.offer_ttl_seconds)

    @property
    def emergency_offer_ttl(self) -> timedelta:
        return timedelta(seconds=self.emergency_offer_ttl_seconds)
