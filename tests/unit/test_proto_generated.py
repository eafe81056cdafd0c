"""The committed generated code under ``proto/fixloop/v1`` is exactly what ``make proto`` makes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO_ROOT / "proto"
PACKAGE_DIR = PROTO_ROOT / "fixloop" / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def _protos() -> list[str]:
    return sorted(path.relative_to(REPO_ROOT).as_posix() for path in PACKAGE_DIR.glob("*.proto"))


def _generated(directory: Path) -> dict[str, bytes]:
    return {
        path.name: path.read_bytes()
        for path in sorted(directory.iterdir())
        if path.name.endswith(GENERATED_SUFFIXES)
    }


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("generated")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-Iproto",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            *_protos(),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    return _generated(out / "fixloop" / "v1")


def test_there_are_protos() -> None:
    assert _protos(), "no .proto files under proto/fixloop/v1"


def test_every_proto_has_its_generated_code() -> None:
    committed = _generated(PACKAGE_DIR)
    for proto in _protos():
        stem = Path(proto).stem
        for suffix in GENERATED_SUFFIXES:
            assert f"{stem}{suffix}" in committed, f"{stem}{suffix} is missing: run `make proto`"


def test_committed_generated_code_is_up_to_date(regenerated: dict[str, bytes]) -> None:
    committed = _generated(PACKAGE_DIR)
    assert sorted(committed) == sorted(regenerated), (
        "generated files differ from the protos (stale or orphaned): run `make proto`"
    )
    stale = [name for name, content in regenerated.items() if committed[name] != content]
    assert not stale, f"stale generated code {stale}: run `make proto`"


def test_generated_code_imports() -> None:
    from fixloop.v1 import work_orders_service_pb2, work_orders_service_pb2_grpc

    service = work_orders_service_pb2.DESCRIPTOR.services_by_name["WorkOrdersService"]
    assert service.full_name == "fixloop.v1.WorkOrdersService"
    assert [method.name for method in service.methods] == [
        "GetWorkOrder",
        "ListWorkOrders",
        "CreateWorkOrder",
        "WatchWorkOrders",
        "CancelWorkOrder",
        "VerifyCompletion",
        "RejectCompletion",
        "AddComment",
    ]
    assert hasattr(work_orders_service_pb2_grpc, "WorkOrdersServiceStub")


def test_dispatch_service_is_generated() -> None:
    from fixloop.v1 import dispatch_service_pb2, dispatch_service_pb2_grpc

    service = dispatch_service_pb2.DESCRIPTOR.services_by_name["DispatchService"]
    assert service.full_name == "fixloop.v1.DispatchService"
    assert [method.name for method in service.methods] == ["ExplainDispatch"]
    assert hasattr(dispatch_service_pb2_grpc, "add_DispatchServiceServicer_to_server")


def test_requests_carry_no_tenant() -> None:
    """The tenant of a call comes from its credentials; no request message can name one."""
    from fixloop.v1 import (
        contractor_jobs_service_pb2,
        dispatch_service_pb2,
        work_orders_service_pb2,
    )

    for module in (work_orders_service_pb2, contractor_jobs_service_pb2, dispatch_service_pb2):
        for message in module.DESCRIPTOR.message_types_by_name.values():
            if message.name.endswith("Request"):
                assert not any("tenant" in field.name for field in message.fields), message.name


def _buf() -> str:
    return str(Path(sys.executable).with_name("buf"))


def test_partner_contract_is_compatible_with_the_released_baseline() -> None:
    completed = subprocess.run(
        [_buf(), "breaking", "proto", "--against", "proto/breaking-baseline.json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_breaking_change_against_the_baseline_is_caught(tmp_path: Path) -> None:
    """Renumbering a field, as a careless edit would, fails ``make lint``."""
    changed = tmp_path / "proto"
    (changed / "fixloop" / "v1").mkdir(parents=True)
    (changed / "buf.yaml").write_bytes((PROTO_ROOT / "buf.yaml").read_bytes())
    shutil.copytree(PROTO_ROOT / "google", changed / "google")
    for proto in PACKAGE_DIR.glob("*.proto"):
        text = proto.read_text()
        if proto.name == "work_order.proto":
            assert "string tenant = 2;" in text
            text = text.replace("string tenant = 2;", "string tenant = 99;")
        (changed / "fixloop" / "v1" / proto.name).write_text(text)
    completed = subprocess.run(
        [_buf(), "breaking", str(changed), "--against", str(PROTO_ROOT / "breaking-baseline.json")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode != 0
    assert 'field "2" with name "tenant" on message "WorkOrder" was deleted' in completed.stdout
