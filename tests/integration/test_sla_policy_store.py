"""SLA policy versions in the sla service's store (the embedded MongoDB-wire store), and the
``fixloop sla policy import/list`` commands against it."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pymongo import IndexModel

from fixloop_shared.store import MongoClient, Store, merged_indexes
from fixloop_shared.topics import Service
from fixloop_sla.adapters.mongo import CYCLES, ORDERS
from fixloop_sla.adapters.policies import (
    SLA_POLICIES,
    MongoPolicyStore,
    policy_digest,
    policy_indexes,
)
from fixloop_sla.domain.standard import standard_policy
from fixloop_sla.main import ensure_indexes
from fixloop_sla.policy_file import load_policy_file, parse_policy, policy_document

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "sla-policy.yaml"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def policy_store(client: MongoClient, database: str) -> MongoPolicyStore:
    db = client[database]
    for collection, models in policy_indexes().items():
        await db[collection].create_indexes(list(models))
    return MongoPolicyStore(db)


def changed(document: dict[str, Any], *, name: str | None = None, target: str = "5h") -> Any:
    """``document`` with the arrival clock's default target changed (and maybe its name)."""
    edited = copy.deepcopy(document)
    edited["clocks"][1]["goals"][-1]["target"] = target
    if name is not None:
        edited["name"] = name
    return edited


async def test_imports_make_immutable_versions_and_the_last_imported_is_in_force(
    mongo_client: MongoClient, database_name: str
) -> None:
    store = await policy_store(mongo_client, database_name)
    standard = policy_document(standard_policy())

    first = await store.import_policy(standard, now=T0, imported_by="ops")
    assert (first.name, first.version, first.unchanged) == ("standard", 1, False)
    again = await store.import_policy(copy.deepcopy(standard), now=T0 + timedelta(hours=1))
    assert (again.version, again.unchanged) == (1, True)

    second = await store.import_policy(changed(standard), now=T0 + timedelta(hours=2))
    assert (second.version, second.unchanged) == (2, False)
    other = await store.import_policy(changed(standard, name="acme"), now=T0 + timedelta(hours=3))
    assert (other.name, other.version) == ("acme", 3)  # versions count across policy names

    versions = await store.versions()
    assert [(p.name, p.version) for p in versions] == [
        ("standard", 1),
        ("standard", 2),
        ("acme", 3),
    ]
    assert versions[0] == standard_policy()
    assert versions[1] == parse_policy(changed(standard), version=2)

    raw = await mongo_client[database_name][SLA_POLICIES].find_one({"_id": "standard:2"})
    assert raw is not None
    assert raw["name"] == "standard"
    assert raw["version"] == 2
    assert raw["digest"] == policy_digest(changed(standard)) == second.digest
    assert raw["imported_at"] == T0 + timedelta(hours=2)
    assert raw["imported_at"].tzinfo is not None
    stored = await store.stored()
    assert stored[0].imported_by == "ops"
    assert stored[0].document == standard

    # Going back to the first content is a new version: versions are never rewritten.
    back = await store.import_policy(standard, now=T0 + timedelta(hours=4))
    assert (back.version, back.unchanged) == (4, False)
    assert [(p.name, p.version) for p in await store.versions()][-1] == ("standard", 4)
    assert await mongo_client[database_name][SLA_POLICIES].count_documents({}) == 4


async def test_concurrent_imports_never_share_a_version(
    mongo_client: MongoClient, database_name: str
) -> None:
    store = await policy_store(mongo_client, database_name)
    standard = policy_document(standard_policy())
    results = await asyncio.gather(
        *(
            store.import_policy(changed(standard, target=f"{hours}h"), now=T0)
            for hours in range(5, 10)
        )
    )
    assert sorted(r.version for r in results) == [1, 2, 3, 4, 5]
    indexes = await mongo_client[database_name][SLA_POLICIES].index_information()
    assert any(
        spec.get("unique") and [k for k, _ in spec["key"]] == ["name", "version"]
        for spec in indexes.values()
    )


