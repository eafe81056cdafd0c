"""The rendered dev and prod overlays validate offline, resource by resource.

Built-in kinds are checked with kubernetes-validate (the Kubernetes OpenAPI schemas as JSON
Schema, strict: an unknown field fails); the custom resources (Strimzi, KEDA, Prometheus
Operator, Gateway API) against the CRD schemas vendored under tests/schemas/ (see its README),
made strict the way the API server's strict field validation is: an object with declared
properties admits no other field unless the CRD says it preserves unknown fields. A kind with no
schema here fails: nothing is skipped. CEL rules (``x-kubernetes-validations``) are not
evaluated.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
from kubernetes_validate import utils as kv_utils
from referencing import Registry, Resource

from tests.unit.k8s_render import OVERLAYS, Doc, of_kind, render

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
KUBERNETES_VERSION = "1.37"
"""The Kubernetes minor version the built-in kinds are validated against."""

STRIMZI_API = "kafka.strimzi.io/v1"
OBSOLETE_STRIMZI_ANNOTATIONS = {"strimzi.io/kraft", "strimzi.io/node-pools"}
SCALER_KINDS = {"ScaledObject", "HorizontalPodAutoscaler"}


@functools.cache
def crd_schemas() -> dict[tuple[str, str], Path]:
    """(apiVersion, kind) -> its vendored openAPIV3Schema, from each source's sources.json."""
    found: dict[tuple[str, str], Path] = {}
    for sources in sorted(SCHEMAS.glob("*/sources.json")):
        manifest = json.loads(sources.read_text(encoding="utf-8"))
        for entry in manifest["schemas"]:
            found[(entry["apiVersion"], entry["kind"])] = sources.parent / entry["file"]
    return found


