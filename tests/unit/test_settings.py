"""A bad setting stops a service with one line naming the environment variable."""

from __future__ import annotations

import json

import pytest

from fixloop_orders.settings import OrdersSettings
from fixloop_shared.grpc_edge.principals import PrincipalKind, hash_api_key
from fixloop_shared.settings import load_settings
from fixloop_sla.settings import SlaSettings


def test_defaults_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIXLOOP_ORDERS_GRPC_RATE_LIMIT", raising=False)
    monkeypatch.delenv("FIXLOOP_ORDERS_PRINCIPALS", raising=False)
    settings = load_settings(OrdersSettings)
    assert settings.grpc_rate_limit == "100/second;3000/minute"
    assert settings.principals == []


PARTNER = {
    "id": "acme-erp",
    "kind": "partner",
    "tenant": "acme",
    "key_hashes": [hash_api_key("old-key"), hash_api_key("new-key")],
}
CONTRACTOR = {
    "id": "klima-app",
    "kind": "contractor",
    "contractor_id": "ctr-berliner-klima",
    "key_hashes": [hash_api_key("klima-key")],
}


def test_principals_load_from_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIXLOOP_ORDERS_PRINCIPALS", json.dumps([PARTNER, CONTRACTOR]))
    partner, contractor = load_settings(OrdersSettings).principals
    assert (partner.id, partner.kind, partner.tenant) == ("acme-erp", PrincipalKind.PARTNER, "acme")
    assert len(partner.key_hashes) == 2
    assert contractor.principal().contractor_id == "ctr-berliner-klima"
    assert contractor.tenant is None
    assert "sha256" not in repr(load_settings(OrdersSettings))


@pytest.mark.parametrize(
    ("principals", "line"),
    [
        (
            [{**PARTNER, "key_hashes": ["flk_a-plain-key-pasted-by-mistake"]}],
            "principal 'acme-erp': key_hashes[0] is not 'sha256:' followed by 64 lowercase hex "
            "digits; configure the hash of a key (`fixloop keys hash`), never the key itself",
        ),
        (
            [{**PARTNER, "tenant": None}],
            "principal 'acme-erp': a partner principal needs a tenant",
        ),
        (
            [{**CONTRACTOR, "tenant": "acme"}],
            "principal 'klima-app': a contractor principal has no tenant (it serves the tenants "
            "its contractor works for): leave tenant out",
        ),
        (
            [PARTNER, {**CONTRACTOR, "key_hashes": PARTNER["key_hashes"][1:]}],
            "principals 'acme-erp' and 'klima-app' have the same key hash; every key belongs to "
            "exactly one principal",
        ),
        (
            [PARTNER, {**PARTNER, "key_hashes": [hash_api_key("third")]}],
            "principal 'acme-erp' is configured twice; ids must be unique",
        ),
    ],
)
def test_bad_principals_are_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    principals: list[dict[str, object]],
    line: str,
) -> None:
    monkeypatch.setenv("FIXLOOP_ORDERS_PRINCIPALS", json.dumps(principals))
    with pytest.raises(SystemExit) as exited:
        load_settings(OrdersSettings)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"invalid setting FIXLOOP_ORDERS_PRINCIPALS: {line}"]
    assert "flk_a-plain-key" not in err


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        (
            "FIXLOOP_ORDERS_GRPC_RATE_LIMIT",
            "lots",
            "invalid setting FIXLOOP_ORDERS_GRPC_RATE_LIMIT: "
            "couldn't parse rate limit string 'lots'",
        ),
        (
            "FIXLOOP_ORDERS_GRPC_PORT",
            "70000",
            "invalid setting FIXLOOP_ORDERS_GRPC_PORT: Input should be less than or equal to 65535",
        ),
        (
            "FIXLOOP_KAFKA_PARTITIONS",
            "three",
            "invalid setting FIXLOOP_KAFKA_PARTITIONS: Input should be a valid integer, unable to "
            "parse string as an integer",
        ),
    ],
)
def test_bad_value_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    line: str,
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as exited:
        load_settings(OrdersSettings)
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines() == [line]


def test_empty_rate_limit_means_unlimited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIXLOOP_ORDERS_GRPC_RATE_LIMIT", " ")
    assert load_settings(OrdersSettings).grpc_rate_limit == ""


def test_every_service_settings_report_the_same_way(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FIXLOOP_SLA_HEALTH_PORT", "-1")
    with pytest.raises(SystemExit):
        load_settings(SlaSettings)
    assert capsys.readouterr().err.startswith("invalid setting FIXLOOP_SLA_HEALTH_PORT: ")
