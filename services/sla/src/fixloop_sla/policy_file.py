"""The SLA policy file that ``fixloop sla policy import`` reads (YAML or JSON).

Format (see ``examples/sla-policy.yaml``, which documents every field)::

    name: standard                       # slug: lower-case letters, digits, - and _
    timezone: UTC                        # optional IANA zone for orders whose site names none
    allowed_lateness: 7d                 # optional; events older than this move no clock
    calendars:                           # optional; the 24x7 calendar always exists
      - name: business-hours
        hours:
          - {days: weekdays, from: "08:00", to: "18:00"}
        holidays:                        # whole days, or part of a day with from/to
          - {date: 2026-12-25, name: Christmas Day}
          - {date: 2026-12-24, from: "12:00", name: Christmas Eve afternoon}
        holidays_ical: holidays/de-be.ics   # optional, relative to the policy file
        special_days:                    # extra working hours (a Saturday that is worked)
          - {date: 2026-12-19, from: "09:00", to: "13:00"}
        version: "2026-1"                # optional; change it when the content changes
    clocks:
      - clock: arrival                   # a milestone (fixloop_shared.vocabulary.Milestone)
        warning_before: 1h               # optional: the warning's lead before the deadline
        escalations:                     # optional: levels 1, 2, ... after the breach
          - {after: 1h, audience: operator}
          - {after: 4h, audience: account_manager}
        pause_when: [customer_wait]      # optional: customer_wait, awaiting_parts
        on_reopen: new_cycle             # optional: new_cycle (default), resume, ignore
        goals:                           # the first goal that fits the order applies
          - {priority: emergency, target: 2h, warning_before: 30m}
          - {priority: low, target: 16h, calendar: business-hours}
          - {target: 4h}                 # the last goal matches every order
          - ...                          # target: null means "not timed"

Durations are written with units: ``2h``, ``30m``, ``1h30m``, ``45s``, ``3d`` (a ``d`` is 24 hours
of counted time: on a business-hours calendar ``3d`` is 72 business hours, not three working
days). Times of day are ``"HH:MM"`` in quotes (YAML reads an unquoted ``08:00`` as the number
480); ``"24:00"`` is midnight at the end of the day.

Validation is strict: unknown fields, wrong types (``2`` where ``"2h"`` is meant), duplicate keys,
YAML aliases and anything beyond the limits below are refused. Every problem is reported as one
line naming its location, e.g.
``clocks[2].goals[0].target: "2 hours" is not a duration (use e.g. 2h, 90m, 1h30m, 45s)``.

The canonical document of a policy (:func:`policy_document`) is the form a policy version is
stored in: JSON-able, normalised (durations in hours, minutes and seconds; defaults written out)
and self-contained (the holidays of an iCalendar file are listed in it), so a stored version never
depends on a file that may change later.
"""

from __future__ import annotations

import difflib
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from fixloop_shared.documents import DocumentSyntaxError, load_document
from fixloop_shared.vocabulary import Category, Milestone, Priority
from fixloop_sla.domain.calendar import (
    TWENTY_FOUR_SEVEN,
    BusinessCalendar,
    Holiday,
    InvalidCalendarError,
    SpecialWorkingDay,
    WorkingHours,
    holidays_from_ical,
)
from fixloop_sla.domain.policy import (
    DEFAULT_ALLOWED_LATENESS,
    ClockDefinition,
    Goal,
    GoalMatch,
    InvalidPolicyError,
    PauseReason,
    ReopenRule,
    SlaPolicy,
    Threshold,
    ThresholdKind,
)

__all__ = [
    "MAX_CALENDARS",
    "MAX_CLOCKS",
    "MAX_ESCALATIONS",
    "MAX_FILE_BYTES",
    "MAX_GOALS",
    "MAX_HOLIDAYS",
    "InvalidPolicyFile",
    "format_duration",
    "load_policy_file",
    "parse_duration",
    "parse_policy",
    "policy_document",
]

MAX_FILE_BYTES = 1_048_576
"""A policy file (and an iCalendar file it references) is at most 1 MiB."""
MAX_CLOCKS = 50
MAX_GOALS = 200
"""Goals per clock."""
MAX_CALENDARS = 20
MAX_HOLIDAYS = 2000
"""Holidays per calendar, those of its iCalendar file included."""
MAX_SPECIAL_DAYS = 2000
MAX_HOURS = 50
"""Weekly working-hour entries per calendar."""
MAX_ESCALATIONS = 20
MAX_DURATION = timedelta(days=366)
MAX_NAME = 200
"""Characters in a holiday's name."""

