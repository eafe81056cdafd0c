"""A partner's generated Python client against the real orders service.

``buf generate --template buf.gen.python.yaml`` (what ``make sdk-python`` runs, offline) writes
the client into a temporary folder; a separate Python process imports it from there — and from
nowhere else: every other ``fixloop.v1`` on its path, the project's own generated code included,
is taken off it first — and calls the orders service, started in this process by its own wiring on
the embedded broker and store, with a partner's API key: CreateWorkOrder, GetWorkOrder, and a
malformed id answered with a ``google.rpc.BadRequest``.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fixloop_devkit.testing import start_in_process, unique
from fixloop_orders.main import bootstrap
from fixloop_orders.settings import OrdersSettings
from fixloop_shared.grpc_edge.principals import PrincipalKind, PrincipalSpec, hash_api_key
from fixloop_shared.settings import KafkaSettings

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = "buf.gen.python.yaml"
PARTNER_TEMPLATE = "buf.gen.yaml"
CLIENT_OUT = Path("clients") / "python"
TENANT = "partner-sdk-it-acme"
KEY = "partner-sdk-it-acme-key-4d2e"
PRINCIPAL = PrincipalSpec(
    id="partner-sdk-it-erp",
    kind=PrincipalKind.PARTNER,
    tenant=TENANT,
    key_hashes=[hash_api_key(KEY)],
)

# What a partner writes against the generated client (argv: client folder, port, key, external id).
PARTNER_CLIENT = """
import json, sys, uuid
from pathlib import Path

client, port, key, external_id = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
others = [p for p in sys.path if (Path(p or ".") / "fixloop" / "v1").is_dir()]
sys.path[:] = [str(client)] + [p for p in sys.path if p not in others]

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from fixloop.v1 import work_order_pb2 as wo, work_orders_service_pb2 as api
from fixloop.v1 import work_orders_service_pb2_grpc as api_grpc

auth = (("x-api-key", key),)
with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
    stub = api_grpc.WorkOrdersServiceStub(channel)
    created = stub.CreateWorkOrder(
        api.CreateWorkOrderRequest(
            request_id=str(uuid.uuid4()),
            work_order=api.WorkOrderSubmission(
                external_id=external_id,
                site=wo.Site(site_id="hamburg-1", name="Store Hamburg", timezone="Europe/Berlin",
                             address=wo.Address(line1="Jungfernstieg 1", city="Hamburg",
                                                postal_code="20354", country="DE")),
                equipment=wo.Equipment(equipment_id="chiller-2", equipment_class="refrigeration"),
                category=wo.CATEGORY_BREAKDOWN,
                priority=wo.PRIORITY_HIGH,
                description="Chiller 2 does not cool below 12 degrees.",
                requester=wo.Requester(name="Jana Ott", email="jana.ott@example.com", locale="de"),
            ),
        ),
        metadata=auth,
        timeout=10,
    )
    got = stub.GetWorkOrder(
        api.GetWorkOrderRequest(work_order_id=created.work_order.id), metadata=auth, timeout=10
    )
    try:
        stub.GetWorkOrder(api.GetWorkOrderRequest(work_order_id="WO-1"), metadata=auth, timeout=10)
        refused = None
    except grpc.RpcError as error:
        bad_request = error_details_pb2.BadRequest()
        rpc_status.from_call(error).details[0].Unpack(bad_request)
        refused = {
            "code": error.code().name,
            "fields": [v.field for v in bad_request.field_violations],
        }

print(json.dumps({
    "modules": sorted({wo.__file__, api.__file__, api_grpc.__file__}),
    "created": created.created,
    "id": created.work_order.id,
    "got": {
        "id": got.work_order.id,
        "tenant": got.work_order.tenant,
        "state": wo.WorkOrderState.Name(got.work_order.state),
        "source_platform": got.work_order.source_platform,
        "external_id": got.work_order.external_id,
        "equipment_class": got.work_order.equipment.equipment_class,
        "priority": wo.Priority.Name(got.work_order.priority),
        "timeline": [entry.kind for entry in got.work_order.timeline],
    },
    "refused": refused,
}))
"""


def _with_project_python() -> dict[str, str]:
    """The environment with this interpreter's folder first on PATH: the template's ``python``."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


