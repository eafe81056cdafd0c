"""The gRPC reads benchmark's own accounting: echo requests, where py-spy samples fall, options.

The benchmark itself (``make bench-grpc``) measures; nothing here depends on timings.
"""

from __future__ import annotations

import pytest

from bench.grpc_reads import (
    CATEGORIES,
    REST,
    SIZE_DIGITS,
    WAITING,
    EchoServer,
    breakdown,
    echo_requests,
    parse_args,
)


def test_an_echo_request_carries_the_real_reply_size_before_the_real_request() -> None:
    (request,) = echo_requests([b"\x0a\x24abc"], [2309])
    assert request == b"00002309\x0a\x24abc"
    assert int(request[:SIZE_DIGITS]) == 2309


async def test_the_echo_answers_as_many_bytes_as_asked() -> None:
    echo = EchoServer()
    (request,) = echo_requests([b"request"], [1234])
    assert len(await echo._reply(request, None)) == 1234


def test_samples_fall_in_the_first_matching_category_and_waits_split_no_cpu() -> None:
    raw = "\n".join(
        [
            # a store call made from the servicer counts as the store call
            "main (x.py:1);WorkOrdersServicer.GetWorkOrder (fixloop_orders/adapters/grpc_api.py:9);"
            "AsyncCollection.find_one (pymongo/asynchronous/collection.py:5) 6",
            # the call log written by the auth interceptor counts as logging
            "_log_call (fixloop_shared/grpc_edge/auth.py:3);Logger.info (logging/__init__.py:1) 2",
            "main (x.py:1);Handle._run (asyncio/events.py:80) 2",
            "main (x.py:1);EpollSelector.select (selectors.py:468) 10",
            "not a sample line",
        ]
    )
    rows = {row["category"]: row for row in breakdown(raw, CATEGORIES["orders"], "rest", 5.0)}
    store = "store round trips: pymongo, its tracing spans, BSON, sockets"
    assert rows[store]["samples"] == 6
    assert rows["call log: logging, JSON formatting"]["samples"] == 2
    assert rows["rest"]["samples"] == 2
    assert rows[WAITING]["samples"] == 10
    assert rows[WAITING]["cpu_ms_per_call"] is None
    # the 10 working samples split the 5 ms
    assert rows[store]["cpu_ms_per_call"] == 3.0
    assert rows[store]["percent"] == 30.0
    assert set(REST) == set(CATEGORIES)


def test_options() -> None:
    opts = parse_args(["--orders", "100", "--seconds", "3", "--profile", "ListJobs"])
    assert (opts.orders, opts.seconds, opts.concurrency, opts.rate, opts.runs) == (
        100,
        3.0,
        8,
        200.0,
        1,
    )
    assert opts.profile_phases == ("ListJobs",)
    assert not parse_args(["--no-profile"]).profile
    with pytest.raises(SystemExit):
        parse_args(["--profile", "DeleteEverything"])
    with pytest.raises(SystemExit):
        parse_args(["--orders", "10"])