async def test_the_standard_policy_is_stored_once_and_only_into_an_empty_store(
    mongo_client: MongoClient, database_name: str
) -> None:
    store = await policy_store(mongo_client, database_name)
    await store.ensure_standard(standard_policy(), now=T0)
    await store.ensure_standard(standard_policy(), now=T0 + timedelta(minutes=1))
    assert await store.versions() == [standard_policy()]
    unchanged = await store.import_policy(policy_document(standard_policy()), now=T0)
    assert unchanged.unchanged

    other = await policy_store(mongo_client, f"{database_name}_other")
    await other.import_policy(changed(policy_document(standard_policy()), name="acme"), now=T0)
    await other.ensure_standard(standard_policy(), now=T0)
    assert [(p.name, p.version) for p in await other.versions()] == [("acme", 1)]


async def test_a_stored_version_that_no_longer_parses_is_skipped(
    mongo_client: MongoClient, database_name: str
) -> None:
    store = await policy_store(mongo_client, database_name)
    await store.ensure_standard(standard_policy(), now=T0)
    await mongo_client[database_name][SLA_POLICIES].insert_one(
        {
            "_id": "broken:2",
            "name": "broken",
            "version": 2,
            "document": {"name": "broken", "clocks": "none"},
            "digest": "x",
            "imported_at": T0 + timedelta(hours=1),
        }
    )
    assert await store.versions() == [standard_policy()]


# -- the command line ---------------------------------------------------------------------------


def fixloop_sla(uri: str, database: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FIXLOOP_SLA_MONGODB_URI": uri, "FIXLOOP_SLA_DATABASE": database}
    return subprocess.run(
        [sys.executable, "-m", "fixloop_cli", "sla", "policy", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


async def test_the_cli_imports_a_good_file_refuses_a_bad_one_and_lists_versions(
    mongodb_uri: str, database_name: str, tmp_path: Path
) -> None:
    document, _ = load_policy_file(EXAMPLE)
    bad = tmp_path / "bad.yaml"
    broken = changed(document, target="4 hours")
    bad.write_text(yaml.safe_dump(broken, sort_keys=False))

    good_run, bad_run = await asyncio.gather(
        asyncio.to_thread(fixloop_sla, mongodb_uri, database_name, "import", str(EXAMPLE)),
        asyncio.to_thread(fixloop_sla, mongodb_uri, database_name, "import", str(bad)),
    )
    assert good_run.returncode == 0, good_run.stderr
    assert good_run.stdout.strip() == "imported policy standard version 1"
    assert bad_run.returncode == 2
    assert bad_run.stderr.strip().splitlines() == [
        f'error: {bad}: clocks[1].goals[2].target: "4 hours" is not a duration (use e.g. 2h, '
        "90m, 1h30m, 45s)"
    ]
    assert "Traceback" not in bad_run.stderr

    listed = await asyncio.to_thread(fixloop_sla, mongodb_uri, database_name, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["name"], r["version"], r["active"]) for r in rows] == [("standard", 1, True)]
    assert rows[0]["document"] == document
    assert rows[0]["digest"] == policy_digest(document)


async def test_the_service_creates_the_timers_and_the_reads_indexes_side_by_side(
    mongo_client: MongoClient, database_name: str
) -> None:
    """The timers' due index and the reports' deadline index live on the same collection: both
    are created (the timers read due clocks in pages on theirs, never by scanning every order)."""
    store = Store(mongo_client, database_name, service=Service.SLA)
    await ensure_indexes(store)
    info = await store.db[ORDERS].index_information()
    keys = {tuple(field for field, _ in spec["key"]) for spec in info.values()}
    assert {
        ("partition", "next_due_ms"),
        ("partition", "updated_ms"),
        ("tenant", "earliest_deadline_ms"),
        ("earliest_deadline_ms",),
    } <= keys
    cycles = await store.db[CYCLES].index_information()
    assert ("tenant", "closed_ms") in {tuple(f for f, _ in s["key"]) for s in cycles.values()}


def test_index_lists_of_one_collection_are_merged_not_replaced() -> None:
    first = {"orders": [IndexModel([("a", 1)])], "other": [IndexModel([("c", 1)])]}
    second = {"orders": [IndexModel([("b", 1)])]}
    merged = merged_indexes(first, second)
    assert [m.document["key"] for m in merged["orders"]] == [{"a": 1}, {"b": 1}]
    assert [m.document["key"] for m in merged["other"]] == [{"c": 1}]