@pytest.fixture(scope="module")
def generated_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Python client as ``buf generate`` makes it for a partner, in a temporary folder."""
    out = tmp_path_factory.mktemp("partner-sdk")
    completed = subprocess.run(
        [
            str(Path(sys.executable).with_name("buf")),
            "generate",
            "--template",
            TEMPLATE,
            "--output",
            str(out),
        ],
        cwd=REPO_ROOT,
        env=_with_project_python(),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return out / CLIENT_OUT


@pytest.fixture(scope="module")
async def orders_port(kafka_bootstrap: str, mongodb_uri: str) -> AsyncIterator[int]:
    """The orders service, built by its own wiring, serving gRPC on a free port."""
    settings = OrdersSettings(
        mongodb_uri=mongodb_uri,
        database=unique("partner_sdk_it").replace("-", "_"),
        kafka=KafkaSettings(bootstrap=kafka_bootstrap),
        health_port=0,
        grpc_port=0,
        grpc_reflection=False,
        principals=[PRINCIPAL],
        outbox_poll_seconds=0.1,
    )
    service = await start_in_process(lambda: bootstrap(settings))
    port = service.partner_api.bound_port
    assert port is not None
    try:
        yield port
    finally:
        await service.app.stop()


async def _run_partner_client(client: Path, port: int, external_id: str) -> dict[str, Any]:
    """Runs the partner's script in its own process; the server keeps serving meanwhile."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        "-c",
        PARTNER_CLIENT,
        str(client),
        str(port),
        KEY,
        external_id,
        cwd=client,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()
    answer: dict[str, Any] = json.loads(stdout)
    return answer


def test_the_generated_client_is_complete(generated_client: Path) -> None:
    package = generated_client / "fixloop" / "v1"
    protos = sorted(path.stem for path in (REPO_ROOT / "proto" / "fixloop" / "v1").glob("*.proto"))
    assert protos
    for stem in protos:
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
            assert (package / f"{stem}{suffix}").is_file(), f"{stem}{suffix} not generated"
    # google/api comes from googleapis-common-protos, not from the generated client.
    assert not (generated_client / "google").exists()
    stub = (package / "work_orders_service_pb2_grpc.py").read_text()
    assert "class WorkOrdersServiceStub" in stub


async def test_the_generated_python_client_calls_the_orders_service(
    generated_client: Path, orders_port: int
) -> None:
    external_id = unique("SDK")
    answer = await _run_partner_client(generated_client, orders_port, external_id)

    # Every generated module the client imported came from the temporary folder.
    assert answer["modules"]
    client_folder = str(generated_client) + os.sep
    for module in answer["modules"]:
        assert module.startswith(client_folder), module

    assert answer["created"] is True
    got = answer["got"]
    assert got["id"] == answer["id"]
    assert got["tenant"] == TENANT
    assert got["state"] == "WORK_ORDER_STATE_RECEIVED"
    assert got["source_platform"] == f"partner:{PRINCIPAL.id}"
    assert got["external_id"] == external_id
    assert got["equipment_class"] == "refrigeration"
    assert got["priority"] == "PRIORITY_HIGH"
    assert "received" in got["timeline"]

    assert answer["refused"] == {"code": "INVALID_ARGUMENT", "fields": ["work_order_id"]}


def test_every_proto_names_its_package_in_every_language() -> None:
    """The same options in every file (buf lint checks sameness, this checks presence)."""
    stems = sorted(path.stem for path in (REPO_ROOT / "proto" / "fixloop" / "v1").glob("*.proto"))
    for stem in stems:
        options = importlib.import_module(f"fixloop.v1.{stem}_pb2").DESCRIPTOR.GetOptions()
        assert options.go_package == "fixloop.example.com/clients/go/fixloop/v1;fixloopv1", stem
        assert options.java_package == "com.example.fixloop.v1", stem
        assert options.java_multiple_files, stem
        assert options.java_outer_classname == stem.title().replace("_", "") + "Proto", stem
        assert options.csharp_namespace == "Fixloop.V1", stem
        assert options.php_namespace == "Fixloop\\V1", stem
        assert options.ruby_package == "Fixloop::V1", stem
        assert options.objc_class_prefix == "FVX", stem


def test_the_partner_template_makes_four_pinned_clients() -> None:
    """buf.gen.yaml (``make sdk``) writes Python, Go, TypeScript and Java into clients/<lang>/,
    each with a plugin of a fixed version, so one contract always gives the same code."""
    template = yaml.safe_load((REPO_ROOT / PARTNER_TEMPLATE).read_text())
    assert template["version"] == "v2"
    plugins = template["plugins"]
    outputs = {plugin["out"] for plugin in plugins}
    assert outputs == {f"clients/{lang}" for lang in ("python", "go", "typescript", "java")}
    for plugin in plugins:
        name, _, version = plugin["remote"].partition(":")
        assert name.startswith("buf.build/"), plugin
        assert version.startswith("v"), f"{name} is not pinned to a version"
    assert template["inputs"] == [{"directory": "proto", "exclude_paths": ["proto/google"]}]
