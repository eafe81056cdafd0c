"""The Kafka ACLs as data: the rendered KafkaUsers grant exactly what the topic registry says.

``fixloop_shared.topics.topic_access(platforms)`` says which principal may read and write which
topic. For each overlay (its platforms are the platform names in FIXLOOP_ORDERS_SOURCE_TENANTS),
the KafkaUsers of `kubectl kustomize` are evaluated the way Kafka's ACL authorizer does (literal
and prefix patterns, deny before allow) over every topic the overlay knows plus a platform it
does not, and the result must equal the registry's: nobody may read or write a topic more.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from fixloop_shared.topics import (
    OPERATIONS_PRINCIPAL,
    Service,
    Topic,
    all_topics,
    dead_letter_topic,
    inbound_topic,
    platform_principal,
    topic_access,
)
from tests.unit.k8s_render import OVERLAYS, Doc, config_data, of_kind, platforms, render

CLUSTER = "fixloop"
READ_OPS = {"Read", "All"}
WRITE_OPS = {"Write", "All"}
UNKNOWN_PLATFORM = "not-configured"
"""A platform no overlay knows: nobody may write its inbound topic (nor read it, but orders,
whose prefix ACL covers every platform's inbound topic)."""

Access = dict[str, dict[str, frozenset[str]]]


def matches(resource: Doc, kind: str, name: str) -> bool:
    if resource["type"] != kind:
        return False
    pattern = resource.get("name", "*")
    if resource.get("patternType", "literal") == "prefix":
        return name.startswith(pattern)
    return pattern in {"*", name}


def allowed(user: Doc, kind: str, name: str, operations: set[str]) -> bool:
    """Whether Kafka's simple authorizer lets ``user`` do one of ``operations`` on a resource."""
    acls = user["spec"].get("authorization", {}).get("acls") or []
    hits = [
        acl
        for acl in acls
        if matches(acl["resource"], kind, name) and set(acl["operations"]) & operations
    ]
    if any(acl.get("type", "allow") == "deny" for acl in hits):
        return False
    return any(acl.get("type", "allow") == "allow" for acl in hits)


def effective_access(users: Iterable[Doc], topics: Iterable[str]) -> Access:
    known = sorted(set(topics))
    return {
        user["metadata"]["name"]: {
            "read": frozenset(t for t in known if allowed(user, "topic", t, READ_OPS)),
            "write": frozenset(t for t in known if allowed(user, "topic", t, WRITE_OPS)),
        }
        for user in users
    }


def overlay_state(overlay: str) -> tuple[list[Doc], list[str]]:
    docs = render(overlay)
    return docs, platforms(docs)


def probe_topics(docs: list[Doc], names: list[str]) -> set[str]:
    """Every topic the overlay defines or the registry names, and a stranger's inbound topic."""
    rendered = {
        t["spec"].get("topicName", t["metadata"]["name"]) for t in of_kind(docs, "KafkaTopic")
    }
    return rendered | set(all_topics(names)) | {inbound_topic(UNKNOWN_PLATFORM)}


# ------------------------------------------------------------------ the evaluation itself


def test_acl_evaluation() -> None:
    user = {
        "spec": {
            "authorization": {
                "acls": [
                    {
                        "resource": {"type": "topic", "name": "a.", "patternType": "prefix"},
                        "operations": ["Read"],
                    },
                    {
                        "resource": {"type": "topic", "name": "a.secret"},
                        "operations": ["Read"],
                        "type": "deny",
                    },
                    {"resource": {"type": "topic", "name": "b"}, "operations": ["Write"]},
                ]
            }
        }
    }
    assert allowed(user, "topic", "a.one", READ_OPS)
    assert not allowed(user, "topic", "a.secret", READ_OPS)
    assert not allowed(user, "topic", "a.one", WRITE_OPS)
    assert allowed(user, "topic", "b", WRITE_OPS)
    assert not allowed(user, "topic", "bb", WRITE_OPS)
    assert not allowed(user, "group", "a.one", READ_OPS)


# ------------------------------------------------------------------ the overlays


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_kafka_users_grant_exactly_the_registry(overlay: str) -> None:
    docs, names = overlay_state(overlay)
    users = of_kind(docs, "KafkaUser")
    expected = topic_access(names)
    actual = effective_access(users, probe_topics(docs, names))
    # the stranger's topic is readable by orders' prefix ACL only: orders reads every platform's
    stranger = inbound_topic(UNKNOWN_PLATFORM)
    assert {p for p, a in actual.items() if stranger in a["read"]} == {Service.ORDERS.value}
    actual[Service.ORDERS.value]["read"] -= {stranger}
    # ... and operators write every platform's by the same prefix (a dead letter goes back where
    # it came from)
    assert {p for p, a in actual.items() if stranger in a["write"]} == {OPERATIONS_PRINCIPAL}
    actual[OPERATIONS_PRINCIPAL]["write"] -= {stranger}
    assert actual == expected


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_operators_read_dead_letters_and_write_back_only_where_letters_come_from(
    overlay: str,
) -> None:
    docs, names = overlay_state(overlay)
    users = {u["metadata"]["name"]: u for u in of_kind(docs, "KafkaUser")}
    operations = users[OPERATIONS_PRINCIPAL]
    topics = probe_topics(docs, names)
    readable = {t for t in topics if allowed(operations, "topic", t, READ_OPS)}
    assert readable == {dead_letter_topic(service) for service in Service}
    writable = {t for t in topics if allowed(operations, "topic", t, WRITE_OPS)}
    assert not {dead_letter_topic(service) for service in Service} & writable
    assert {inbound_topic(name) for name in names} <= writable
    assert Topic.WORKORDERS_INBOUND.value not in writable  # a platform is its `source` there


def test_dev_has_the_walkthrough_platforms() -> None:
    _, names = overlay_state("dev")
    assert names == ["buildmart", "fieldhub"]


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_a_platform_writes_only_its_own_inbound_topic(overlay: str) -> None:
    docs, names = overlay_state(overlay)
    users = {u["metadata"]["name"]: u for u in of_kind(docs, "KafkaUser")}
    topics = probe_topics(docs, names)
    for name in names:
        user = users[platform_principal(name)]
        writable = {t for t in topics if allowed(user, "topic", t, WRITE_OPS)}
        assert writable == {inbound_topic(name)}
        for other in [*names, UNKNOWN_PLATFORM]:
            if other != name:
                assert not allowed(user, "topic", inbound_topic(other), WRITE_OPS | READ_OPS)
        assert not {t for t in topics if allowed(user, "topic", t, READ_OPS)}
        assert not [
            a for a in user["spec"]["authorization"]["acls"] if a["resource"]["type"] != "topic"
        ]
    # and no service may write any platform's inbound topic
    for service in Service:
        for name in [*names, UNKNOWN_PLATFORM]:
            assert not allowed(users[service.value], "topic", inbound_topic(name), WRITE_OPS)


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_kafka_users_log_in_with_scram_and_use_only_their_own_groups(overlay: str) -> None:
    docs, _ = overlay_state(overlay)
    for user in of_kind(docs, "KafkaUser"):
        name = user["metadata"]["name"]
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == CLUSTER
        assert user["spec"]["authentication"] == {"type": "scram-sha-512"}, name
        assert user["spec"]["authorization"]["type"] == "simple", name
        acls = user["spec"]["authorization"]["acls"]
        assert not [a for a in acls if a["resource"]["type"] in {"cluster", "transactionalId"}]
        assert not [a for a in acls if "All" in a["operations"]], name
        groups = [a for a in acls if a["resource"]["type"] == "group"]
        if name in {s.value for s in Service}:
            # consumer groups are <service>.<consumer> (EventConsumer.group)
            assert [(g["resource"]["name"], g["resource"]["patternType"]) for g in groups] == [
                (f"{name}.", "prefix")
            ]
            assert not allowed(
                user, "group", f"{'orders' if name != 'orders' else 'sla'}.x", READ_OPS
            )
        else:
            assert groups == [], name


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_topics_include_each_platforms_inbound_and_dead_letter_topics(overlay: str) -> None:
    docs, names = overlay_state(overlay)
    rendered = [t["spec"]["topicName"] for t in of_kind(docs, "KafkaTopic")]
    assert len(rendered) == len(set(rendered))
    assert set(rendered) == set(all_topics(names))
    assert {inbound_topic(n) for n in names} <= set(rendered)


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_services_and_their_scalers_log_in_as_their_own_user(overlay: str) -> None:
    docs, _ = overlay_state(overlay)
    principals = config_data(docs, "fixloop-kafka-principals")
    users = {u["metadata"]["name"] for u in of_kind(docs, "KafkaUser")}
    config = config_data(docs, "fixloop-config")
    assert config["FIXLOOP_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["FIXLOOP_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    deployments = {d["metadata"]["name"]: d for d in of_kind(docs, "Deployment")}
    auths = {a["metadata"]["name"]: a for a in of_kind(docs, "TriggerAuthentication")}
    for service in Service:
        principal = principals[service.value]
        assert principal == service.value
        assert principal in users
        pod = deployments[f"fixloop-{service}"]["spec"]["template"]["spec"]
        [container] = pod["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["FIXLOOP_KAFKA_SASL_USERNAME"]["valueFrom"]["configMapKeyRef"] == {
            "name": "fixloop-kafka-principals",
            "key": service.value,
        }
        assert env["FIXLOOP_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": principal,
            "key": "password",
        }
        # the CA file the settings name is the Strimzi cluster CA, mounted
        ca_dir, _, ca_file = config["FIXLOOP_KAFKA_SSL_CAFILE"].rpartition("/")
        [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == ca_dir]
        [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert volume["secret"]["secretName"] == f"{CLUSTER}-cluster-ca-cert"
        assert volume["secret"]["items"] == [{"key": "ca.crt", "path": ca_file}]
        # KEDA reads the lag as the same user
        auth = auths[f"fixloop-{service}-kafka"]["spec"]
        assert {(r["parameter"], r["name"], r["key"]) for r in auth["secretTargetRef"]} == {
            ("password", principal, "password"),
            ("ca", f"{CLUSTER}-cluster-ca-cert", "ca.crt"),
        }
        assert auth["configMapTargetRef"] == [
            {"parameter": "username", "name": "fixloop-kafka-principals", "key": service.value}
        ]


def test_dev_kafka_authenticates_and_authorizes_every_listener() -> None:
    docs, _ = overlay_state("dev")
    [kafka] = of_kind(docs, "Kafka")
    assert kafka["metadata"]["name"] == CLUSTER
    spec = kafka["spec"]["kafka"]
    assert spec["authorization"]["type"] == "simple"
    for listener in spec["listeners"]:
        assert listener["authentication"]["type"] == "scram-sha-512", listener["name"]
    # the services' listener is TLS, at the port the shared config names
    port = int(config_data(docs, "fixloop-config")["FIXLOOP_KAFKA_BOOTSTRAP"].rsplit(":", 1)[1])
    [service_listener] = [li for li in spec["listeners"] if li["port"] == port]
    assert service_listener["tls"] is True
    assert "userOperator" in kafka["spec"]["entityOperator"]
