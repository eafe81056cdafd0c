"""Who calls the gRPC edge: principals, and the keys they authenticate with, stored hashed.

Three kinds of callers use the partner API (:class:`PrincipalKind`):

* ``partner`` — a requester-side integration (an ERP, a marketplace) of one tenant;
* ``contractor`` — a contractor's field-service app, bound to one contractor and serving the
  tenants that contractor works for;
* ``operator`` — a tenant's dispatch desk or CLI, of one tenant.

A service is configured with :class:`PrincipalSpec` entries (e.g. ``FIXLOOP_ORDERS_PRINCIPALS``,
a JSON list). An entry holds the *hashes* of the principal's keys, never a key: 1 hash normally,
2 while a key is rotated (both valid until the old one is removed). :func:`new_api_key` makes a
key, :func:`hash_api_key` its hash (``fixloop keys new`` / ``fixloop keys hash`` do both).
:class:`PrincipalDirectory` finds the principal of a presented key by hashing it and looking the
hash up; the service never sees or keeps a plaintext key except the one presented on a call.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from fixloop_shared.contracts.types import Identifier, TenantId
from fixloop_shared.grpc_edge.rate_limit import parse_rate_limit

API_KEY_PREFIX = "flk_"
"""What every key :func:`new_api_key` makes starts with, so a leaked key is recognisable (secret
scanners, log filters) as a Fixloop API key."""

KEY_HASH_SCHEME = "sha256"
KEY_HASH_PATTERN = re.compile(r"^sha256:[0-9a-f]{64}$")
MAX_KEY_HASHES = 2
"""A principal has one key, two while it is rotated."""
MAX_PRESENTED_KEY_CHARS = 512
"""A presented key longer than this is refused without hashing it (ours are 47 characters)."""

PRINCIPAL_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


class PrincipalKind(StrEnum):
    """The kind of caller a principal is; it decides what the caller may do."""

    PARTNER = "partner"
    """A requester-side integration of one tenant (creates and follows that tenant's orders)."""
    CONTRACTOR = "contractor"
    """A contractor's field-service app: one contractor, possibly working for several tenants."""
    OPERATOR = "operator"
    """A tenant's dispatch desk or operations CLI: one tenant."""


def binding_problem(
    kind: PrincipalKind, tenant: str | None, contractor_id: str | None
) -> str | None:
    """What is wrong with binding a principal of ``kind`` to ``tenant`` / ``contractor_id``;
    None if nothing is. Partners and operators belong to exactly one tenant and no contractor;
    a contractor principal belongs to one contractor and no single tenant."""
    if kind is PrincipalKind.CONTRACTOR:
        if not contractor_id:
            return "a contractor principal needs a contractor_id"
        if tenant is not None:
            return (
                "a contractor principal has no tenant (it serves the tenants its contractor "
                "works for): leave tenant out"
            )
        return None
    article = "an" if kind.value[0] in "aeiou" else "a"
    if not tenant:
        return f"{article} {kind.value} principal needs a tenant"
    if contractor_id is not None:
        return (
            f"{article} {kind.value} principal has no contractor_id (only contractor principals do)"
        )
    return None


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: ``id`` names it in logs and rate limits (e.g. ``"acme-erp"``).

    ``tenant`` is set for partners and operators (their one tenant), ``contractor_id`` for
    contractors only. Carries nothing of the caller's key.
    """

    id: str
    kind: PrincipalKind
    tenant: str | None = None
    contractor_id: str | None = None
    rate_limit: str | None = None
    """Its own request rate limit (``limits`` notation), instead of the service's default."""

    def __post_init__(self) -> None:
        if not PRINCIPAL_ID_PATTERN.fullmatch(self.id):
            msg = f"principal id {self.id!r} is not a lower-case slug"
            raise ValueError(msg)
        if problem := binding_problem(self.kind, self.tenant, self.contractor_id):
            msg = f"principal {self.id!r}: {problem}"
            raise ValueError(msg)

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.id}"


# --------------------------------------------------------------------------- keys and hashes