_DURATION_HINT = "use e.g. 2h, 90m, 1h30m, 45s"
_DURATION = re.compile(r"(?:(\d{1,6})d)?(?:(\d{1,6})h)?(?:(\d{1,6})m)?(?:(\d{1,6})s)?")
_CLOCK_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_POLICY_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_CALENDAR_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_AUDIENCE = re.compile(r"[a-z][a-z0-9_-]{0,39}")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
_TENANT = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
"""As ``fixloop_shared.contracts.types.TenantId``."""
_EQUIPMENT_CLASS = re.compile(r"[a-z][a-z0-9_-]{1,39}")
"""As ``fixloop_shared.contracts.types.EquipmentClass`` (the class a work order carries)."""

_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_SHORTHANDS: dict[str, tuple[int, ...]] = {
    "weekdays": (0, 1, 2, 3, 4),
    "weekends": (5, 6),
    "every_day": (0, 1, 2, 3, 4, 5, 6),
}


class InvalidPolicyFile(ValueError):  # noqa: N818 - the name the SLA tooling speaks of
    """A policy file (or document) that cannot be used; the message is one line: where and why."""


def _fail(location: str, problem: str) -> InvalidPolicyFile:
    return InvalidPolicyFile(_one_line(f"{location}: {problem}"))


def _one_line(text: str, limit: int = 400) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _shown(value: object) -> str:
    """A short, printable rendering of an input value for an error message."""
    if isinstance(value, str):
        return json.dumps(value if len(value) <= 60 else value[:57] + "...", ensure_ascii=True)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        text = repr(value)
        return text if len(text) <= 30 else text[:27] + "..."
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


