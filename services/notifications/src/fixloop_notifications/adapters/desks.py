"""Tenants' dispatch desks, read from a YAML file (``FIXLOOP_NOTIFICATIONS_DESKS_FILE``).

Each desk says where a tenant's operators are told of unfilled orders, SLA breaches and
escalations, quality alerts and disabled webhooks, in which language and time zone, and what the
tenant offers its customers when work is late::

    desks:
      - tenant: acme
        name: ACME dispatch desk
        email: dispatch@acme.example
        locale: de                  # default en
        timezone: Europe/Berlin     # default UTC
        remedy:                     # optional: told with every delay notice
          kind: service_discount    # or extended_warranty (with months)
          percent: 10

A file that does not fit is refused with one line saying where.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, ValidationError

from fixloop_notifications.domain.notices import Desk, Remedy
from fixloop_shared.documents import DocumentSyntaxError, load_document

MAX_DESKS_FILE_BYTES = 1_048_576


class InvalidDesksFile(ValueError):  # noqa: N818 - the domain word
    """The desks file cannot be used; the message is one line."""


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"unknown time zone {value!r}"
        raise ValueError(msg) from None
    return value


class _Remedy(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    kind: Literal["service_discount", "extended_warranty"]
    percent: Annotated[int, Field(ge=1, le=100)] | None = None
    months: Annotated[int, Field(ge=1, le=120)] | None = None


class _Desk(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    tenant: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    email: EmailStr
    locale: Annotated[str, Field(pattern=r"^[a-z]{2}(-[A-Z]{2})?$")] = "en"
    timezone: Annotated[str, AfterValidator(_zone)] = "UTC"
    phone: Annotated[str, Field(pattern=r"^\+?[0-9 ()-]{5,32}$")] | None = None
    remedy: _Remedy | None = None


class _DesksFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    desks: Annotated[list[_Desk], Field(max_length=10_000)]


def _describe(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


def parse_desks(text: str, *, source: str = "desks file") -> dict[str, Desk]:
    """The desks in ``text`` (YAML), by tenant."""
    try:
        raw = load_document(text, "yaml")
        parsed = _DesksFile.model_validate(raw)
    except DocumentSyntaxError as exc:
        raise InvalidDesksFile(f"{source}: {exc}") from None
    except ValidationError as exc:
        raise InvalidDesksFile(f"{source}: {_describe(exc)}") from None
    desks: dict[str, Desk] = {}
    for entry in parsed.desks:
        if entry.tenant in desks:
            msg = f"{source}: tenant {entry.tenant!r} has two desks"
            raise InvalidDesksFile(msg)
        remedy = entry.remedy
        if remedy is not None and (remedy.kind == "service_discount") != (
            remedy.percent is not None
        ):
            msg = f"{source}: {entry.tenant}: a service_discount remedy needs percent (only)"
            raise InvalidDesksFile(msg)
        if remedy is not None and (remedy.kind == "extended_warranty") != (
            remedy.months is not None
        ):
            msg = f"{source}: {entry.tenant}: an extended_warranty remedy needs months (only)"
            raise InvalidDesksFile(msg)
        desks[entry.tenant] = Desk(
            tenant=entry.tenant,
            name=entry.name,
            email=str(entry.email),
            locale=entry.locale,
            timezone=entry.timezone,
            phone=entry.phone,
            remedy=None
            if remedy is None
            else Remedy(kind=remedy.kind, percent=remedy.percent, months=remedy.months),
        )
    return desks


def load_desks(path: Path | None) -> dict[str, Desk]:
    """The desks of the file at ``path`` (none without a file)."""
    if path is None:
        return {}
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_DESKS_FILE_BYTES + 1)
    except OSError as exc:
        msg = f"{path}: cannot be read ({exc.strerror or type(exc).__name__})"
        raise InvalidDesksFile(msg) from None
    if len(data) > MAX_DESKS_FILE_BYTES:
        msg = f"{path}: larger than {MAX_DESKS_FILE_BYTES} bytes"
        raise InvalidDesksFile(msg)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        msg = f"{path}: not UTF-8 text"
        raise InvalidDesksFile(msg) from None
    return parse_desks(text, source=str(path))


__all__ = ["InvalidDesksFile", "load_desks", "parse_desks"]
