"""A service's life as an operator sees it: started before its broker and store, it waits.

The orders service runs as its own process. It is started while nothing listens on its broker's
and store's ports: it must stay alive and unready (saying why), then become ready and turn an
inbound order into a work order within 30 s of the broker and store coming up.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixloop_devkit.devstack import LocalPlatform, StackPorts
from fixloop_devkit.testing import ConsumedRecord, read_topic
from fixloop_shared.topics import Topic
from tests.e2e.conftest import cli, order_file

pytestmark = pytest.mark.e2e


def readiness(stack: LocalPlatform, service: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(stack.health_url(service), timeout=5) as response:  # noqa: S310 - local URL
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}


def wait_for(condition: object, timeout: float, what: str) -> float:
    """Poll ``condition`` (a callable) until true; returns the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():  # type: ignore[operator]
            return time.monotonic() - start
        time.sleep(0.25)
    msg = f"{what} not within {timeout}s"
    raise AssertionError(msg)


@pytest.fixture
def bare_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    stack = LocalPlatform(data_dir=tmp_path_factory.mktemp("lifecycle"), ports=StackPorts.free())
    try:
        yield stack
    finally:
        stack.stop()


def test_a_service_started_before_its_broker_and_store_waits_then_takes_orders(
    bare_stack: LocalPlatform, tmp_path: Path
) -> None:
    stack = bare_stack
    stack.start_service("orders", wait=False)
    orders = stack.processes["orders"]

    wait_for(lambda: stack.is_up("orders"), 60, "orders /healthz")
    time.sleep(3)
    status, body = readiness(stack, "orders")
    assert status == 503
    checks = body["checks"]
    assert isinstance(checks, dict)
    assert checks["start-up"].startswith("failing: ConsumersNotReadyError: starting: store")
    assert orders.running, orders.tail()

    # Still alive and unready a while later: no crash loop.
    time.sleep(5)
    assert orders.running, orders.tail()
    assert readiness(stack, "orders")[0] == 503

    stack.start_broker()
    stack.start_store("orders")
    came_up = time.monotonic()
    took = wait_for(lambda: readiness(stack, "orders")[0] == 200, 30, "orders ready")

    path, external_id = order_file(tmp_path)
    cli(stack, "inbound", "publish", str(path))

    def received(records: list[ConsumedRecord]) -> bool:
        return any(
            r.headers.get("ce_type") == "fixloop.workorder.received.v1"
            and external_id.encode() in (r.value or b"")
            for r in records
        )

    remaining = 30 - (time.monotonic() - came_up)
    records = asyncio.run(
        read_topic(
            stack.bootstrap, Topic.WORKORDERS_EVENTS, until=received, timeout=max(remaining, 1)
        )
    )
    assert received(records), (
        f"no work order within 30 s of the broker and store (ready in {took:.1f}s)"
    )
    assert orders.running
