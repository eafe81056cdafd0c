"""The pure helpers of the SLA clocks benchmark (``bench/sla_clocks.py``): its arguments, the
orders it seeds (cloned documents equal the engine's own), percentiles and what it reads from
/metrics and /proc."""

from __future__ import annotations

import pytest

from bench.sla_clocks import (
    Cloner,
    Options,
    bench_policy,
    burst_warnings,
    engine_document,
    memory_mib,
    metric_totals,
    parse_args,
    partition_counts,
    spread_ms,
    spread_warnings,
    target_met,
)
from fixloop_sla.adapters.records import order_of
from fixloop_sla.domain import PolicyBook

BOOK = PolicyBook.of([bench_policy()])
HOUR_MS = 3_600_000


def test_arguments_default_to_the_issue_s_figures() -> None:
    opts = parse_args([])
    assert (opts.clocks, opts.burst, opts.restarts) == (1_000_000, 10_000, 1)
    assert opts.partitions == Options().partitions
    assert opts.lead is None


def test_arguments_are_read() -> None:
    opts = parse_args(["--clocks", "20000", "--burst", "500", "--partitions", "6", "--lead", "30"])
    assert (opts.clocks, opts.burst, opts.partitions, opts.lead) == (20_000, 500, 6, 30.0)


@pytest.mark.parametrize(
    "argv",
    [
        ["--clocks", "0"],
        ["--clocks", "100", "--burst", "101"],
        ["--partitions", "0"],
        ["--restarts", "0"],
        ["--lead", "1"],
    ],
)
def test_arguments_out_of_range_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2


@pytest.mark.parametrize(
    ("work_order_id", "partition", "received_ms"),
    [("bench-order-0000001", 1, 1_790_000_000_123), ("bench-burst-000007", 2, 1_700_000_000_000)],
)
def test_a_cloned_order_is_the_engine_s_own_document(
    work_order_id: str, partition: int, received_ms: int
) -> None:
    cloner = Cloner(BOOK)
    cloned = cloner.clone(work_order_id, partition, received_ms)
    assert cloned == engine_document(work_order_id, partition, received_ms, BOOK)
    assert order_of(cloned).work_order_id == work_order_id


def test_a_clone_warns_an_hour_after_its_receipt() -> None:
    cloner = Cloner(BOOK)
    warn_ms = 1_800_000_000_000
    doc = cloner.clone("o", 0, cloner.received_for_warning(warn_ms))
    assert doc["next_due_ms"] == warn_ms
    assert doc["open"][0]["warn_ms"] == warn_ms
    assert doc["open"][0]["deadline_ms"] == warn_ms + HOUR_MS
    assert doc["facts"][0]["at"] == warn_ms - HOUR_MS
    assert doc["emitted"] == {}


def test_the_burst_warns_within_one_second_and_the_rest_spreads_evenly() -> None:
    burst = list(burst_warnings(10_000, 5_000))
    assert min(burst) == 5_000
    assert max(burst) < 6_000
    spread = list(spread_warnings(4, 0, 1_000))
    assert spread == [0, 250, 500, 750]


def test_orders_are_spread_over_partitions_by_number() -> None:
    assert partition_counts(10, 3) == [4, 3, 3]
    assert sum(partition_counts(1_000_000, 7)) == 1_000_000


def test_spread_gives_nearest_rank_percentiles_in_ms() -> None:
    figures = spread_ms("lag", [i / 1000 for i in range(1, 101)])
    assert figures == {
        "lag_p50_ms": 51.0,
        "lag_p90_ms": 90.0,
        "lag_p99_ms": 99.0,
        "lag_max_ms": 100.0,
    }
    assert spread_ms("lag", [])["lag_p99_ms"] is None


def test_metrics_are_summed_over_label_sets() -> None:
    page = "\n".join(
        [
            "# HELP fixloop_sla_clocks Open clock cycles",
            'fixloop_sla_clocks{milestone="arrival",condition="running"} 3.0',
            'fixloop_sla_clocks{milestone="repair",condition="paused"} 2.0',
            "fixloop_sla_partitions_owned 3.0",
        ]
    )
    assert metric_totals(page) == {"fixloop_sla_clocks": 5.0, "fixloop_sla_partitions_owned": 3.0}


def test_memory_is_read_from_proc_status() -> None:
    status = "Name:\tpython\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t4\n"
    assert memory_mib(status) == {"peak_rss_mib": 200.0, "rss_mib": 100.0}


def test_targets_are_met_at_or_below_their_limit() -> None:
    assert target_met(1000.0, 1000.0) == "yes"
    assert target_met(1000.5, 1000.0) == "no"
    assert target_met(None, 1000.0) == "unknown"
