"""MongoDB storage of SLA policy versions.

``sla_policies``: one document per policy version, ``_id`` = ``"<name>:<version>"``, holding
``name``, ``version``, the canonical ``document`` (see :mod:`fixloop_sla.policy_file`), its
``digest`` (SHA-256 of the canonical JSON), ``imported_at`` (aware UTC) and ``imported_by``. A
unique index on (name, version) backs the ``_id``: two imports racing for the same version
cannot both write it.

Versions are immutable: an import writes a new version (the newest of that name plus one,
starting at 1) unless its content equals the newest version of that name; nothing here updates
or deletes a version, so a clock cycle that pinned one can always read it again.

The policy in force for new clock cycles is the newest version of the policy imported last:
:meth:`MongoPolicyStore.versions` lists every version in import order (``imported_at``, then
``version``), the active one last, as :class:`~fixloop_sla.domain.policy.PolicyBook` expects.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from fixloop_shared.store import Document, equals
from fixloop_sla.domain.policy import SlaPolicy
from fixloop_sla.policy_file import InvalidPolicyFile, parse_policy, policy_document

SLA_POLICIES = "sla_policies"
MAX_IMPORT_ATTEMPTS = 20
"""Inserts tried by one import when concurrent imports take the version it computed."""

log = logging.getLogger(__name__)


def policy_indexes() -> dict[str, Sequence[IndexModel]]:
    return {
        SLA_POLICIES: [
            IndexModel(
                [("name", ASCENDING), ("version", ASCENDING)],
                unique=True,
                name="one_document_per_policy_version",
            ),
            IndexModel([("version", ASCENDING)], unique=True, name="versions_across_policies"),
        ],
    }


def policy_digest(document: Mapping[str, object]) -> str:
    """SHA-256 (hex) of the canonical JSON of a policy document (sorted keys, no spaces)."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PolicyImport:
    """What an import did: a new version, or nothing (``unchanged``: the newest is the same)."""

    name: str
    version: int
    unchanged: bool
    digest: str
    policy: SlaPolicy


@dataclass(frozen=True)
class StoredPolicy:
    """One stored policy version and how it came to be."""

    policy: SlaPolicy
    document: dict[str, object]
    digest: str
    imported_at: datetime
    imported_by: str | None


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        msg = f"an import time must be timezone-aware, not {moment.isoformat()}"
        raise ValueError(msg)
    at = moment.astimezone(UTC)
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def _stored(doc: Document) -> StoredPolicy | None:
    """The version a stored document holds; None (logged) if it no longer parses."""
    key = doc.get("_id")
    try:
        version = doc["version"]
        document = doc["document"]
        imported_at = doc["imported_at"]
        if isinstance(version, bool) or not isinstance(version, int):
            msg = f"version {version!r} is not a number"
            raise InvalidPolicyFile(msg)
        if not isinstance(document, dict) or not isinstance(imported_at, datetime):
            msg = "document or imported_at missing"
            raise InvalidPolicyFile(msg)
        policy = parse_policy(document, version=version)
        if policy.name != doc.get("name"):
            msg = f"the document names policy {policy.name!r}, stored as {doc.get('name')!r}"
            raise InvalidPolicyFile(msg)
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("skipping stored SLA policy %s: %s", key, exc)
        return None
    imported_by = doc.get("imported_by")
    return StoredPolicy(
        policy=policy,
        document=document,
        digest=str(doc.get("digest", "")),
        imported_at=imported_at if imported_at.tzinfo else imported_at.replace(tzinfo=UTC),
        imported_by=imported_by if isinstance(imported_by, str) else None,
    )


class MongoPolicyStore:
    """The SLA policy versions of the sla service's database."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._policies = database[SLA_POLICIES]

    async def stored(self) -> list[StoredPolicy]:
        """Every stored version that parses, in import order (the active one last)."""
        found = [_stored(doc) async for doc in self._policies.find({})]
        kept = [entry for entry in found if entry is not None]
        return sorted(kept, key=lambda s: (s.imported_at, s.policy.version, s.policy.name))

    async def versions(self) -> list[SlaPolicy]:
        """Every stored version, the one in force for new clock cycles last."""
        return [entry.policy for entry in await self.stored()]

    async def _newest(self, name: str) -> Document | None:
        return await self._policies.find_one(equals({"name": name}), sort=[("version", DESCENDING)])

    async def _insert(
        self,
        document: dict[str, object],
        *,
        policy: SlaPolicy,
        digest: str,
        now: datetime,
        imported_by: str | None,
    ) -> None:
        record: dict[str, Any] = {
            "_id": f"{policy.name}:{policy.version}",
            "name": policy.name,
            "version": policy.version,
            "document": document,
            "digest": digest,
            "imported_at": _utc(now),
        }
        if imported_by is not None:
            record["imported_by"] = imported_by
        await self._policies.insert_one(record)

    async def import_policy(
        self, document: dict[str, object], *, now: datetime, imported_by: str | None = None
    ) -> PolicyImport:
        """Store ``document`` as the next version of its policy, unless the newest equals it.

        The document is validated and made canonical first (:class:`InvalidPolicyFile` if it
        does not parse; iCalendar references must already be inlined, as
        :func:`~fixloop_sla.policy_file.load_policy_file` does).
        """
        policy = parse_policy(document)
        canonical = policy_document(policy)
        digest = policy_digest(canonical)
        for _ in range(MAX_IMPORT_ATTEMPTS):
            newest = await self._newest(policy.name)
            if newest is not None and newest.get("digest") == digest:
                version = int(newest["version"])
                return PolicyImport(
                    name=policy.name,
                    version=version,
                    unchanged=True,
                    digest=digest,
                    policy=policy.with_version(version),
                )
            # Versions count across every policy name: a cycle pins one number, unambiguously.
            latest = await self._policies.find_one({}, sort=[("version", DESCENDING)])
            version = 1 if latest is None else int(latest["version"]) + 1
            numbered = policy.with_version(version)
            try:
                await self._insert(
                    canonical, policy=numbered, digest=digest, now=now, imported_by=imported_by
                )
            except DuplicateKeyError:
                continue  # another import took this version: look again
            return PolicyImport(
                name=policy.name, version=version, unchanged=False, digest=digest, policy=numbered
            )
        msg = f"policy {policy.name}: {MAX_IMPORT_ATTEMPTS} concurrent imports took every version"
        raise RuntimeError(msg)

    async def ensure_standard(self, policy: SlaPolicy, *, now: datetime) -> None:
        """Store ``policy`` as version 1 when no policy is stored at all (idempotent)."""
        if await self._policies.find_one({}, {"_id": 1}) is not None:
            return
        canonical = policy_document(policy)
        try:
            await self._insert(
                canonical,
                policy=policy.with_version(1),
                digest=policy_digest(canonical),
                now=now,
                imported_by=None,
            )
        except DuplicateKeyError:
            return  # another instance stored it first


__all__ = [
    "SLA_POLICIES",
    "MongoPolicyStore",
    "PolicyImport",
    "StoredPolicy",
    "policy_digest",
    "policy_indexes",
]
