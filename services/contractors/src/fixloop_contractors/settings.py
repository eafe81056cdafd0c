"""Settings of the contractors service (env vars ``FIXLOOP_CONTRACTORS_*``)."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic_settings import SettingsConfigDict

from fixloop_contractors.domain.deadlines import DispatchDeadlines
from fixloop_contractors.domain.dispatch import TenantPreferences
from fixloop_contractors.domain.quality import (
    DEFAULT_STANDARD_MINUTES,
    DEFAULT_TOO_FAST_RATIO,
    QualityRules,
    StandardTimes,
)
from fixloop_contractors.domain.scorecard import DEFAULT_COMPLETION_TARGETS, ScorecardPolicy
from fixloop_contractors.domain.scoring import ScoreWeights
from fixloop_shared.default_ports import DEV_PORTS
from fixloop_shared.grpc_edge.rate_limit import RateLimitSetting
from fixloop_shared.grpc_edge.settings import (
    GrpcApiSettings,
    grpc_port_field,
    grpc_rate_limit_field,
)
from fixloop_shared.vocabulary import Category, Priority

SERVICE = "contractors"

ContractorRef = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,127}$")]
Weight = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
EquipmentClassKey = Annotated[str, StringConstraints(pattern=r"^(\*|[a-z][a-z0-9_-]{1,39})$")]
StandardMinutes = Annotated[int, Field(ge=1, le=7 * 24 * 60)]
TargetHours = Annotated[float, Field(gt=0, le=366 * 24, allow_inf_nan=False)]


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


class ContractorsSettings(GrpcApiSettings):
    """Defaults fit the embedded stack that ``make run`` starts.

    The dispatch gRPC API's settings (``FIXLOOP_CONTRACTORS_GRPC_*``, and its callers in
    ``FIXLOOP_CONTRACTORS_PRINCIPALS``, as ``FIXLOOP_ORDERS_PRINCIPALS``) are the edge's
    (:class:`~fixloop_shared.grpc_edge.settings.GrpcApiSettings`); only operators may call
    ExplainDispatch.
    """

    model_config = SettingsConfigDict(
        env_prefix="FIXLOOP_CONTRACTORS_", extra="ignore", populate_by_name=True
    )

    mongodb_uri: str = DEV_PORTS.mongodb_uri(SERVICE)
    database: str = "fixloop_contractors"
    health_port: int = Field(default=DEV_PORTS.health[SERVICE], ge=0, le=65535)

    grpc_port: int = grpc_port_field(
        DEV_PORTS.contractors_grpc, "Port of the dispatch gRPC API (fixloop.v1.DispatchService)."
    )
    grpc_rate_limit: RateLimitSetting = grpc_rate_limit_field("20/second;600/minute")
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
    dispatch_escalate_after_seconds: int = Field(
        default=90 * 60,
        ge=1,
        le=30 * 24 * 3600,
        description=(
            "An order no contractor has taken this long after its first offer is escalated "
            "(fixloop.assignment.escalated.v1) to the operators' dispatch queue; its offers go "
            "on meanwhile. The default leaves 30 minutes of a 2-hour confirmation target."
        ),
    )
    emergency_dispatch_escalate_after_seconds: int = Field(
        default=20 * 60,
        ge=1,
        le=30 * 24 * 3600,
        description="As dispatch_escalate_after_seconds, for emergency orders.",
    )
    dispatch_time_limit_seconds: int = Field(
        default=4 * 3600,
        ge=1,
        le=30 * 24 * 3600,
        description=(
            "An order no contractor has taken this long after its first offer is reported "
            "unfilled (its open offers withdrawn) and waits for an operator, whatever rounds "
            "are left."
        ),
    )
    emergency_dispatch_time_limit_seconds: int = Field(
        default=3600,
        ge=1,
        le=30 * 24 * 3600,
        description="As dispatch_time_limit_seconds, for emergency orders.",
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

    standard_minutes: Annotated[
        dict[Category, dict[EquipmentClassKey, StandardMinutes]], Field(max_length=20)
    ] = Field(
        default_factory=dict,
        description=(
            "Standard minutes of work on site per category and equipment class, as JSON "
            '("*": every other class): {"breakdown": {"hvac": 90, "*": 60}}. A category given '
            "replaces that category's defaults; the others keep theirs (breakdown hvac and "
            "refrigeration 90, elevator 120, other 60; preventive hvac and refrigeration 60, "
            "elevator 90, other 45; inspection elevator 45, other 30; installation 120; "
            "safety 30)."
        ),
    )
    too_fast_ratio: float = Field(
        default=DEFAULT_TOO_FAST_RATIO,
        gt=0,
        le=1,
        description=(
            "A completion whose work took at most this share of its standard time raises a "
            "quality alert (one third: a 30-minute procedure done in 10 minutes)."
        ),
    )
    repeat_repair_window_days: int = Field(
        default=30,
        ge=1,
        le=366,
        description=(
            "A breakdown on the same equipment this many days after an earlier job there was "
            "completed is a repeat repair: a quality alert, and the earlier job is no first-time "
            "fix."
        ),
    )
    completion_target_hours: Annotated[dict[Priority, TargetHours], Field(max_length=4)] = Field(
        default_factory=dict,
        description=(
            "Hours from an order's receipt to its completion that the scorecard counts as "
            'within target, per priority, as JSON: {"emergency": 4, "high": 24, "normal": 72, '
            '"low": 168} (missing priorities keep these).'
        ),
    )
    scorecard_min_sample: int = Field(
        default=5,
        ge=1,
        le=1000,
        description=(
            "A scorecard measure counts in the contractor's quality score only with at least "
            "this many cases; with none, the contractor ranks as neutral."
        ),
    )
    scorecard_window: int = Field(
        default=100,
        ge=1,
        le=1000,
        description=(
            "A scorecard counts the contractor's most recent offers and jobs, this many of each."
        ),
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

    def scorecard_policy(self) -> ScorecardPolicy:
        """What contractors' scorecards are judged by."""
        targets = dict(DEFAULT_COMPLETION_TARGETS)
        targets.update({p: timedelta(hours=h) for p, h in self.completion_target_hours.items()})
        return ScorecardPolicy(min_sample=self.scorecard_min_sample, completion_targets=targets)

    def quality_rules(self) -> QualityRules:
        """What raises a quality alert."""
        minutes = {c: dict(table) for c, table in DEFAULT_STANDARD_MINUTES.items()}
        minutes.update({c: dict(table) for c, table in self.standard_minutes.items()})
        return QualityRules(
            standard_times=StandardTimes(minutes),
            too_fast_ratio=self.too_fast_ratio,
            repeat_window=timedelta(days=self.repeat_repair_window_days),
        )

    @property
    def offer_ttl(self) -> timedelta:
        return timedelta(seconds=self.offer_ttl_seconds)

    @property
    def emergency_offer_ttl(self) -> timedelta:
        return timedelta(seconds=self.emergency_offer_ttl_seconds)

    def dispatch_deadlines(self) -> DispatchDeadlines:
        """When an untaken order is escalated, and when dispatch gives up on it."""
        return DispatchDeadlines(
            escalate_after=timedelta(seconds=self.dispatch_escalate_after_seconds),
            time_limit=timedelta(seconds=self.dispatch_time_limit_seconds),
            emergency_escalate_after=timedelta(
                seconds=self.emergency_dispatch_escalate_after_seconds
            ),
            emergency_time_limit=timedelta(seconds=self.emergency_dispatch_time_limit_seconds),
        )
