"""Kafka security settings -> the options of every client (aiokafka and FastStream), their
validation, and the topic registry's access table (the Kafka ACLs as data)."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

import certifi
import pytest
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import ValidationError

from fixloop_shared.kafka_security import aiokafka_security, broker_security
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.topics import (
    EVENTS_TOPIC_OF,
    Service,
    Topic,
    all_topics,
    dead_letter_topic,
    inbound_topic,
    is_platform_name,
    platform_of_inbound_topic,
    topic_access,
)

ENV = "FIXLOOP_KAFKA_"


@pytest.fixture(autouse=True)
def _no_kafka_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings read the environment: a developer's shell must not change the answers."""
    import os

    for name in list(os.environ):
        if name.startswith(ENV):
            monkeypatch.delenv(name)


def scram(**changes: object) -> KafkaSettings:
    values: dict[str, object] = {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_username": "orders",
        "sasl_password": "orders-password",
        **changes,
    }
    return KafkaSettings(**values)  # type: ignore[arg-type]


def test_the_default_is_the_embedded_broker_without_credentials() -> None:
    settings = KafkaSettings()
    assert settings.security_protocol == "PLAINTEXT"
    assert settings.client_options() == {"bootstrap_servers": settings.bootstrap}
    assert broker_security(settings) is None


def test_sasl_scram_maps_to_the_aiokafka_options() -> None:
    options = scram(bootstrap="kafka:9092").client_options()
    assert options == {
        "bootstrap_servers": "kafka:9092",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "orders",
        "sasl_plain_password": "orders-password",
    }


@pytest.mark.parametrize(
    ("mechanism", "kind"),
    [("SCRAM-SHA-512", SASLScram512), ("SCRAM-SHA-256", SASLScram256), ("PLAIN", SASLPlaintext)],
)
def test_each_mechanism_maps_to_its_faststream_security(
    mechanism: str, kind: type[BaseSecurity]
) -> None:
    settings = scram(sasl_mechanism=mechanism)
    security = broker_security(settings)
    assert type(security) is kind
    assert isinstance(security, SASLPlaintext | SASLScram256 | SASLScram512)
    assert (security.username, security.password) == ("orders", "orders-password")
    assert security.use_ssl is False
    assert aiokafka_security(settings)["sasl_mechanism"] == mechanism


def test_sasl_ssl_and_ssl_carry_a_verifying_tls_context() -> None:
    ca = certifi.where()  # any PEM bundle stands in for a private CA
    sasl_ssl = scram(security_protocol="SASL_SSL", ssl_cafile=ca)
    options = aiokafka_security(sasl_ssl)
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert options["security_protocol"] == "SASL_SSL"
    security = broker_security(sasl_ssl)
    assert isinstance(security, SASLScram512)
    assert security.use_ssl
    assert isinstance(security.ssl_context, ssl.SSLContext)

    tls_only = KafkaSettings(security_protocol="SSL")
    assert set(aiokafka_security(tls_only)) == {"security_protocol", "ssl_context"}
    plain_tls = broker_security(tls_only)
    assert type(plain_tls) is BaseSecurity
    assert plain_tls.use_ssl


def test_the_password_is_never_shown() -> None:
    settings = scram()
    assert "orders-password" not in repr(settings)
    assert "orders-password" not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"security_protocol": "SASL_SSL"},
            f"{ENV}SECURITY_PROTOCOL=SASL_SSL needs {ENV}SASL_USERNAME and {ENV}SASL_PASSWORD",
        ),
        (
            {"security_protocol": "SASL_PLAINTEXT", "sasl_username": "orders"},
            f"{ENV}SECURITY_PROTOCOL=SASL_PLAINTEXT needs {ENV}SASL_USERNAME",
        ),
        (
            {"sasl_username": "orders", "sasl_password": "x"},
            "are set but FIXLOOP_KAFKA_SECURITY_PROTOCOL is PLAINTEXT",
        ),
        (
            {"security_protocol": "SASL_PLAINTEXT", "sasl_username": "o", "sasl_password": ""},
            f"{ENV}SASL_PASSWORD is empty",
        ),
        (
            {
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_username": "o",
                "sasl_password": "p",
                "ssl_cafile": "/etc/hostname",
            },
            f"{ENV}SSL_CAFILE is set but {ENV}SECURITY_PROTOCOL is SASL_PLAINTEXT",
        ),
        (
            {"security_protocol": "SSL", "ssl_keyfile": "/etc/hostname"},
            f"{ENV}SSL_KEYFILE is set without {ENV}SSL_CERTFILE",
        ),
        (
            {"security_protocol": "SSL", "ssl_cafile": "/nonexistent/ca.pem"},
            f"{ENV}SSL_CAFILE '/nonexistent/ca.pem' is not a readable file",
        ),
        ({"security_protocol": "SASL_TLS"}, "Input should be"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI"}, "Input should be"),
    ],
)
def test_incomplete_or_contradictory_settings_are_refused(
    values: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        KafkaSettings(**values)  # type: ignore[arg-type]
    assert message in str(raised.value)


def test_a_service_refuses_to_start_with_one_line_naming_the_settings(tmp_path: Path) -> None:
    script = (
        "from fixloop_shared.settings import ServiceSettings, load_settings\n"
        "load_settings(ServiceSettings)\n"
    )
    env = {"PATH": "/usr/bin:/bin", f"{ENV}SECURITY_PROTOCOL": "SASL_PLAINTEXT"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"invalid settings: {ENV}SECURITY_PROTOCOL=SASL_PLAINTEXT needs {ENV}SASL_USERNAME "
        f"and {ENV}SASL_PASSWORD"
    ]


def test_settings_come_from_the_environment_and_empty_values_count_as_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(f"{ENV}SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv(f"{ENV}SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv(f"{ENV}SASL_USERNAME", "fixloop-admin")
    monkeypatch.setenv(f"{ENV}SASL_PASSWORD", "secret")
    monkeypatch.setenv(f"{ENV}SSL_CAFILE", "")
    options = KafkaSettings().client_options()
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert options["sasl_plain_username"] == "fixloop-admin"
    for name in ("SECURITY_PROTOCOL", "SASL_USERNAME", "SASL_PASSWORD"):
        monkeypatch.setenv(f"{ENV}{name}", "")
    assert KafkaSettings().security_protocol == "PLAINTEXT"


# ---------------------------------------------------------------- per-platform inbound topics


@pytest.mark.parametrize("name", ["fieldhub", "buildmart", "erp-2", "a", "x" * 63])
def test_platform_names_make_inbound_topics_and_back(name: str) -> None:
    topic = inbound_topic(name)
    assert topic == f"fixloop.workorders.inbound.{name}.v1"
    assert platform_of_inbound_topic(topic) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "FieldHub",
        "field.hub",
        "field_hub",
        "-fieldhub",
        "fieldhub-",
        "x" * 64,
        "https://fieldhub.example.com/orders",
        "urn:fixloop:fieldhub",
        "fieldhub\n",
        "a*",
    ],
)
def test_anything_else_names_no_topic(name: str) -> None:
    assert not is_platform_name(name)
    with pytest.raises(ValueError, match="not allowed in a topic name"):
        inbound_topic(name)


