"""How eligible contractors are ranked: a score with named components, weighted.

Each component is a number from 0 (worst) to 1 (best):

- **travel**: ``scale / (scale + km)`` for the distance from the contractor's base to the site,
  great-circle when both have coordinates; otherwise estimated from how specific the contractor's
  postal prefix for the site is (:attr:`ScoreWeights.postal_prefix_km`).
- **load**: with a capacity, the share of it still free (``1 - (open jobs + open offers) /
  capacity``); without one, ``scale / (scale + open jobs + open offers)``.
- **skill**: the contractor's level for the equipment class, 1..5 mapped onto 0..1.
- **scorecard**: the contractor's measured quality, 0..1, as given (neutral when unknown).
- **preference**: 1 for a contractor the tenant prefers, else 0.
- **on_call**: 1 when on call in its primary rota layer, 0 when only in its backup layer.

The total is the weighted sum, in that order. Higher is better; equal totals are ordered by
contractor id. As the weights are not negative and each component is at most 1, a total is at
most the weighted sum of what is known of its components and the weights of the others: a
dispatch decision uses that to leave unscored the candidates that cannot be offered the order.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum
from typing import NamedTuple

from fixloop_contractors.domain.model import MAX_SKILL_LEVEL, MIN_SKILL_LEVEL

NEUTRAL_SCORECARD = 0.5
"""The scorecard of a contractor not measured yet: neither rewarded nor penalised."""


class TravelBasis(StrEnum):
    """How a candidate's travel distance was found."""

    GREAT_CIRCLE = "great_circle"
    """From the contractor's base coordinates to the site's."""
    POSTAL_PREFIX = "postal_prefix"
    """Estimated from the length of the contractor's postal prefix matching the site."""


@dataclass(frozen=True, slots=True)
class ScoreWeights:
    """The weight of each score component, and the scales the components are read on."""

    travel: float = 1.0
    load: float = 0.5
    skill: float = 0.25
    scorecard: float = 0.5
    preference: float = 0.25
    on_call: float = 0.5
    travel_scale_km: float = 25.0
    """The distance at which the travel component is one half."""
    load_scale: float = 2.0
    """Without a capacity: the open jobs plus offers at which the load component is one half."""
    postal_prefix_km: tuple[float, ...] = (300.0, 150.0, 50.0, 15.0, 5.0, 2.0)
    """Assumed distance by matching postal prefix length (0: a whole-country region, ...); the
    last entry holds for every longer prefix."""

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            values = value if isinstance(value, tuple) else (value,)
            if not all(v >= 0 for v in values):
                msg = f"score weight {item.name} must not be negative: {value}"
                raise ValueError(msg)
        if self.travel_scale_km <= 0 or self.load_scale <= 0:
            msg = "the travel and load scales must be positive"
            raise ValueError(msg)
        if not self.postal_prefix_km:
            msg = "postal_prefix_km needs at least one distance"
            raise ValueError(msg)

    @property
    def component_weights(self) -> tuple[float, float, float, float, float, float]:
        """The weights of travel, load, skill, scorecard, preference and on_call, in that order."""
        return (self.travel, self.load, self.skill, self.scorecard, self.preference, self.on_call)

    @property
    def largest_total(self) -> float:
        """The total of a candidate with every component at its best (1)."""
        return sum(self.component_weights)

    def postal_estimate_km(self, match_length: int) -> float:
        """The distance assumed for a site matched by a postal prefix of ``match_length``."""
        table = self.postal_prefix_km
        return table[min(match_length, len(table) - 1)]

    def travel_score(self, km: float) -> float:
        return self.travel_scale_km / (self.travel_scale_km + km)

    def load_score(self, load: int, capacity: int | None) -> float:
        if capacity:
            return max(0.0, 1.0 - load / capacity)
        return self.load_scale / (self.load_scale + load)

    def total(
        self,
        *,
        travel: float,
        load: float,
        skill: float,
        scorecard: float,
        preference: float,
        on_call: float,
    ) -> float:
        """The weighted sum of the components."""
        return (
            self.travel * travel
            + self.load * load
            + self.skill * skill
            + self.scorecard * scorecard
            + self.preference * preference
            + self.on_call * on_call
        )


def skill_score(level: int) -> float:
    """A skill level mapped onto 0..1."""
    return (level - MIN_SKILL_LEVEL) / (MAX_SKILL_LEVEL - MIN_SKILL_LEVEL)


class Score(NamedTuple):
    """A candidate's score: each named component (0..1, higher is better) and the weighted total."""

    total: float
    travel: float
    load: float
    skill: float
    scorecard: float
    preference: float
    on_call: float

    def components(self) -> dict[str, float]:
        """Each component by name, before weighting."""
        return {
            "travel": self.travel,
            "load": self.load,
            "skill": self.skill,
            "scorecard": self.scorecard,
            "preference": self.preference,
            "on_call": self.on_call,
        }

    def weighted(self, weights: ScoreWeights) -> dict[str, float]:
        """What each component adds to the total under ``weights``."""
        return {
            "travel": weights.travel * self.travel,
            "load": weights.load * self.load,
            "skill": weights.skill * self.skill,
            "scorecard": weights.scorecard * self.scorecard,
            "preference": weights.preference * self.preference,
            "on_call": weights.on_call * self.on_call,
        }


__all__ = [
    "NEUTRAL_SCORECARD",
    "Score",
    "ScoreWeights",
    "TravelBasis",
    "skill_score",
]
