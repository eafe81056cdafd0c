"""The monitoring of deploy/k8s/base/monitoring: every alert rule passes `promtool check rules`
and its unit tests (`promtool test rules`), has a runbook, and asks only for metrics the services
export; the dashboard's queries are valid PromQL; the ServiceMonitors find every service's
/metrics.

promtool comes from Debian's ``prometheus`` package (``make promtool`` installs it).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from fixloop_shared.bus import make_bus
from fixloop_shared.grpc_edge.observability import GrpcServerMetrics
from fixloop_shared.outbox import OutboxBacklog
from fixloop_shared.settings import KafkaSettings
from fixloop_sla.metrics import SlaMetrics
from tests.unit.k8s_render import REPO, Doc, of_kind, render

MONITORING = REPO / "deploy" / "k8s" / "base" / "monitoring"
RULE_TESTS = MONITORING / "tests" / "alert-rules.test.yaml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
README = REPO / "deploy" / "k8s" / "README.md"
SERVICES = ("orders", "contractors", "parts", "sla", "notifications")
OWN_METRIC = re.compile(r"\b(?:fixloop|grpc_server|faststream)_[a-z0-9_]+\b")


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: run `make promtool` (Debian package prometheus)")
    return found


@pytest.fixture(scope="module")
def prod() -> list[Doc]:
    return render("prod")


def rule_groups(docs: list[Doc]) -> list[dict[str, Any]]:
    rules = of_kind(docs, "PrometheusRule")
    assert [r["metadata"]["name"] for r in rules] == ["fixloop-alerts"]
    groups: list[dict[str, Any]] = rules[0]["spec"]["groups"]
    return groups


def alerts(docs: list[Doc]) -> list[dict[str, Any]]:
    return [rule for group in rule_groups(docs) for rule in group["rules"] if "alert" in rule]


def run(*command: str, cwd: Path) -> str:
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def write_rules(directory: Path, groups: list[dict[str, Any]]) -> Path:
    """The rule groups as a plain Prometheus rules file (what the operator hands Prometheus)."""
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


def test_every_alert_rule_passes_promtool_check(
    promtool: str, prod: list[Doc], tmp_path: Path
) -> None:
    write_rules(tmp_path, rule_groups(prod))
    out = run(promtool, "check", "rules", "rules.yaml", cwd=tmp_path)
    assert f"SUCCESS: {len(alerts(prod))} rules found" in out


def test_the_alert_rules_pass_their_unit_tests(
    promtool: str, prod: list[Doc], tmp_path: Path
) -> None:
    write_rules(tmp_path, rule_groups(prod))
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    out = run(promtool, "test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert "SUCCESS" in out


def test_the_unit_tests_fail_when_an_alert_would_not_fire(
    promtool: str, prod: list[Doc], tmp_path: Path
) -> None:
    """The unit tests bite: with one alert's threshold out of reach, promtool reports it."""
    groups = rule_groups(prod)
    for group in groups:
        for rule in group["rules"]:
            if rule.get("alert") == "FixloopOutboxBacklogOld":
                rule["expr"] = rule["expr"].replace("> 300", "> 300000")
    write_rules(tmp_path, groups)
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    result = subprocess.run(
        [promtool, "test", "rules", RULE_TESTS.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "alertname: FixloopOutboxBacklogOld" in result.stdout + result.stderr


def test_every_alert_has_a_case_where_it_fires_and_one_where_it_does_not(
    prod: list[Doc],
) -> None:
    cases = yaml.safe_load(RULE_TESTS.read_text())
    assert cases["rule_files"] == ["rules.yaml"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for test in cases["tests"]:
        for case in test.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = {rule["alert"] for rule in alerts(prod)}
    assert names == firing
    assert names == quiet


def test_every_alert_says_how_bad_what_and_where_its_runbook_is(prod: list[Doc]) -> None:
    readme = README.read_text()
    assert "\n## Alerts and runbooks\n" in readme
    runbooks = readme.split("\n## Alerts and runbooks\n", 1)[1].split("\n## ", 1)[0]
    headings = set(re.findall(r"^### (\S+)$", runbooks, flags=re.MULTILINE))
    for rule in alerts(prod):
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), name
        assert rule["annotations"]["runbook"] == f"deploy/k8s/README.md#{name.lower()}"
        assert name in headings, f"no runbook section '### {name}' in {README.name}"
    assert headings == {rule["alert"] for rule in alerts(prod)}


def exported_series() -> set[str]:
    """The series names the services' own code registers: the kernel's bus (dead letters,
    handled events, FastStream's consume/publish metrics), the outbox relay, the gRPC edge and
    the sla service's clocks."""
    registry = CollectorRegistry()
    make_bus(KafkaSettings(), service="orders", metrics=registry)
    OutboxBacklog(registry)
    GrpcServerMetrics.on(registry)
    SlaMetrics(registry)
    names: set[str] = set()
    for family in registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return names


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]


def test_alerts_and_dashboard_ask_for_metrics_the_services_export(prod: list[Doc]) -> None:
    exported = exported_series()
    assert "fixloop_outbox_oldest_pending_seconds" in exported  # the check sees what it should
    wanted = {
        name
        for expr in [*(rule["expr"] for rule in alerts(prod)), *dashboard_queries()]
        for name in OWN_METRIC.findall(expr)
    }
    assert wanted, "no Fixloop metric found in the queries"
    assert wanted <= exported, sorted(wanted - exported)


def test_the_dashboards_queries_are_valid_promql(promtool: str, tmp_path: Path) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 15
    rules = [
        {
            "record": f"dashboard:query_{n}",
            "expr": expr.replace("$__rate_interval", "5m").replace("$namespace", ".*"),
        }
        for n, expr in enumerate(queries)
    ]
    write_rules(tmp_path, [{"name": "dashboard", "rules": rules}])
    out = run(promtool, "check", "rules", "rules.yaml", cwd=tmp_path)
    assert f"SUCCESS: {len(rules)} rules found" in out


def test_the_dashboard_is_shipped_to_grafanas_sidecar(prod: list[Doc]) -> None:
    maps = [
        m for m in of_kind(prod, "ConfigMap") if m["metadata"]["name"].startswith("fixloop-grafana")
    ]
    assert len(maps) == 1
    assert maps[0]["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads(maps[0]["data"]["fixloop-pipeline.json"])
    assert shipped == json.loads(DASHBOARD.read_text())
    assert shipped["uid"] == "fixloop-pipeline"


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_each_services_metrics_port_is_scraped(overlay: str) -> None:
    docs = render(overlay)
    monitors = of_kind(docs, "ServiceMonitor")
    for service in SERVICES:
        name = f"fixloop-{service}"
        (svc,) = [s for s in of_kind(docs, "Service") if s["metadata"]["name"] == name]
        (deployment,) = [d for d in of_kind(docs, "Deployment") if d["metadata"]["name"] == name]
        matching = [
            m
            for m in monitors
            if m["metadata"]["namespace"] == svc["metadata"]["namespace"]
            and m["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
        ]
        assert len(matching) == 1, name
        (endpoint,) = matching[0]["spec"]["endpoints"]
        assert endpoint["path"] == "/metrics"
        (port,) = [p for p in svc["spec"]["ports"] if p["name"] == endpoint["port"]]
        containers = deployment["spec"]["template"]["spec"]["containers"]
        served = {p["name"]: p["containerPort"] for c in containers for p in c.get("ports", [])}
        assert served[port["targetPort"]] == 8080, name  # the health/metrics port