def test_the_shared_and_other_topics_belong_to_no_platform() -> None:
    assert platform_of_inbound_topic(Topic.WORKORDERS_INBOUND) is None
    assert platform_of_inbound_topic(Topic.WORKORDERS_EVENTS) is None
    assert platform_of_inbound_topic("fixloop.workorders.inbound.a.b.v1") is None


def test_topic_provisioning_includes_each_platforms_inbound_topic() -> None:
    plain = all_topics()
    with_platforms = all_topics(["fieldhub", "buildmart", "fieldhub"])
    assert with_platforms == [
        *plain,
        inbound_topic("buildmart"),
        inbound_topic("fieldhub"),
    ]


def test_access_each_service_writes_only_its_own_topics() -> None:
    access = topic_access(["fieldhub", "buildmart"])
    assert set(access) == {
        "orders",
        "contractors",
        "parts",
        "sla",
        "notifications",
        "platform-fieldhub",
        "platform-buildmart",
        "operations",
    }
    # operators read the dead letters and write nothing of their own: only back where letters
    # come from
    assert access["operations"]["read"] == {dead_letter_topic(s) for s in Service}
    assert not access["operations"]["write"] & access["operations"]["read"]
    for service in Service:
        assert access[service.value]["write"] == {
            EVENTS_TOPIC_OF[service].value,
            dead_letter_topic(service),
        }
        assert not any(
            t.startswith("fixloop.workorders.inbound.") for t in access[service]["write"]
        )


def test_access_a_platform_writes_only_its_own_inbound_topic_and_reads_nothing() -> None:
    access = topic_access(["fieldhub", "buildmart"])
    assert access["platform-fieldhub"] == {
        "read": frozenset(),
        "write": frozenset({"fixloop.workorders.inbound.fieldhub.v1"}),
    }
    assert inbound_topic("buildmart") not in access["platform-fieldhub"]["write"]
    assert Topic.WORKORDERS_INBOUND.value not in access["platform-fieldhub"]["write"]
    assert {inbound_topic("fieldhub"), inbound_topic("buildmart")} <= access["orders"]["read"]
    readers = {p for p, rights in access.items() if inbound_topic("fieldhub") in rights["read"]}
    assert readers == {"orders"}


def test_access_matches_what_the_services_consume() -> None:
    """The table is data in shared/; the services' own lists of consumed topics must agree."""
    from fixloop_contractors import main as contractors
    from fixloop_notifications.adapters import consumer as notifications
    from fixloop_orders.adapters.consumers import consumed_topics
    from fixloop_sla import main as sla

    access = topic_access(["fieldhub"])
    orders_reads = {*consumed_topics(["fieldhub"]), Topic.WORKORDERS_EVENTS.value}
    assert access["orders"]["read"] == orders_reads
    assert access["contractors"]["read"] == set(contractors.TOPICS)
    assert access["notifications"]["read"] == {t.value for t in notifications.CONSUMED_TOPICS}
    assert access["sla"]["read"] == {t.value for t in sla.CONSUMED_TOPICS}


def test_an_invalid_platform_name_has_no_access_entry() -> None:
    with pytest.raises(ValueError, match="not allowed in a topic name"):
        topic_access(["https://fieldhub.example.com/orders"])
