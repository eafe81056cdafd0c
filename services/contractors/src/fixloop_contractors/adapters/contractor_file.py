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

Validation is strict: unknown fields, wrong types (``10`` where ``"10"`` is meant), duplicate keys
and duplicate contractor ids are errors, every string is bounded, and a file holds at most
:data:`MAX_CONTRACTORS` contractors. Every problem is reported with its location, e.g.
``contractors[3].credentials[0].expires_on: ...``; a file with any problem imports nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Hashable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

from fixloop_contractors.domain.model import (
    Contractor,
    Credential,
    CredentialKind,
    ServiceRegion,
)
from fixloop_shared.contracts.types import (
    CountryCode,
    EquipmentClass,
    Name,
    Phone,
    TenantId,
    TimeZoneName,
)

MAX_CONTRACTORS = 5000
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_PROBLEMS_SHOWN = 500


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

    _unique_lists = field_validator("tenants", "skills")(_unique)

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
        )


class ContractorFile(_Entry):
    contractors: Annotated[list[ContractorEntry], Field(min_length=1, max_length=MAX_CONTRACTORS)]


# -- parsing ----------------------------------------------------------------------------------


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(file)"


def describe_validation_error(exc: ValidationError) -> list[str]:
    """One ``location: message`` line per problem, in file order."""
    return [
        f"{_location(tuple(err['loc']))}: {err['msg']}"
        for err in exc.errors(include_url=False, include_input=False)
    ]


_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictYamlLoader(_BaseLoader):  # type: ignore[valid-type, misc]
    """YAML's safe loader, but a key repeated in one mapping is an error, not a silent overwrite."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Hashable] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, Hashable):
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
    return loader.construct_mapping(node, deep=True)


def _construct_timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> object:
    """An impossible date (``2027-02-30``) stays text: validation reports it with its location."""
    try:
        return loader.construct_yaml_timestamp(node)
    except ValueError:
        return loader.construct_scalar(node)


_StrictYamlLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)
_StrictYamlLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            msg = f"duplicate key {key!r}"
            raise ValueError(msg)
        result[key] = value
    return result


def _load_document(text: str, *, fmt: Literal["yaml", "json"]) -> object:
    if fmt == "json":
        try:
            return json.loads(text, object_pairs_hook=_reject_duplicate_keys)
        except json.JSONDecodeError as exc:
            raise ContractorFileError(
                [f"(file): not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"]
            ) from exc
        except (ValueError, RecursionError) as exc:
            raise ContractorFileError([f"(file): {exc}"]) from exc
    try:
        return yaml.load(text, Loader=_StrictYamlLoader)  # noqa: S506 - a safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or str(exc)
        raise ContractorFileError([f"(file): not valid YAML{where}: {problem}"]) from exc
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        raise ContractorFileError([f"(file): not valid YAML: {exc}"[:500]]) from exc


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
    "MAX_CONTRACTORS",
    "MAX_FILE_BYTES",
    "MAX_PROBLEMS_SHOWN",
    "ContractorFile",
    "ContractorFileError",
    "describe_validation_error",
    "parse_contractors",
    "read_contractor_file",
]
