"""A bad setting stops a service with one line naming the environment variable."""

from __future__ import annotations

import pytest

from fixloop_orders.settings import OrdersSettings
from fixloop_shared.settings import load_settings
from fixloop_sla.settings import SlaSettings


def test_defaults_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIXLOOP_ORDERS_GRPC_RATE_LIMIT", raising=False)
    assert load_settings(OrdersSettings).grpc_rate_limit == "50/second;1000/minute"


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