# -- durations and times ----------------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """A duration written with units (``2h``, ``30m``, ``1h30m``, ``45s``, ``3d``); ValueError."""
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        msg = f"{_shown(text)} is not a duration ({_DURATION_HINT})"
        raise ValueError(msg)
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The canonical text of a duration: hours, minutes and seconds (``48h``, ``1h30m``, ``0s``)."""
    if delta < timedelta(0) or delta.microseconds:
        msg = f"{delta} cannot be written as a policy duration (whole seconds, not negative)"
        raise ValueError(msg)
    total = int(delta.total_seconds())
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    text = "".join(
        f"{amount}{unit}"
        for amount, unit in ((hours, "h"), (minutes, "m"), (seconds, "s"))
        if amount
    )
    return text or "0s"


def _duration(value: object, *, positive: bool) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, str):
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise PydanticCustomError(
                "duration_type",
                "{shown} is not a duration; write it with a unit ({hint})",
                {"shown": _shown(value), "hint": _DURATION_HINT},
            )
        raise PydanticCustomError(
            "duration_type",
            "expected a duration ({hint}), not {shown}",
            {"shown": _shown(value), "hint": _DURATION_HINT},
        )
    try:
        delta = parse_duration(value)
    except ValueError as exc:
        raise PydanticCustomError("duration_parsing", "{error}", {"error": str(exc)}) from None
    if positive and delta <= timedelta(0):
        raise PydanticCustomError("duration_positive", "must be longer than 0s")
    if delta > MAX_DURATION:
        raise PydanticCustomError(
            "duration_too_long",
            "{shown} is longer than the limit of {limit}",
            {"shown": _shown(value), "limit": "366d"},
        )
    return delta


def _positive_duration(value: object) -> timedelta:
    return _duration(value, positive=True)


def _any_duration(value: object) -> timedelta:
    return _duration(value, positive=False)


def _optional_target(value: object) -> timedelta | None:
    return None if value is None else _duration(value, positive=True)


def format_time(moment: time, *, end: bool = False) -> str:
    """``HH:MM`` (``HH:MM:SS`` with seconds); an end at midnight is ``24:00``."""
    if moment.microsecond or moment.tzinfo is not None:
        msg = f"{moment.isoformat()} cannot be written as a policy time (whole seconds, no zone)"
        raise ValueError(msg)
    if end and moment == time(0):
        return "24:00"
    return moment.strftime("%H:%M:%S" if moment.second else "%H:%M")


def _clock_time(value: object, *, end: bool) -> time:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        # YAML 1.1 reads an unquoted 19:00 as the sexagesimal number 19 * 60 + 0 = 1140.
        raise PydanticCustomError(
            "time_type",
            'expected a time written "HH:MM" in quotes (YAML read {shown} as the number {value})',
            {"shown": f"{value // 60:02d}:{value % 60:02d}", "value": value},
        )
    if isinstance(value, str):
        if end and value == "24:00":
            return time(0)
        if match := _CLOCK_TIME.fullmatch(value):
            return time(int(match[1]), int(match[2]), int(match[3] or 0))
    raise PydanticCustomError(
        "time_parsing",
        'expected a time of day written "HH:MM" (00:00 to {last}), not {shown}',
        {"last": "24:00" if end else "23:59", "shown": _shown(value)},
    )


def _start_time(value: object) -> time:
    return _clock_time(value, end=False)


def _end_time(value: object) -> time:
    return _clock_time(value, end=True)


def _calendar_date(value: object) -> date:
    if isinstance(value, datetime):
        raise PydanticCustomError("date_type", "expected a date (YYYY-MM-DD), not a date and time")
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise PydanticCustomError(
                "date_parsing",
                "{shown} is not a date: {error}",
                {"shown": _shown(value), "error": str(exc)},
            ) from None
    raise PydanticCustomError(
        "date_type", "expected a date written YYYY-MM-DD, not {shown}", {"shown": _shown(value)}
    )


# -- names and choices ------------------------------------------------------------------------


def _string(value: object, what: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        raise PydanticCustomError(
            "string_type",
            "expected {what}; write it in quotes (it was read as {shown})",
            {"what": what, "shown": _shown(value)},
        )
    raise PydanticCustomError(
        "string_type", "expected {what}, not {shown}", {"what": what, "shown": _shown(value)}
    )


def _slug(pattern: re.Pattern[str], what: str, rule: str) -> Callable[[object], str]:
    def check(value: object) -> str:
        text = _string(value, what)
        if not pattern.fullmatch(text):
            raise PydanticCustomError(
                "slug",
                "{shown} is not {what} ({rule})",
                {"shown": _shown(text), "what": what, "rule": rule},
            )
        return text

    return check


def _text(value: object) -> str:
    text = _string(value, "a name")
    if len(text) > MAX_NAME:
        raise PydanticCustomError("too_long", "longer than {limit} characters", {"limit": MAX_NAME})
    if any(unicodedata.category(ch) in {"Cc", "Cs"} for ch in text):
        raise PydanticCustomError("control_characters", "contains control characters")
    return text


def _clean_name(text: str) -> str:
    """A holiday name from an iCalendar file, made to pass :func:`_text`."""
    kept = "".join(ch for ch in text if unicodedata.category(ch) not in {"Cc", "Cs"})
    return " ".join(kept.split())[:MAX_NAME]


def _choice(values: Iterable[str], what: str) -> Callable[[object], str]:
    allowed = tuple(values)

    def check(value: object) -> str:
        text = _string(value, what)
        if text not in allowed:
            raise PydanticCustomError(
                "choice",
                "{shown} is not {what} (one of: {allowed})",
                {"shown": _shown(text), "what": what, "allowed": ", ".join(allowed)},
            )
        return text

    return check


def _one_or_many(
    check: Callable[[object], str], one: str, what: str
) -> Callable[[object], frozenset[str]]:
    """One value, or a non-empty list of distinct values, as a set (``one``: "a tenant id")."""

    def validate(value: object) -> frozenset[str]:
        if isinstance(value, list):
            if not value:
                raise PydanticCustomError(
                    "empty",
                    "an empty list; leave the field out to match any {what}",
                    {"what": what},
                )
            if len(value) > 100:
                raise PydanticCustomError("too_long", "more than 100 values")
            found: list[str] = []
            for item in value:
                text = check(item)
                if text in found:
                    raise PydanticCustomError(
                        "duplicate", "{shown} is listed twice", {"shown": _shown(text)}
                    )
                found.append(text)
            return frozenset(found)
        if isinstance(value, str):
            return frozenset({check(value)})
        raise PydanticCustomError(
            "match_type",
            "expected {one} or a list of them, not {shown}",
            {"one": one, "shown": _shown(value)},
        )

    return validate


def _timezone(value: object) -> str:
    text = _string(value, "an IANA time zone")
    try:
        if len(text) > 64:
            raise ValueError(text)
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise PydanticCustomError(
            "timezone",
            "{shown} is not an IANA time zone (e.g. Europe/Berlin, America/New_York, UTC)",
            {"shown": _shown(text)},
        ) from None
    return text


def _days(value: object) -> tuple[int, ...]:
    hint = "mon tue wed thu fri sat sun, weekdays, weekends or every_day"
    if isinstance(value, str):
        if value in _DAY_SHORTHANDS:
            return _DAY_SHORTHANDS[value]
        if value in _DAY_NAMES:
            return (_DAY_NAMES.index(value),)
    elif isinstance(value, list) and value:
        days: list[int] = []
        for item in value:
            if not isinstance(item, str) or item not in _DAY_NAMES:
                raise PydanticCustomError(
                    "days", "{shown} is not a day ({hint})", {"shown": _shown(item), "hint": hint}
                )
            day = _DAY_NAMES.index(item)
            if day in days:
                raise PydanticCustomError("duplicate", "{day} is listed twice", {"day": item})
            days.append(day)
        return tuple(days)
    raise PydanticCustomError(
        "days", "expected days ({hint}), not {shown}", {"hint": hint, "shown": _shown(value)}
    )


def _member(enum: type[Milestone] | type[PauseReason] | type[ReopenRule], what: str) -> Any:
    choices = [member.value for member in enum]

    def check(value: object) -> object:
        return enum(_choice(choices, what)(value))

    return check


def _pause_reasons(value: object) -> frozenset[PauseReason]:
    if not isinstance(value, list):
        raise PydanticCustomError(
            "list_type",
            "expected a list of pause reasons (customer_wait, awaiting_parts), not {shown}",
            {"shown": _shown(value)},
        )
    reasons = _one_or_many(
        _choice([r.value for r in PauseReason], "a pause reason"), "a pause reason", "reason"
    )
    return frozenset(PauseReason(reason) for reason in reasons(value))


PolicyName = Annotated[
    str,
    BeforeValidator(
        _slug(_POLICY_NAME, "a policy name", "lower-case letters, digits, - and _, at most 63")
    ),
]
CalendarName = Annotated[
    str,
    BeforeValidator(
        _slug(_CALENDAR_NAME, "a calendar name", "lower-case letters, digits, - and _, at most 40")
    ),
]
Audience = Annotated[
    str,
    BeforeValidator(
        _slug(_AUDIENCE, "an audience", "lower-case letters, digits, - and _, at most 40")
    ),
]
CalendarVersion = Annotated[
    str,
    BeforeValidator(
        _slug(_VERSION, "a calendar version", "letters, digits, '.', '-' and '_', at most 40")
    ),
]
PositiveDuration = Annotated[timedelta, BeforeValidator(_positive_duration)]
Duration = Annotated[timedelta, BeforeValidator(_any_duration)]
StartTime = Annotated[time, BeforeValidator(_start_time)]
EndTime = Annotated[time, BeforeValidator(_end_time)]
CalendarDate = Annotated[date, BeforeValidator(_calendar_date)]
Days = Annotated[tuple[int, ...], BeforeValidator(_days)]
Priorities = Annotated[
    frozenset[str],
    BeforeValidator(
        _one_or_many(_choice([p.value for p in Priority], "a priority"), "a priority", "priority")
    ),
]
Categories = Annotated[
    frozenset[str],
    BeforeValidator(
        _one_or_many(_choice([c.value for c in Category], "a category"), "a category", "category")
    ),
]
EquipmentClasses = Annotated[
    frozenset[str],
    BeforeValidator(
        _one_or_many(
            _slug(
                _EQUIPMENT_CLASS,
                "an equipment class",
                "a lower-case letter, then letters, digits, - and _, 2 to 40 in all",
            ),
            "an equipment class",
            "equipment class",
        )
    ),
]
Tenants = Annotated[
    frozenset[str],
    BeforeValidator(
        _one_or_many(
            _slug(_TENANT, "a tenant id", "lower-case letters, digits and -, at most 63"),
            "a tenant id",
            "tenant",
        )
    ),
]


# -- the file's entries -----------------------------------------------------------------------


class _Entry(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class HoursEntry(_Entry):
    """The same working hours on each of ``days`` (local wall time of the site)."""

    days: Days
    start: Annotated[StartTime, Field(alias="from")]
    end: Annotated[EndTime, Field(alias="to")]


class HolidayEntry(_Entry):
    """A day off, or part of one (``from``/``to``)."""

    day: Annotated[CalendarDate, Field(alias="date")]
    start: Annotated[StartTime | None, Field(alias="from")] = None
    end: Annotated[EndTime | None, Field(alias="to")] = None
    name: Annotated[str, BeforeValidator(_text)] = ""


class SpecialDayEntry(_Entry):
    """Extra working hours on one date."""

    day: Annotated[CalendarDate, Field(alias="date")]
    start: Annotated[StartTime, Field(alias="from")]
    end: Annotated[EndTime, Field(alias="to")]


class CalendarEntry(_Entry):
    name: CalendarName
    hours: Annotated[list[HoursEntry], Field(max_length=MAX_HOURS)] = Field(default_factory=list)
    holidays: Annotated[list[HolidayEntry], Field(max_length=MAX_HOLIDAYS)] = Field(
        default_factory=list
    )
    holidays_ical: Annotated[str | None, Field(min_length=1, max_length=255)] = None
    special_days: Annotated[list[SpecialDayEntry], Field(max_length=MAX_SPECIAL_DAYS)] = Field(
        default_factory=list
    )
    always_open: bool = False
    version: CalendarVersion = "1"


class GoalEntry(_Entry):
    priority: Priorities = frozenset()
    equipment_class: EquipmentClasses = frozenset()
    category: Categories = frozenset()
    tenant: Tenants = frozenset()
    target: Annotated[timedelta | None, BeforeValidator(_optional_target)]
    calendar: CalendarName = TWENTY_FOUR_SEVEN.name
    warning_before: PositiveDuration | None = None

    @property
    def match(self) -> GoalMatch:
        return GoalMatch(
            priorities=self.priority,
            equipment_classes=self.equipment_class,
            categories=self.category,
            tenants=self.tenant,
        )


class EscalationEntry(_Entry):
    after: Duration
    audience: Audience


class ClockEntry(_Entry):
    clock: Annotated[Milestone, BeforeValidator(_member(Milestone, "a clock"))]
    goals: Annotated[list[GoalEntry], Field(min_length=1, max_length=MAX_GOALS)]
    warning_before: PositiveDuration | None = None
    escalations: Annotated[list[EscalationEntry], Field(max_length=MAX_ESCALATIONS)] = Field(
        default_factory=list
    )
    pause_when: Annotated[frozenset[PauseReason], BeforeValidator(_pause_reasons)] = frozenset()
    on_reopen: Annotated[ReopenRule, BeforeValidator(_member(ReopenRule, "a reopen rule"))] = (
        ReopenRule.NEW_CYCLE
    )


class PolicyEntry(_Entry):
    name: PolicyName
    timezone: Annotated[str, BeforeValidator(_timezone)] = "UTC"
    allowed_lateness: Duration = DEFAULT_ALLOWED_LATENESS
    calendars: Annotated[list[CalendarEntry], Field(max_length=MAX_CALENDARS)] = Field(
        default_factory=list
    )
    clocks: Annotated[list[ClockEntry], Field(min_length=1, max_length=MAX_CLOCKS)]


# -- one-line errors --------------------------------------------------------------------------


def _location(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(policy)"


def _fields_at(loc: Sequence[int | str]) -> list[str] | None:
    """The field names allowed in the mapping at ``loc`` (for an unknown field's message)."""
    model: type[BaseModel] = PolicyEntry
    for part in loc:
        if isinstance(part, int):
            continue
        field = next(
            (f for name, f in model.model_fields.items() if (f.alias or name) == part), None
        )
        if field is None:
            return None
        inner = [a for a in (field.annotation, *get_args(field.annotation)) if isinstance(a, type)]
        models = [a for a in inner if issubclass(a, BaseModel)]
        if not models:
            return None
        model = models[0]
    return [f.alias or name for name, f in model.model_fields.items()]


def _describe(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = tuple(first["loc"])
    kind = first["type"]
    if kind == "missing":
        problem = "missing (required)"
    elif kind == "extra_forbidden":
        allowed = _fields_at(loc[:-1]) or []
        unknown = str(loc[-1])
        guess = difflib.get_close_matches(unknown, allowed, n=1)
        problem = "unknown field" + (f"; did you mean {guess[0]!r}?" if guess else "")
        if allowed:
            problem += f" (allowed here: {', '.join(allowed)})"
    elif kind in {"model_type", "model_attributes_type", "dict_type"}:
        problem = f"expected a mapping (key: value), not {_shown(first.get('input'))}"
    elif kind == "list_type":
        problem = f"expected a list, not {_shown(first.get('input'))}"
    elif kind == "too_long" and "max_length" in first.get("ctx", {}):
        context = first["ctx"]
        problem = (
            f"{context.get('actual_length', 'too many')} entries, more than the limit of "
            f"{context['max_length']}"
        )
    elif kind == "too_short" and "min_length" in first.get("ctx", {}):
        least = first["ctx"]["min_length"]
        problem = f"needs at least {least} entr{'y' if least == 1 else 'ies'}"
    else:
        message = first["msg"]
        problem = message[:1].lower() + message[1:]
    more = len(errors) - 1
    if more:
        problem += f" (and {more} more problem{'s' if more != 1 else ''})"
    return f"{_location(loc)}: {problem}"


def _has_lone_surrogate(document: object) -> bool:
    """Escapes like ``"\\ud800"`` parse into strings that cannot be stored (not valid UTF-8)."""
    stack = [document]
    visited: set[int] = set()
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if any(0xD800 <= ord(ch) <= 0xDFFF for ch in node):
                return True
        elif isinstance(node, Mapping | list | tuple) and id(node) not in visited:
            visited.add(id(node))
            stack.extend(
                [*node.keys(), *node.values()] if isinstance(node, Mapping) else list(node)
            )
    return False


# -- from the entries to the domain -----------------------------------------------------------


def _read_limited(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        msg = f"{what}: no such file"
        raise InvalidPolicyFile(msg) from None
    except IsADirectoryError:
        msg = f"{what}: is a directory, not a file"
        raise InvalidPolicyFile(msg) from None
    except (OSError, ValueError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        msg = _one_line(f"{what}: cannot be read: {detail}")
        raise InvalidPolicyFile(msg) from None
    if len(raw) > MAX_FILE_BYTES:
        msg = f"{what}: larger than the limit of {MAX_FILE_BYTES} bytes (1 MiB)"
        raise InvalidPolicyFile(msg)
    return raw


def _ical_holidays(relative: str, base_dir: Path | None, where: str) -> tuple[Holiday, ...]:
    """The holidays of the iCalendar file at ``relative`` (inside ``base_dir`` only)."""
    if base_dir is None:
        raise _fail(where, "an iCalendar file can only be read when the policy is read from a file")
    if "\x00" in relative or relative.startswith("~") or Path(relative).is_absolute():
        raise _fail(where, f"{_shown(relative)} must be a path relative to the policy file")
    base = base_dir.resolve()
    target = (base / relative).resolve()
    if not target.is_relative_to(base):
        raise _fail(where, f"{_shown(relative)} lies outside the policy file's directory")
    raw = _read_limited(target, f"{where}: {relative}")
    try:
        found = holidays_from_ical(raw)
    except InvalidCalendarError as exc:
        raise _fail(where, f"{relative}: {exc}") from None
    return tuple(
        holiday
        if _clean_name(holiday.name) == holiday.name
        else Holiday(holiday.day, holiday.start, holiday.end, _clean_name(holiday.name))
        for holiday in found
    )


def _calendar(entry: CalendarEntry, where: str, base_dir: Path | None) -> BusinessCalendar:
    if entry.always_open and (entry.hours or entry.holidays or entry.special_days):
        raise _fail(where, "an always_open calendar has no hours, holidays or special days")
    if entry.always_open and entry.holidays_ical is not None:
        raise _fail(where, "an always_open calendar has no holidays (holidays_ical)")
    if not entry.always_open and not entry.hours and not entry.special_days:
        raise _fail(f"{where}.hours", "a calendar needs working hours (or always_open: true)")
    hours: list[WorkingHours] = []
    for index, span in enumerate(entry.hours):
        if span.start == span.end:
            raise _fail(
                f"{where}.hours[{index}]",
                f"from and to are both {format_time(span.start)}: no working time; for round the "
                "clock use the 24x7 calendar, or split the day (00:00-12:00 and 12:00-24:00)",
            )
        hours.extend(WorkingHours(day, span.start, span.end) for day in span.days)
    holidays: list[Holiday] = []
    for index, off in enumerate(entry.holidays):
        try:
            holidays.append(Holiday(off.day, off.start, off.end, off.name))
        except InvalidCalendarError as exc:
            raise _fail(f"{where}.holidays[{index}]", str(exc)) from None
    if entry.holidays_ical is not None:
        holidays.extend(_ical_holidays(entry.holidays_ical, base_dir, f"{where}.holidays_ical"))
    unique = tuple(dict.fromkeys(holidays))
    if len(unique) > MAX_HOLIDAYS:
        raise _fail(
            f"{where}.holidays",
            f"{len(unique)} holidays (with those of holidays_ical), more than the limit of "
            f"{MAX_HOLIDAYS}",
        )
    specials: list[SpecialWorkingDay] = []
    for index, extra in enumerate(entry.special_days):
        try:
            specials.append(SpecialWorkingDay(extra.day, extra.start, extra.end))
        except InvalidCalendarError as exc:
            raise _fail(f"{where}.special_days[{index}]", str(exc)) from None
    try:
        return BusinessCalendar(
            name=entry.name,
            hours=tuple(hours),
            holidays=unique,
            special_days=tuple(specials),
            always_open=entry.always_open,
            version=entry.version,
        )
    except InvalidCalendarError as exc:
        raise _fail(where, str(exc)) from None


def _check_goals(entry: ClockEntry, where: str, calendars: Sequence[str]) -> None:
    last = len(entry.goals) - 1
    for index, goal in enumerate(entry.goals):
        at = f"{where}.goals[{index}]"
        if goal.calendar not in calendars:
            raise _fail(
                f"{at}.calendar",
                f"unknown calendar {goal.calendar!r} (known: {', '.join(sorted(calendars))})",
            )
        if goal.match.is_default and index != last:
            raise _fail(
                at,
                "matches every order, so the goals after it would never apply (the goal for "
                "every order comes last)",
            )
        if index == last and not goal.match.is_default:
            raise _fail(
                at,
                "the last goal must match every order: give it no priority, equipment_class, "
                "category or tenant",
            )
        lead = goal.warning_before or entry.warning_before
        if goal.target is not None and lead is not None and lead >= goal.target:
            own = goal.warning_before is not None
            raise _fail(
                f"{at}.warning_before" if own else at,
                f"a warning {format_duration(lead)} before the deadline would come before this "
                f"{format_duration(goal.target)} target starts counting"
                + ("" if own else " (give this goal a shorter warning_before)"),
            )
    previous: timedelta | None = None
    for index, level in enumerate(entry.escalations):
        if previous is not None and level.after < previous:
            raise _fail(
                f"{where}.escalations[{index}].after",
                f"{format_duration(level.after)} comes before the previous level's "
                f"{format_duration(previous)}; list escalations in the order they fire",
            )
        previous = level.after


def _clock(entry: ClockEntry, where: str, calendars: Sequence[str]) -> ClockDefinition:
    _check_goals(entry, where, calendars)
    thresholds: list[Threshold] = []
    if entry.warning_before is not None:
        thresholds.append(Threshold(ThresholdKind.WARNING, -entry.warning_before))
    thresholds.extend(
        Threshold(ThresholdKind.ESCALATION, level.after, level=number, audience=level.audience)
        for number, level in enumerate(entry.escalations, start=1)
    )
    goals = tuple(
        Goal(
            goal.match,
            goal.target,
            calendar=goal.calendar,
            warning_before=goal.warning_before,
        )
        for goal in entry.goals
    )
    try:
        return ClockDefinition(
            entry.clock,
            goals=goals,
            thresholds=tuple(thresholds),
            pause_when=entry.pause_when,
            on_reopen=entry.on_reopen,
        )
    except InvalidPolicyError as exc:
        raise _fail(where, str(exc)) from None


def _policy(entry: PolicyEntry, version: int, base_dir: Path | None) -> SlaPolicy:
    calendars: list[BusinessCalendar] = []
    named: dict[str, int] = {}
    for index, calendar_entry in enumerate(entry.calendars):
        where = f"calendars[{index}]"
        if calendar_entry.name == TWENTY_FOUR_SEVEN.name:
            raise _fail(f"{where}.name", "'24x7' is the built-in round-the-clock calendar")
        if calendar_entry.name in named:
            raise _fail(
                f"{where}.name",
                f"{calendar_entry.name!r} is already the name of "
                f"calendars[{named[calendar_entry.name]}]",
            )
        named[calendar_entry.name] = index
        calendars.append(_calendar(calendar_entry, where, base_dir))
    known = [TWENTY_FOUR_SEVEN.name, *named]
    clocks: list[ClockDefinition] = []
    seen: dict[Milestone, int] = {}
    for index, clock_entry in enumerate(entry.clocks):
        where = f"clocks[{index}]"
        if clock_entry.clock in seen:
            raise _fail(
                f"{where}.clock",
                f"{clock_entry.clock.value} is already defined by "
                f"clocks[{seen[clock_entry.clock]}]",
            )
        seen[clock_entry.clock] = index
        clocks.append(_clock(clock_entry, where, known))
    try:
        return SlaPolicy(
            name=entry.name,
            version=version,
            clocks=tuple(clocks),
            calendars=tuple(calendars),
            timezone=entry.timezone,
            allowed_lateness=entry.allowed_lateness,
        )
    except (InvalidPolicyError, InvalidCalendarError) as exc:
        raise _fail("(policy)", str(exc)) from None


def parse_policy(
    document: Mapping[str, object], *, version: int = 1, base_dir: Path | None = None
) -> SlaPolicy:
    """The SLA policy a document describes, as version ``version``.

    ``base_dir`` is the directory ``holidays_ical`` paths are relative to (the policy file's); a
    path leading out of it is refused, and without it no iCalendar file is read. Raises
    :class:`InvalidPolicyFile` with one line naming the location and the problem.
    """
    if not isinstance(document, Mapping):
        raise _fail(
            "(policy)",
            f"expected a mapping with name, calendars and clocks, not {_shown(document)}",
        )
    if version < 1:
        msg = f"(policy): version {version!r} must be a whole number from 1"
        raise InvalidPolicyFile(msg)
    if _has_lone_surrogate(document):
        raise _fail("(policy)", "contains an unpaired UTF-16 surrogate escape")
    try:
        entry = PolicyEntry.model_validate(dict(document))
    except ValidationError as exc:
        raise InvalidPolicyFile(_one_line(_describe(exc))) from None
    except RecursionError:
        raise _fail("(policy)", "nested too deeply") from None
    return _policy(entry, version, base_dir)


# -- reading a file ---------------------------------------------------------------------------


def _load_text(text: str, fmt: Literal["yaml", "json"]) -> object:
    try:
        return load_document(text, fmt, aliases=False)
    except DocumentSyntaxError as exc:
        raise InvalidPolicyFile(str(exc)) from None


def load_policy_file(path: Path) -> tuple[dict[str, object], SlaPolicy]:
    """Read and validate a policy file (``.json`` as JSON, anything else as YAML).

    Returns the canonical document (what a stored policy version holds: holidays of referenced
    iCalendar files listed in it) and the policy, as version 1. Every problem is one line of
    :class:`InvalidPolicyFile`, starting with the file's path.
    """
    raw = _read_limited(path, str(path))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        msg = f"{path}: not UTF-8 text (invalid byte at offset {exc.start})"
        raise InvalidPolicyFile(msg) from None
    fmt: Literal["yaml", "json"] = "json" if path.suffix.lower() == ".json" else "yaml"
    try:
        document = _load_text(text, fmt)
        if not isinstance(document, Mapping):
            raise _fail(
                "(policy)",
                f"expected a mapping with name, calendars and clocks, not {_shown(document)}",
            )
        policy = parse_policy(document, base_dir=path.parent)
    except InvalidPolicyFile as exc:
        raise InvalidPolicyFile(_one_line(f"{path}: {exc}")) from None
    return policy_document(policy), policy


# -- the canonical document -------------------------------------------------------------------


def _one_or_list(values: frozenset[str]) -> str | list[str]:
    ordered = sorted(values)
    return ordered[0] if len(ordered) == 1 else ordered


def _days_text(days: Sequence[int]) -> str | list[str]:
    for shorthand, listed in _DAY_SHORTHANDS.items():
        if tuple(days) == listed:
            return shorthand
    names = [_DAY_NAMES[day] for day in days]
    return names[0] if len(names) == 1 else names


def _hours_document(hours: Sequence[WorkingHours]) -> list[dict[str, object]]:
    """Consecutive intervals with the same times are one entry (in the order they are listed)."""
    groups: list[tuple[list[int], time, time]] = []
    for span in hours:
        last = groups[-1] if groups else None
        if (
            last is not None
            and (last[1], last[2]) == (span.start, span.end)
            and span.weekday not in last[0]
        ):
            last[0].append(span.weekday)
        else:
            groups.append(([span.weekday], span.start, span.end))
    return [
        {"days": _days_text(days), "from": format_time(start), "to": format_time(end, end=True)}
        for days, start, end in groups
    ]


def _holiday_document(holiday: Holiday) -> dict[str, object]:
    document: dict[str, object] = {"date": holiday.day.isoformat()}
    if holiday.start is not None:
        document["from"] = format_time(holiday.start)
    if holiday.end is not None:
        document["to"] = format_time(holiday.end, end=True)
    if holiday.name:
        document["name"] = holiday.name
    return document


def _calendar_document(calendar: BusinessCalendar) -> dict[str, object]:
    document: dict[str, object] = {"name": calendar.name}
    if calendar.always_open:
        document["always_open"] = True
    if calendar.hours:
        document["hours"] = _hours_document(calendar.hours)
    if calendar.holidays:
        document["holidays"] = [_holiday_document(h) for h in calendar.holidays]
    if calendar.special_days:
        document["special_days"] = [
            {
                "date": special.day.isoformat(),
                "from": format_time(special.start),
                "to": format_time(special.end, end=True),
            }
            for special in calendar.special_days
        ]
    document["version"] = calendar.version
    return document


def _goal_document(goal: Goal) -> dict[str, object]:
    document: dict[str, object] = {}
    for key, values in (
        ("priority", goal.match.priorities),
        ("equipment_class", goal.match.equipment_classes),
        ("category", goal.match.categories),
        ("tenant", goal.match.tenants),
    ):
        if values:
            document[key] = _one_or_list(values)
    document["target"] = None if goal.target is None else format_duration(goal.target)
    if goal.calendar != TWENTY_FOUR_SEVEN.name:
        document["calendar"] = goal.calendar
    if goal.warning_before is not None:
        document["warning_before"] = format_duration(goal.warning_before)
    return document


def _clock_document(definition: ClockDefinition) -> dict[str, object]:
    document: dict[str, object] = {"clock": definition.clock.value}
    warning = definition.warning
    if warning is not None:
        if warning.audience or warning.level:
            msg = (
                f"clock {definition.clock.value}: a warning with an audience or a level cannot "
                "be written as a policy file"
            )
            raise ValueError(msg)
        document["warning_before"] = format_duration(-warning.offset)
    if definition.escalations:
        document["escalations"] = [
            {"after": format_duration(t.offset), "audience": t.audience}
            for t in definition.escalations
        ]
    if definition.pause_when:
        document["pause_when"] = sorted(reason.value for reason in definition.pause_when)
    document["on_reopen"] = definition.on_reopen.value
    document["goals"] = [_goal_document(goal) for goal in definition.goals]
    return document


def policy_document(policy: SlaPolicy) -> dict[str, object]:
    """The canonical, JSON-able document of ``policy`` (without its version).

    ``parse_policy(policy_document(p), version=p.version) == p`` for every policy whose warnings
    come before its escalations (as :func:`parse_policy` builds them). ValueError for what a
    policy file cannot say (sub-second durations, a warning with an audience).
    """
    return {
        "name": policy.name,
        "timezone": policy.timezone,
        "allowed_lateness": format_duration(policy.allowed_lateness),
        "calendars": [_calendar_document(calendar) for calendar in policy.calendars],
        "clocks": [_clock_document(definition) for definition in policy.clocks],
    }