def hash_api_key(key: str) -> str:
    """The stored form of an API key: ``"sha256:"`` + the SHA-256 hex digest of its UTF-8 bytes.

    A fast, unsalted hash is the right tool here, unlike for passwords: our keys are random
    tokens with 256 bits of entropy (:func:`new_api_key`), so no dictionary or brute-force attack
    on a leaked hash is feasible and a slow KDF (bcrypt, argon2) would buy nothing but CPU time
    on every call. Being deterministic, the hash is also the lookup key
    (:class:`PrincipalDirectory`). Do not use it for human-chosen secrets.
    """
    if not key:
        msg = "an API key cannot be empty"
        raise ValueError(msg)
    return f"{KEY_HASH_SCHEME}:{hashlib.sha256(key.encode('utf-8')).hexdigest()}"


def new_api_key() -> str:
    """A new random API key: :data:`API_KEY_PREFIX` + 32 random bytes, URL-safe base64
    (``flk_`` + 43 characters). Hand it to the caller once; configure only its hash."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def is_key_hash(value: str) -> bool:
    """True if ``value`` has the form :func:`hash_api_key` produces."""
    return KEY_HASH_PATTERN.fullmatch(value) is not None


# --------------------------------------------------------------------------- configuration


def _principal_id(value: str) -> str:
    if not PRINCIPAL_ID_PATTERN.fullmatch(value):
        msg = (
            "must be 1-63 lower-case letters, digits, '.', '_' or '-', starting with a letter "
            "or digit (e.g. 'acme-erp')"
        )
        raise ValueError(msg)
    return value


PrincipalId = Annotated[str, AfterValidator(_principal_id)]


class PrincipalSpec(BaseModel):
    """One configured principal, as in ``FIXLOOP_ORDERS_PRINCIPALS``, e.g.
    ``{"id": "acme-erp", "kind": "partner", "tenant": "acme", "key_hashes": ["sha256:…"]}``.

    ``key_hashes`` holds 1 or 2 hashes (:func:`hash_api_key`); with 2, both keys are valid — the
    way to rotate a key without downtime. Every problem is reported as one line naming the
    principal; a plain key pasted where a hash belongs is refused without being repeated.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: PrincipalId
    kind: PrincipalKind
    tenant: TenantId | None = None
    contractor_id: Identifier | None = None
    key_hashes: list[str] = Field(
        description=(
            "Hashes ('sha256:<64 lowercase hex>') of the principal's API keys: 1, or 2 while "
            "a key is rotated. Never a plain key."
        )
    )
    rate_limit: str | None = Field(
        default=None,
        max_length=200,
        description=(
            "This principal's request rate limit, e.g. '100/second;3000/minute', instead of the "
            "service's default (FIXLOOP_ORDERS_GRPC_RATE_LIMIT)."
        ),
    )

    @model_validator(mode="wrap")
    @classmethod
    def _one_line(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """Every problem of an entry as one line that names the principal and the field."""
        try:
            spec = handler(data)
        except ValidationError as exc:
            raise ValueError(_describe(data, exc)) from None
        if isinstance(spec, PrincipalSpec) and (
            problem := binding_problem(spec.kind, spec.tenant, spec.contractor_id)
        ):
            msg = f"principal {spec.id!r}: {problem}"
            raise ValueError(msg)
        return spec

    @field_validator("key_hashes")
    @classmethod
    def _hashes(cls, hashes: list[str]) -> list[str]:
        if not 1 <= len(hashes) <= MAX_KEY_HASHES:
            msg = f"holds {len(hashes)} hashes; a principal has 1, or 2 while its key is rotated"
            raise ValueError(msg)
        for index, value in enumerate(hashes):
            if not is_key_hash(value):
                # Never echo the value: it may be a plain key pasted by mistake.
                msg = (
                    f"[{index}] is not 'sha256:' followed by 64 lowercase hex digits; configure "
                    "the hash of a key (`fixloop keys hash`), never the key itself"
                )
                raise ValueError(msg)
        if len(set(hashes)) != len(hashes):
            msg = "lists the same hash twice"
            raise ValueError(msg)
        return hashes

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parse_rate_limit(value)  # ValueError names what it could not read
        return value.strip()

    def principal(self) -> Principal:
        return Principal(
            id=self.id,
            kind=self.kind,
            tenant=self.tenant,
            contractor_id=self.contractor_id,
            rate_limit=self.rate_limit,
        )

    def entry(self) -> dict[str, Any]:
        """The JSON object of this entry, as it goes into ``FIXLOOP_ORDERS_PRINCIPALS``."""
        return self.model_dump(mode="json", exclude_none=True)


def _describe(data: Any, exc: ValidationError) -> str:
    name = data.get("id") if isinstance(data, Mapping) else getattr(data, "id", None)
    who = (
        f"principal {name!r}"
        if isinstance(name, str) and PRINCIPAL_ID_PATTERN.fullmatch(name)
        else "a principal"
    )
    problems: list[str] = []
    for error in exc.errors(include_input=False, include_url=False):
        reason = str(error["msg"]).removeprefix("Value error, ")
        where = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            reason = f"unknown field (allowed: {', '.join(PrincipalSpec.model_fields)})"
        separator = "" if reason.startswith("[") else ": "
        problems.append(f"{where}{separator}{reason}" if where else reason)
    return f"{who}: {'; '.join(problems)}"


def _distinct(specs: list[PrincipalSpec]) -> list[PrincipalSpec]:
    PrincipalDirectory.of(specs)  # ValueError names the clash
    return specs


PrincipalSpecs = Annotated[list[PrincipalSpec], AfterValidator(_distinct)]
"""A setting's list of principals: each valid, ids and key hashes unique across the list."""


# --------------------------------------------------------------------------- lookup


class PrincipalDirectory:
    """The configured principals, found by a presented key.

    :meth:`authenticate` hashes the key and looks the hash up in a dict: the same work for any
    key, known or not, and nothing to compare byte by byte against a secret (what the lookup
    compares are hashes of random keys, useless to an attacker who cannot invert SHA-256).
    Only hashes are kept.
    """

    __slots__ = ("_by_hash", "_principals")

    def __init__(self, by_hash: Mapping[str, Principal]) -> None:
        for key_hash in by_hash:
            if not is_key_hash(key_hash):
                msg = "a key hash of the directory is not 'sha256:' + 64 lowercase hex digits"
                raise ValueError(msg)
        self._by_hash: Mapping[str, Principal] = MappingProxyType(dict(by_hash))
        self._principals = tuple(dict.fromkeys(self._by_hash.values()))

    @classmethod
    def of(cls, specs: Iterable[PrincipalSpec | Mapping[str, Any]]) -> PrincipalDirectory:
        """The directory of ``specs`` (entries or their JSON objects). Refuses, with one line,
        two principals with the same id and a key hash configured for more than one principal
        (or twice)."""
        by_hash: dict[str, Principal] = {}
        by_id: dict[str, Principal] = {}
        for raw in specs:
            spec = raw if isinstance(raw, PrincipalSpec) else PrincipalSpec.model_validate(raw)
            principal = spec.principal()
            if spec.id in by_id:
                msg = f"principal {spec.id!r} is configured twice; ids must be unique"
                raise ValueError(msg)
            by_id[spec.id] = principal
            for key_hash in spec.key_hashes:
                if (holder := by_hash.get(key_hash)) is not None:
                    msg = (
                        f"principals {holder.id!r} and {spec.id!r} have the same key hash; "
                        "every key belongs to exactly one principal"
                    )
                    raise ValueError(msg)
                by_hash[key_hash] = principal
        return cls(by_hash)

    @classmethod
    def empty(cls) -> PrincipalDirectory:
        return cls({})

    def authenticate(self, key: str | bytes) -> Principal | None:
        """The principal whose key ``key`` is, or None."""
        if isinstance(key, bytes):
            try:
                key = key.decode("utf-8")
            except UnicodeDecodeError:
                return None
        if not key or len(key) > MAX_PRESENTED_KEY_CHARS:
            return None
        return self._by_hash.get(hash_api_key(key))

    @property
    def principals(self) -> tuple[Principal, ...]:
        return self._principals

    def __len__(self) -> int:
        return len(self._principals)

    def __iter__(self) -> Iterator[Principal]:
        return iter(self._principals)

    def __repr__(self) -> str:
        kinds = ", ".join(
            f"{sum(p.kind is kind for p in self._principals)} {kind.value}"
            for kind in PrincipalKind
        )
        return f"{type(self).__name__}(<{kinds}>)"


__all__ = [
    "API_KEY_PREFIX",
    "KEY_HASH_PATTERN",
    "MAX_KEY_HASHES",
    "Principal",
    "PrincipalDirectory",
    "PrincipalId",
    "PrincipalKind",
    "PrincipalSpec",
    "PrincipalSpecs",
    "binding_problem",
    "hash_api_key",
    "is_key_hash",
    "new_api_key",
]
