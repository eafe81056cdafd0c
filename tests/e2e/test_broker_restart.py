"""The broker dies and comes back empty while orders flow; the platform recovers by itself.

The embedded broker keeps everything in memory, so a restart loses every topic, record and
committed offset: what real Kafka can lose after an unclean leader election. Every service must
notice, re-create its topics and resume consuming within 30 s without being restarted (unready
meanwhile), and after ``fixloop outbox republish --since`` every order accepted before the
restart has all of its effects exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fixloop_devkit.devstack import SERVICES, LocalPlatform
from fixloop_devkit.testing import eventually
from fixloop_shared.store import make_client

from .conftest import cli, order_file

pytestmark = pytest.mark.e2e

ORDERS_BEFORE = 20
ORDERS_AFTER = 5


def ready(stack: LocalPlatform, service: str) -> bool:
    try:
        with urllib.request.urlopen(stack.health_url(service), timeout=3) as response:  # noqa: S310 - local URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def republish(stack: LocalPlatform, service: str, since: datetime) -> str:
    env = {**os.environ, **stack.env_for(service)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fixloop_cli",
            "outbox",
            "republish",
            "--service",
            service,
            "--since",
            since.isoformat(),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


async def store_rows(
    stack: LocalPlatform, service: str, collection: str, query: dict[str, Any]
) -> list[dict[str, Any]]:
    client = make_client(stack.mongodb_uri(service), app_name="fixloop-tests")
    try:
        return await client[f"fixloop_{service}"][collection].find(query).to_list()
    finally:
        await client.close()


async def test_a_broker_restart_is_survived_and_republish_restores_every_effect(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    pids = {s: platform.processes[s].pid for s in SERVICES}
    since = datetime.now(UTC) - timedelta(seconds=5)
    batch = tmp_path / "before"
    batch.mkdir()
    before = [order_file(batch) for _ in range(ORDERS_BEFORE)]
    cli(platform, "inbound", "publish", *(str(p) for p, _ in before))
    external_before = {external_id for _, external_id in before}

    async def accepted() -> list[dict[str, Any]]:
        rows = await store_rows(platform, "orders", "work_orders", {})
        return [r for r in rows if r.get("external_id") in external_before]

    await eventually(accepted, lambda rows: len(rows) >= 8, timeout=60, interval=0.1)

    platform.processes["kafka"].kill()
    platform.processes.pop("kafka")
    await asyncio.sleep(1)
    states = await asyncio.gather(*(asyncio.to_thread(ready, platform, s) for s in SERVICES))
    seen_unready = {s: not state for s, state in zip(SERVICES, states, strict=True)}
    platform.start_broker()
    restarted = time.monotonic()

    async def all_ready() -> dict[str, bool]:
        answers = await asyncio.gather(*(asyncio.to_thread(ready, platform, s) for s in SERVICES))
        states = dict(zip(SERVICES, answers, strict=True))
        for service, is_ready in states.items():
            seen_unready[service] |= not is_ready
        return states

    await eventually(all_ready, lambda states: all(states.values()), timeout=30, interval=0.5)
    resumed_after = time.monotonic() - restarted
    assert all(seen_unready.values()), seen_unready
    assert {s: platform.processes[s].pid for s in SERVICES} == pids, "a service was restarted"

    # New orders flow through at once.
    after_dir = tmp_path / "after"
    after_dir.mkdir()
    after = [order_file(after_dir) for _ in range(ORDERS_AFTER)]
    cli(platform, "inbound", "publish", *(str(p) for p, _ in after))

    for service in ("orders", "contractors", "parts", "sla", "notifications"):
        out = republish(platform, service, since)
        assert "republished" in out

    accepted_orders = await accepted()
    assert len(accepted_orders) >= 8
    work_orders = {str(r["_id"]): str(r["external_id"]) for r in accepted_orders}
    external_after = {external_id for _, external_id in after}

    async def effects() -> dict[str, dict[str, int]]:
        offers = await store_rows(platform, "contractors", "offers", {})
        unfilled = await store_rows(platform, "contractors", "unfilled", {})
        decided = await store_rows(platform, "parts", "work_order_parts", {})
        clocks = await store_rows(platform, "sla", "sla_orders", {})
        mails = [p.read_text(errors="replace") for p in platform.mail_dir.glob("*.eml")]
        counts: dict[str, dict[str, int]] = {}
        for work_order_id, external_id in work_orders.items():
            counts[work_order_id] = {
                "dispatch": sum(1 for o in offers if o.get("work_order_id") == work_order_id)
                + sum(1 for u in unfilled if u.get("work_order_id") == work_order_id),
                "parts": sum(1 for d in decided if d.get("_id") == work_order_id),
                "clock": sum(1 for c in clocks if c.get("_id") == work_order_id),
                "mail": sum(1 for m in mails if external_id in m),
            }
        return counts

    once = {"dispatch": 1, "parts": 1, "clock": 1, "mail": 1}
    counts = await eventually(
        effects, lambda c: all(v == once for v in c.values()), timeout=120, interval=2
    )
    assert len(counts) == len(work_orders)

    async def after_received() -> set[str]:
        rows = await store_rows(platform, "orders", "work_orders", {})
        return {str(r.get("external_id")) for r in rows} & external_after

    await eventually(after_received, lambda found: found == external_after, timeout=60)
    print(json.dumps({"resumed_after_seconds": round(resumed_after, 1)}))  # noqa: T201