def strict(schema: Any) -> Any:
    """A CRD's structural schema as the API server applies it with strict field validation, in
    JSON Schema terms: undeclared fields are errors, ``nullable`` admits null, int-or-string
    admits both."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in result
        and "additionalProperties" not in result
        and not result.get("x-kubernetes-preserve-unknown-fields")
    ):
        result["additionalProperties"] = False
    if result.pop("nullable", False) and "type" in result:
        result["type"] = [result["type"], "null"]
    pattern = result.get("pattern")
    if isinstance(pattern, str) and "(?i)" in pattern[1:]:
        # Go's RE2 takes an inline flag anywhere; Python only at the start
        result["pattern"] = "(?i)" + pattern.replace("(?i)", "")
    if result.get("x-kubernetes-int-or-string") and "anyOf" not in result:
        result.pop("type", None)
        result["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return result


@functools.cache
def crd_validator(api_version: str, kind: str) -> jsonschema.Draft7Validator:
    path = crd_schemas()[(api_version, kind)]
    schema = strict(json.loads(path.read_text(encoding="utf-8")))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@functools.cache
def _builtin_definitions() -> Any:
    return kv_utils.schema_contents(f"{_builtin_dir()}/_definitions.json", KUBERNETES_VERSION)


def _builtin_dir() -> str:
    [version] = {v for v in kv_utils.all_versions() if v.startswith(f"{KUBERNETES_VERSION}.")}
    return f"kubernetes-json-schema/v{version}-local-strict"


@functools.cache
def builtin_validator(api_version: str, kind: str) -> jsonschema.Draft202012Validator:
    """kubernetes-validate's strict schema of a built-in kind, loaded once per kind (what
    ``kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)`` checks, without
    reading the definitions again for every resource)."""
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = kv_utils.schema_contents(
        f"{_builtin_dir()}/{kind.lower()}-{group_version}.json", KUBERNETES_VERSION
    )
    registry: Registry[Any] = Resource.from_contents(schema) @ Registry()
    registry = Resource.from_contents(_builtin_definitions()) @ registry
    return jsonschema.Draft202012Validator(schema, registry=registry)


def problems(doc: Doc) -> list[str]:
    """What is wrong with one resource (nothing: an empty list)."""
    key = (doc["apiVersion"], doc["kind"])
    if key in crd_schemas():
        return [
            f"{'.'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
            for error in crd_validator(*key).iter_errors(doc)
        ]
    try:
        validator = builtin_validator(*key)
    except FileNotFoundError:
        return [f"no schema for {doc['apiVersion']} {doc['kind']}: vendor its CRD schema"]
    return [
        f"{'.'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(doc)
    ]


def name_of(doc: Doc) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


# ------------------------------------------------------------------ the validator itself


def test_the_validator_refuses_what_the_api_server_would() -> None:
    """A typo, a wrong type, an old Strimzi version and an unknown kind each fail."""
    [topic] = of_kind(render("dev"), "KafkaTopic")[:1]
    assert problems(topic) == []
    typo = copy.deepcopy(topic)
    typo["spec"]["partiton"] = 3
    assert any("partiton" in p for p in problems(typo))
    wrong = copy.deepcopy(topic)
    wrong["spec"]["partitions"] = "three"
    assert problems(wrong)
    old = {**copy.deepcopy(topic), "apiVersion": "kafka.strimzi.io/v1beta2"}
    assert problems(old) == [
        "no schema for kafka.strimzi.io/v1beta2 KafkaTopic: vendor its CRD schema"
    ]
    [deployment] = of_kind(render("dev"), "Deployment")[:1]
    assert problems(deployment) == []
    bad = copy.deepcopy(deployment)
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 3
    assert problems(bad)
    # the same verdicts as kubernetes-validate's own entry point
    assert kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert problems(unknown)


def test_every_vendored_schema_is_recorded_with_its_source() -> None:
    recorded = {path.resolve() for path in crd_schemas().values()}
    on_disk = {
        p.resolve()
        for sources in SCHEMAS.glob("*/sources.json")
        for p in sources.parent.glob("*.json")
        if p.name != "sources.json"
    }
    assert recorded == on_disk
    for sources in SCHEMAS.glob("*/sources.json"):
        manifest = json.loads(sources.read_text(encoding="utf-8"))
        assert re.fullmatch(r"[0-9a-f]{40}", manifest["commit"]), sources
        assert manifest["repository"].startswith("https://github.com/"), sources
        assert manifest["tag"], sources


# ------------------------------------------------------------------ the overlays


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_every_rendered_resource_validates(overlay: str) -> None:
    docs = render(overlay)
    assert len(docs) > 30
    failures = {name_of(doc): found for doc in docs if (found := problems(doc))}
    assert not failures, json.dumps(failures, indent=1)


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_strimzi_resources_are_v1(overlay: str) -> None:
    strimzi = [d for d in render(overlay) if d["apiVersion"].startswith("kafka.strimzi.io/")]
    assert {d["kind"] for d in strimzi} >= {"KafkaTopic", "KafkaUser"}
    for doc in strimzi:
        assert doc["apiVersion"] == STRIMZI_API, name_of(doc)
        annotations = set((doc["metadata"].get("annotations") or {}).keys())
        assert not annotations & OBSOLETE_STRIMZI_ANNOTATIONS, name_of(doc)


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_no_fixed_replicas_under_a_scaler(overlay: str) -> None:
    """A Deployment a ScaledObject (or HPA) scales has no replica count of its own: every apply
    would reset it and rebalance the consumer groups."""
    docs = render(overlay)
    scaled: set[str] = set()
    for scaler in [d for d in docs if d["kind"] in SCALER_KINDS]:
        target = scaler["spec"]["scaleTargetRef"]
        assert target.get("kind", "Deployment") == "Deployment", name_of(scaler)
        scaled.add(target["name"])
    deployments = {d["metadata"]["name"]: d for d in of_kind(docs, "Deployment")}
    assert scaled <= set(deployments), "a scaler targets a Deployment that is not rendered"
    for name in scaled:
        assert "replicas" not in deployments[name]["spec"], f"{overlay}: {name} fixes replicas"
    # each Deployment has at most one scaler
    targets = [d["spec"]["scaleTargetRef"]["name"] for d in docs if d["kind"] in SCALER_KINDS]
    assert len(targets) == len(set(targets))
