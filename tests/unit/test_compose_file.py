"""docker-compose.yml: valid by the Compose Specification (vendored JSON schema), and the stack it
starts is the README walkthrough's: the platforms, tenants and API keys of ``examples/`` and
``make run``, every Kafka client signed in with its own SCRAM user, MongoDB without the embedded
store's write slot."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from fixloop_devkit.devstack import LOCAL_OPERATORS, LOCAL_PRINCIPALS, LOCAL_SOURCE_TENANTS
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.topics import Service, all_topics, platform_principal

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = ROOT / "tests" / "schemas" / "compose-spec" / "compose-spec.json"
SERVICES = [service.value for service in Service]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def env_of(compose: dict[str, Any], service: str) -> dict[str, str]:
    env = compose["services"][service]["environment"]
    assert isinstance(env, dict), f"{service}: environment as a map"
    return {str(k): str(v) for k, v in env.items()}


def kafka_users(compose: dict[str, Any]) -> dict[str, str]:
    """The SCRAM users the broker's storage is formatted with: name -> password."""
    script = "\n".join(compose["services"]["kafka"]["command"])
    block = re.search(r"users=\(\n(.*?)\n\s*\)", script, re.DOTALL)
    assert block is not None, "the kafka command lists its SCRAM users"
    pairs = [line.strip() for line in block.group(1).splitlines() if line.strip()]
    return dict(pair.split("=", 1) for pair in pairs)


def test_the_file_is_valid_by_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    problems = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(compose)
    ]
    assert problems == []


def test_the_schema_check_catches_a_broken_file(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    broken = json.loads(json.dumps(compose))
    broken["services"]["orders"]["restart"] = {"policy": "always"}
    broken["services"]["kafka"]["enviroment"] = {"CLUSTER_ID": "x"}  # misspelt key
    assert len(list(jsonschema.Draft7Validator(schema).iter_errors(broken))) == 2


def test_orders_binds_the_platforms_and_tenants_of_the_examples(compose: dict[str, Any]) -> None:
    bound = json.loads(env_of(compose, "orders")["FIXLOOP_ORDERS_SOURCE_TENANTS"])
    assert bound == LOCAL_SOURCE_TENANTS
    examples = sorted((ROOT / "examples" / "orders").glob("*.json"))
    assert examples
    for path in examples:
        event = json.loads(path.read_text(encoding="utf-8"))
        assert event["tenant"] in bound.get(event["source"], []), (
            f"{path.name}: {event['source']} may not submit for {event['tenant']} in compose"
        )


def test_the_api_keys_are_the_walkthroughs(compose: dict[str, Any]) -> None:
    orders = json.loads(env_of(compose, "orders")["FIXLOOP_ORDERS_PRINCIPALS"])
    assert orders == [json.loads(json.dumps(p.spec().entry())) for p in LOCAL_PRINCIPALS]
    keys = {p.key for p in LOCAL_PRINCIPALS}
    assert {"dev-key-acme", "dev-key-globex"} <= keys  # the README's `--api-key dev-key-acme`
    operators = [json.loads(json.dumps(p.spec().entry())) for p in LOCAL_OPERATORS]
    for service in ("contractors", "sla"):
        env = env_of(compose, service)
        assert json.loads(env[f"FIXLOOP_{service.upper()}_PRINCIPALS"]) == operators


def test_each_service_signs_in_to_kafka_as_its_own_user(compose: dict[str, Any]) -> None:
    users = kafka_users(compose)
    for service in SERVICES:
        env = env_of(compose, service)
        kafka: dict[str, Any] = {
            name: env[f"FIXLOOP_KAFKA_{name.upper()}"]
            for name in KafkaSettings.model_fields
            if f"FIXLOOP_KAFKA_{name.upper()}" in env
        }
        settings = KafkaSettings.model_validate(kafka)
        assert settings.security_protocol == "SASL_PLAINTEXT"
        assert settings.sasl_mechanism == "SCRAM-SHA-512"
        assert settings.sasl_username == service
        assert settings.sasl_password is not None
        assert users[service] == settings.sasl_password.get_secret_value()
        assert "not-a-secret" in users[service]  # dev values say so


def test_each_platform_and_the_cli_have_a_kafka_user(compose: dict[str, Any]) -> None:
    users = kafka_users(compose)
    platforms = json.loads(env_of(compose, "orders")["FIXLOOP_ORDERS_SOURCE_TENANTS"])
    expected = {*SERVICES, "fixloop-admin", *(platform_principal(p) for p in platforms)}
    assert set(users) == expected
    assert len(set(users.values())) == len(users)  # no two share a password
    config = "\n".join(compose["services"]["kafka"]["command"])
    assert "sasl.enabled.mechanisms=SCRAM-SHA-512" in config
    assert not re.search(r"protocol\.map=.*(INTERNAL|EXTERNAL):PLAINTEXT", config)


def test_every_topic_is_created_the_platforms_own_included(compose: dict[str, Any]) -> None:
    platforms = json.loads(env_of(compose, "orders")["FIXLOOP_ORDERS_SOURCE_TENANTS"])
    script = "\n".join(compose["services"]["kafka-init"]["command"])
    created = set(re.findall(r"^\s*(fixloop\.[a-z0-9.-]+\.v1)\b", script, re.MULTILINE))
    assert created == set(all_topics(platforms))


def test_mongodb_services_do_not_serialize_writes(compose: dict[str, Any]) -> None:
    for service in SERVICES:
        env = env_of(compose, service)
        assert "replicaSet=" in env[f"FIXLOOP_{service.upper()}_MONGODB_URI"]
        assert env[f"FIXLOOP_{service.upper()}_STORE_SERIALIZE_WRITES"] == "false"


def test_tracing_goes_to_jaeger_2(compose: dict[str, Any]) -> None:
    image = compose["services"]["jaeger"]["image"]
    assert re.fullmatch(r"jaegertracing/jaeger:2\.\d+\.\d+", image)
    collector = (ROOT / "deploy" / "otel" / "collector.yaml").read_text(encoding="utf-8")
    assert "endpoint: jaeger:4317" in collector


def test_the_readme_tells_the_cli_the_admin_credentials(compose: dict[str, Any]) -> None:
    users = kafka_users(compose)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "FIXLOOP_KAFKA_SASL_USERNAME=fixloop-admin" in readme
    assert f"FIXLOOP_KAFKA_SASL_PASSWORD={users['fixloop-admin']}" in readme
    assert "FIXLOOP_KAFKA_BOOTSTRAP=localhost:9094" in readme
