"""The contractor file that ``fixloop contractors import`` reads (YAML or JSON).

Format (see ``examples/contractors.yaml``)::

    contractors:
      - contractor_id: ctr-berliner-klima       # slug: lower-case letters, digits, hyphens
        name: Berliner Klima Service GmbH
        email: auftrag@berliner-klima.de
        phone: "+49 30 4403 2210"                # optional
        timezone: Europe/Berlin                  # IANA time zone
        tenants: [acme, globex]                  # tenants this contractor works for
        skills: [hvac]                           # equipment classes
        regions:
          - country: DE                          # ISO 3166-1 alpha-2
            postal_prefixes: ["10", "12"]        # quoted; empty or absent = whole country
        credentials:
          - kind: trade_licence          # trade_licence | liability_insurance | certification
            name: Eintragung in die Handwerksrolle   # optional
            number: HWK-B-2019-04417
            expires_on: 2027-06-30               # valid through this day
        base_location: {latitude: 52.52, longitude: 13.405}   # optional, WGS 84 degrees
        max_concurrent_jobs: 6                   # optional, 1..1000 open jobs + open offers
        skill_levels: {hvac: 4}                  # optional, 1..5 per skill (default 3)
        rota:                                    # optional; none = on call around the clock
          primary:
            windows:
              - {days: weekdays, from: "07:00", to: "19:00"}
            exceptions:
              - {date: 2026-12-25}               # no hours: off all day
              - date: 2026-12-24
                hours: [{from: "08:00", to: "12:00"}]
          backup:                                # optional
            windows:
              - {days: every_day, from: "19:00", to: "07:00"}   # runs past midnight
              - {days: [sat, sun], from: "07:00", to: "19:00"}

Rota windows are read on the contractor's own wall clock (its ``timezone``). ``days`` is a list
of ``mon tue wed thu fri sat sun``, one day name, or one of ``weekdays`` (mon-fri), ``weekends``
(sat, sun) and ``every_day``. Times are ``"HH:MM"`` in quotes (YAML reads an unquoted ``19:00``
as the number 1140); a window whose ``to`` is at or before its ``from`` runs past midnight into
the next day, and ``from`` equal to ``to`` is 24 hours. ``to: "24:00"`` is the same as
``"00:00"``: midnight at the end of the day. On an exception's ``date`` the layer keeps only that
entry's ``hours`` (each ``to`` after its ``from``; none: off all day, as on a public holiday).

Validation is strict: unknown fields, wrong types (``10`` where ``"10"`` is meant), duplicate keys
and duplicate contractor ids are errors, every string and list is bounded, and a file holds at
most :data:`MAX_CONTRACTORS` contractors (:data:`MAX_FILE_BYTES` in all). Every problem is
reported with its location, e.g.
``contractors[3].credentials[0].expires_on: ...`` or
``contractors[0].rota.backup.windows[1].to: ...``; a file with any problem imports nothing.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from fixloop_contractors.domain.model import (
    MAX_SKILL_LEVEL,
    MIN_SKILL_LEVEL,
    Contractor,
    Credential,
    CredentialKind,
    GeoPoint,
    ServiceRegion,
)
from fixloop_contractors.domain.rota import (
    EVERY_DAY,
    WORKING_DAYS,
    DayException,
    OnCallRota,
    RotaLayer,
    Weekday,
    WeeklyWindow,
)
from fixloop_shared.contracts.types import (
    CountryCode,
    EquipmentClass,
    Name,
    Phone,
    TenantId,
    TimeZoneName,
)
from fixloop_shared.documents import DocumentSyntaxError, load_document

MAX_CONTRACTORS = 100_000
"""Contractors in one file (the store takes them in batches; see the registry's upsert)."""
MAX_FILE_BYTES = 128 * 1024 * 1024
MAX_PROBLEMS_SHOWN = 500
MAX_CONCURRENT_JOBS = 1000
MAX_ROTA_WINDOWS = 50
"""Weekly windows per rota layer."""
MAX_ROTA_EXCEPTIONS = 400
"""Exception dates per rota layer (a year of them, with room to spare)."""
MAX_EXCEPTION_HOURS = 24
"""Spans of hours per exception date."""


class ContractorFileError(Exception):
    """The file cannot be imported; ``problems`` holds one ``location: message`` line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the contractor file")
        self.problems = problems


# -- field types ------------------------------------------------------------------------------


def _quoted(value: object) -> object:
    """YAML reads ``NO`` as false and ``01`` as 1: such values must be written in quotes."""
    if isinstance(value, bool | int | float):
        shown = str(value).lower() if isinstance(value, bool) else repr(value)
        raise PydanticCustomError(
            "string_type",
            "Input should be a string; write it in quotes (it was read as the {kind} {shown})",
            {"kind": "boolean" if isinstance(value, bool) else "number", "shown": shown},
        )
    return value


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _calendar_date(value: object) -> object:
    """A date: a YAML date, or a ``YYYY-MM-DD`` string (JSON has no date type)."""
    if isinstance(value, datetime):
        raise PydanticCustomError(
            "date_type", "Input should be a date (YYYY-MM-DD), not a date and time"
        )
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise PydanticCustomError(
                "date_parsing", "Input should be a valid date: {error}", {"error": str(exc)}
            ) from exc
    raise PydanticCustomError("date_type", "Input should be a date written YYYY-MM-DD")


ContractorId = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=64)
]
Country = Annotated[CountryCode, BeforeValidator(_quoted)]
PostalPrefix = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9]{1,10}$"), BeforeValidator(_quoted)
]
CredentialNumber = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ./_-]{0,63}$"),
    BeforeValidator(_quoted),
]
PhoneNumber = Annotated[Phone, BeforeValidator(_quoted)]
CalendarDate = Annotated[date, BeforeValidator(_calendar_date)]


_CLOCK_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


def _clock_time(value: object, *, end: bool) -> object:
    """A wall-clock time written ``"HH:MM"``; ``"24:00"`` (an end only) is midnight, 00:00."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        # YAML 1.1 reads an unquoted 19:00 as the sexagesimal number 19 * 60 + 0 = 1140.
        shown = f"{value // 60:02d}:{value % 60:02d}"
        raise PydanticCustomError(
            "time_type",
            'Input should be a time written "HH:MM" in quotes (YAML read {shown} as the number '
            "{value})",
            {"shown": shown, "value": value},
        )
    if isinstance(value, str):
        if end and value == "24:00":
            return time(0)
        if match := _CLOCK_TIME.fullmatch(value):
            return time(int(match[1]), int(match[2]))
    raise PydanticCustomError(
        "time_parsing",
        'Input should be a time written "HH:MM" (00:00 to {last})',
        {"last": "24:00" if end else "23:59"},
    )


StartTime = Annotated[time, BeforeValidator(lambda v: _clock_time(v, end=False))]
EndTime = Annotated[time, BeforeValidator(lambda v: _clock_time(v, end=True))]
"""An end time: ``"24:00"`` and ``"00:00"`` are both midnight at the end of the day."""

DAY_NAMES: dict[str, Weekday] = {day.name[:3].lower(): day for day in Weekday}
DAY_SHORTHANDS: dict[str, tuple[Weekday, ...]] = {
    "weekdays": WORKING_DAYS,
    "weekends": (Weekday.SATURDAY, Weekday.SUNDAY),
    "every_day": EVERY_DAY,
}
DayName = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _days(value: object) -> object:
    """A shorthand (``weekdays``, ``weekends``, ``every_day``) or one day name, as a list."""
    if isinstance(value, str):
        if value in DAY_SHORTHANDS:
            return [day.name[:3].lower() for day in DAY_SHORTHANDS[value]]
        if value in DAY_NAMES:
            return [value]
        raise PydanticCustomError(
            "days_type",
            "Input should be a list of days (mon, tue, wed, thu, fri, sat, sun) or one of "
            "'weekdays', 'weekends', 'every_day'",
        )
    return value


def _unique(values: list[Any]) -> list[Any]:
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            raise PydanticCustomError("duplicate", "'{value}' is listed twice", {"value": value})
        seen.add(value)
    return values


class _Entry(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class RegionEntry(_Entry):
    country: Country
    postal_prefixes: Annotated[list[PostalPrefix], Field(max_length=200)] = Field(
        default_factory=list
    )

    _unique_prefixes = field_validator("postal_prefixes")(_unique)


class CredentialEntry(_Entry):
    kind: Literal["trade_licence", "liability_insurance", "certification"]
    name: Name | None = None
    number: CredentialNumber
    expires_on: CalendarDate


class LocationEntry(_Entry):
    latitude: Annotated[float, Field(ge=-90.0, le=90.0, allow_inf_nan=False)]
    longitude: Annotated[float, Field(ge=-180.0, le=180.0, allow_inf_nan=False)]

    def to_domain(self) -> GeoPoint:
        return GeoPoint(latitude=self.latitude, longitude=self.longitude)


class WindowEntry(_Entry):
    """The same hours on each of ``days``."""

    days: Annotated[list[DayName], BeforeValidator(_days), Field(min_length=1, max_length=7)]
    start: Annotated[StartTime, Field(alias="from")]
    end: Annotated[EndTime, Field(alias="to")]

    _unique_days = field_validator("days")(_unique)

    def to_domain(self) -> tuple[WeeklyWindow, ...]:
        return WeeklyWindow.daily(self.start, self.end, (DAY_NAMES[d] for d in self.days))


class HoursEntry(_Entry):
    """Hours on an exception date: ``to`` after ``from`` (``"24:00"``: to the end of the day)."""

    start: Annotated[StartTime, Field(alias="from")]
    end: Annotated[EndTime, Field(alias="to")]

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.end != time(0) and self.end <= self.start:
            raise PydanticCustomError(
                "hours_order",
                "'to' ({end}) should be after 'from' ({start}) on the same day; write \"24:00\" "
                "for midnight at its end",
                {"start": self.start.strftime("%H:%M"), "end": self.end.strftime("%H:%M")},
            )
        return self


class ExceptionEntry(_Entry):
    day: Annotated[CalendarDate, Field(alias="date")]
    hours: Annotated[list[HoursEntry], Field(max_length=MAX_EXCEPTION_HOURS)] = Field(
        default_factory=list
    )

    def to_domain(self) -> DayException:
        return DayException(self.day, tuple((h.start, h.end) for h in self.hours))


class RotaLayerEntry(_Entry):
    windows: Annotated[list[WindowEntry], Field(max_length=MAX_ROTA_WINDOWS)]
    exceptions: Annotated[list[ExceptionEntry], Field(max_length=MAX_ROTA_EXCEPTIONS)] = Field(
        default_factory=list
    )

    @field_validator("exceptions")
    @classmethod
    def _one_exception_per_date(cls, exceptions: list[ExceptionEntry]) -> list[ExceptionEntry]:
        first_seen: dict[date, int] = {}
        for index, exception in enumerate(exceptions):
            first = first_seen.setdefault(exception.day, index)
            if first != index:
                raise PydanticCustomError(
                    "duplicate",
                    "{day} is listed twice (exceptions[{first}] and exceptions[{index}]); give "
                    "all of that day's hours in one entry",
                    {"day": exception.day.isoformat(), "first": first, "index": index},
                )
        return exceptions

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.windows and not self.exceptions:
            raise PydanticCustomError(
                "rota_layer_empty",
                "a rota layer needs at least one window or exception (it would never be on call)",
            )
        return self

    def to_domain(self) -> RotaLayer:
        return RotaLayer(
            windows=tuple(w for entry in self.windows for w in entry.to_domain()),
            exceptions=tuple(e.to_domain() for e in self.exceptions),
        )


class RotaEntry(_Entry):
    primary: RotaLayerEntry
    backup: RotaLayerEntry | None = None

    def to_domain(self) -> OnCallRota:
        return OnCallRota(
            primary=self.primary.to_domain(),
            backup=None if self.backup is None else self.backup.to_domain(),
        )


SkillLevel = Annotated[int, Field(ge=MIN_SKILL_LEVEL, le=MAX_SKILL_LEVEL)]


class ContractorEntry(_Entry):
    contractor_id: ContractorId
    name: Name
    email: EmailStr
    phone: PhoneNumber | None = None
    timezone: TimeZoneName
    tenants: Annotated[list[TenantId], Field(min_length=1, max_length=100)]
    skills: Annotated[list[EquipmentClass], Field(min_length=1, max_length=50)]
    regions: Annotated[list[RegionEntry], Field(min_length=1, max_length=50)]
    credentials: Annotated[list[CredentialEntry], Field(max_length=20)] = Field(
        default_factory=list
    )
    base_location: LocationEntry | None = None
    max_concurrent_jobs: Annotated[int, Field(ge=1, le=MAX_CONCURRENT_JOBS)] | None = None
    skill_levels: Annotated[dict[EquipmentClass, SkillLevel], Field(max_length=50)] = Field(
        default_factory=dict
    )
    rota: RotaEntry | None = None

    _unique_lists = field_validator("tenants", "skills")(_unique)

    @field_validator("skill_levels")
    @classmethod
    def _levels_of_its_skills(cls, levels: dict[str, int], info: ValidationInfo) -> dict[str, int]:
        skills = info.data.get("skills")
        if skills is None:  # invalid itself, and reported as such
            return levels
        if unknown := [c for c in levels if c not in skills]:
            raise PydanticCustomError(
                "skill_level_not_a_skill",
                "{classes} {verb} not among its skills ({skills})",
                {
                    "classes": ", ".join(f"'{c}'" for c in unknown),
                    "verb": "is" if len(unknown) == 1 else "are",
                    "skills": ", ".join(skills),
                },
            )
        return levels

    def to_domain(self) -> Contractor:
        return Contractor(
            contractor_id=self.contractor_id,
            name=self.name,
            email=str(self.email),
            phone=self.phone,
            timezone=self.timezone,
            tenants=frozenset(self.tenants),
            skills=frozenset(self.skills),
            regions=tuple(
                ServiceRegion(country=r.country, postal_prefixes=tuple(r.postal_prefixes))
                for r in self.regions
            ),
            credentials=tuple(
                Credential(
                    kind=CredentialKind(c.kind),
                    number=c.number,
                    expires_on=c.expires_on,
                    name=c.name,
                )
                for c in self.credentials
            ),
            base_location=None if self.base_location is None else self.base_location.to_domain(),
            max_concurrent_jobs=self.max_concurrent_jobs,
            skill_levels=tuple(self.skill_levels.items()),
            rota=None if self.rota is None else self.rota.to_domain(),
        )


class ContractorFile(_Entry):
    contractors: Annotated[list[ContractorEntry], Field(min_length=1, max_length=MAX_CONTRACTORS)]


# -- parsing ----------------------------------------------------------------------------------


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part == "[key]":  # the key of a mapping's entry, not its value
            text += part
        else:
            text += f".{part}" if text else str(part)
    return text or "(file)"


def describe_validation_error(exc: ValidationError) -> list[str]:
    """One ``location: message`` line per problem, in file order."""
    return [
        f"{_location(tuple(err['loc']))}: {err['msg']}"
        for err in exc.errors(include_url=False, include_input=False)
    ]


def _load_document(text: str, *, fmt: Literal["yaml", "json"]) -> object:
    try:
        return load_document(text, fmt)
    except DocumentSyntaxError as exc:
        raise ContractorFileError([f"(file): {exc}"]) from exc


def _has_lone_surrogate(document: object) -> bool:
    """Escapes like ``"\\ud800"`` parse into strings that cannot be stored (not valid UTF-8).

    Each container is visited once, so YAML aliases cannot make this walk explode.
    """
    stack = [document]
    visited: set[int] = set()
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if any(0xD800 <= ord(ch) <= 0xDFFF for ch in node):
                return True
        elif isinstance(node, dict | list) and id(node) not in visited:
            visited.add(id(node))
            stack.extend(node.items() if isinstance(node, dict) else node)
        elif isinstance(node, tuple):
            stack.extend(node)
    return False


def _duplicate_ids(entries: list[ContractorEntry]) -> list[str]:
    first_seen: dict[str, int] = {}
    problems: list[str] = []
    for index, entry in enumerate(entries):
        first = first_seen.setdefault(entry.contractor_id, index)
        if first != index:
            problems.append(
                f"contractors[{index}].contractor_id: {entry.contractor_id!r} is already "
                f"used by contractors[{first}]"
            )
    return problems


def parse_contractors(text: str, *, fmt: Literal["yaml", "json"] = "yaml") -> list[Contractor]:
    """Validate a whole contractor file; :class:`ContractorFileError` lists every problem."""
    document = _load_document(text, fmt=fmt)
    if _has_lone_surrogate(document):
        raise ContractorFileError(["(file): contains an unpaired UTF-16 surrogate escape"])
    if not isinstance(document, dict):
        raise ContractorFileError(
            ["(file): expected a mapping with a top-level 'contractors' list"]
        )
    listed = document.get("contractors")
    if isinstance(listed, list) and len(listed) > MAX_CONTRACTORS:
        # Said before any entry is looked at: a file far too large is refused at once.
        raise ContractorFileError(
            [
                f"contractors: List should have at most {MAX_CONTRACTORS} items after "
                f"validation, not {len(listed)}"
            ]
        )
    try:
        parsed = ContractorFile.model_validate(document)
    except ValidationError as exc:
        raise ContractorFileError(describe_validation_error(exc)) from exc
    if problems := _duplicate_ids(parsed.contractors):
        raise ContractorFileError(problems)
    return [entry.to_domain() for entry in parsed.contractors]


def read_contractor_file(path: Path) -> list[Contractor]:
    """Read and validate ``path`` (``.json`` as JSON, anything else as YAML)."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ContractorFileError([f"(file): cannot read {path}: {exc.strerror or exc}"]) from exc
    if len(raw) > MAX_FILE_BYTES:
        raise ContractorFileError([f"(file): larger than the limit of {MAX_FILE_BYTES} bytes"])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ContractorFileError(
            [f"(file): not UTF-8 text (invalid byte at offset {exc.start})"]
        ) from exc
    fmt: Literal["yaml", "json"] = "json" if path.suffix.lower() == ".json" else "yaml"
    return parse_contractors(text, fmt=fmt)


__all__ = [
    "MAX_CONCURRENT_JOBS",
    "MAX_CONTRACTORS",
    "MAX_EXCEPTION_HOURS",
    "MAX_FILE_BYTES",
    "MAX_PROBLEMS_SHOWN",
    "MAX_ROTA_EXCEPTIONS",
    "MAX_ROTA_WINDOWS",
    "ContractorFile",
    "ContractorFileError",
    "describe_validation_error",
    "parse_contractors",
    "read_contractor_file",
]
