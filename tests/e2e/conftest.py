"""The whole platform as separate processes on the embedded stack (one per test module)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from fixloop.v1 import work_orders_service_pb2 as service_pb2
from fixloop.v1 import work_orders_service_pb2_grpc as service_grpc
from fixloop.v1.work_order_pb2 import WorkOrder
from fixloop_devkit.devstack import LocalPlatform, StackPorts

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SLA_POLICY = Path(__file__).with_name("sla-policy.yaml")
"""Clocks in seconds: dispatch 12 s (warning 6 s before), arrival 8 s, progress 8 s."""


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    stack = LocalPlatform(
        data_dir=tmp_path_factory.mktemp("platform"),
        ports=StackPorts.free(),
        service_env={
            "sla": {"FIXLOOP_SLA_POLICY_REFRESH_SECONDS": "1"},
            # A killed notifications process gives its deliveries back within seconds.
            "notifications": {
                "FIXLOOP_NOTIFICATIONS_SMTP_TIMEOUT_SECONDS": "5",
                "FIXLOOP_NOTIFICATIONS_SMS_TIMEOUT_SECONDS": "5",
                "FIXLOOP_NOTIFICATIONS_WEBHOOK_TIMEOUT_SECONDS": "5",
                "FIXLOOP_NOTIFICATIONS_DELIVERY_LEASE_MARGIN_SECONDS": "3",
            },
        },
    )
    try:
        stack.start_infrastructure()
        stack.start_services()
        cli(stack, "sla", "policy", "import", str(SLA_POLICY))
        cli(stack, "contractors", "import", str(EXAMPLES / "contractors.yaml"))
        cli(stack, "parts", "import", str(EXAMPLES / "stock.yaml"))
        yield stack
    finally:
        stack.stop()


def cli(stack: LocalPlatform, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real ``fixloop`` command against the stack; fail the test on a non-zero exit."""
    env = {**os.environ, "FIXLOOP_KAFKA_BOOTSTRAP": stack.bootstrap}
    for service in ("contractors", "parts", "orders", "sla"):
        env.update(
            {
                k: v
                for k, v in stack.env_for(service).items()
                if k.endswith(("_MONGODB_URI", "_DATABASE"))
            }
        )
    env["FIXLOOP_ORDERS_GRPC_TARGET"] = stack.grpc_target
    result = subprocess.run(
        [sys.executable, "-m", "fixloop_cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"fixloop {' '.join(args)} failed:\n{result.stderr}"
    return result


def order_file(
    directory: Path, example: str = "hvac-breakdown-berlin.json", **changes: Any
) -> tuple[Path, str]:
    """A copy of an example order with a fresh event id and a unique external id."""
    doc = json.loads((EXAMPLES / "orders" / example).read_text())
    external_id = changes.pop("external_id", f"E2E-{uuid.uuid4().hex[:12]}")
    doc["id"] = str(uuid.uuid4())
    doc["data"]["external_id"] = external_id
    for key, value in changes.items():
        if key.startswith("data_"):
            doc["data"][key.removeprefix("data_")] = value
        else:
            doc[key] = value
    path = directory / f"{external_id}-{doc['id'][:8]}.json"
    path.write_text(json.dumps(doc))
    return path, external_id


def get_work_order(stack: LocalPlatform, work_order_id: str, api_key: str) -> WorkOrder:
    with grpc.insecure_channel(stack.grpc_target) as channel:
        stub: Any = service_grpc.WorkOrdersServiceStub(channel)  # type: ignore[no-untyped-call]
        response: service_pb2.GetWorkOrderResponse = stub.GetWorkOrder(
            service_pb2.GetWorkOrderRequest(work_order_id=work_order_id),
            metadata=(("x-api-key", api_key),),
            timeout=10,
        )
        return response.work_order
