"""The partner API's read cache: an answer is given again only while nothing it shows changed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from fixloop_orders.adapters.read_cache import (
    CONTRACTORS_SCOPE,
    ReadCache,
    order_scope,
    order_scopes,
    tenant_scope,
)

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Answer:
    text: str
    size: int = 100

    def ByteSize(self) -> int:  # noqa: N802 - protobuf's name
        return self.size


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def cache(clock: Clock, **options: float) -> ReadCache[Answer]:
    made: ReadCache[Answer] = ReadCache(
        max_age_seconds=options.get("max_age", 60.0),
        settle_seconds=options.get("settle", 5.0),
        max_bytes=int(options.get("max_bytes", 1_000_000)),
        followed=False,
        clock=clock,
    )
    return made


def test_an_answer_is_given_again_until_its_order_changes() -> None:
    clock = Clock()
    reads = cache(clock)
    ticket = reads.ticket()
    clock.advance(0.01)
    reads.keep("get:o1", Answer("v1"), ticket, (order_scope("o1"),))
    assert reads.lookup("get:o1") == Answer("v1")
    reads.changed(order_scopes("acme", "o2"))  # another order: still true
    assert reads.lookup("get:o1") == Answer("v1")
    clock.advance(0.01)
    reads.changed(order_scopes("acme", "o1"))
    assert reads.lookup("get:o1") is None
    assert (reads.hits, reads.misses) == (2, 1)


def test_a_change_during_the_read_voids_the_answer_it_read() -> None:
    clock = Clock()
    reads = cache(clock)
    ticket = reads.ticket()  # the read begins
    clock.advance(0.001)
    reads.changed((tenant_scope("acme"),))  # a write commits while the store answers
    clock.advance(0.001)
    reads.keep("list:acme", Answer("old page"), ticket, (tenant_scope("acme"),))
    assert reads.lookup("list:acme") is None
    # A read that began after the change is kept.
    ticket = reads.ticket()
    clock.advance(0.001)
    reads.keep("list:acme", Answer("new page"), ticket, (tenant_scope("acme"),))
    assert reads.lookup("list:acme") == Answer("new page")


def test_an_unsettled_order_is_read_from_the_store_until_it_settles() -> None:
    clock = Clock()
    reads = cache(clock, settle=5.0)
    reads.changed((order_scope("o1"), CONTRACTORS_SCOPE), settling=True)
    for _ in range(4):
        clock.advance(1.0)
        ticket = reads.ticket()
        reads.keep("get:o1", Answer("maybe old"), ticket, (order_scope("o1"),))
        assert reads.lookup("get:o1") is None
    clock.advance(1.5)
    ticket = reads.ticket()
    reads.keep("get:o1", Answer("settled"), ticket, (order_scope("o1"),))
    assert reads.lookup("get:o1") == Answer("settled")


def test_no_answer_outlives_its_max_age_or_its_until() -> None:
    clock = Clock()
    reads = cache(clock, max_age=10.0)
    reads.keep("a", Answer("a"), reads.ticket(), ("x",))
    reads.keep("offers", Answer("open"), reads.ticket(), ("y",), until=T0 + timedelta(minutes=5))
    clock.advance(9.0)
    assert reads.lookup("a") == Answer("a")
    assert reads.lookup("offers", now=T0) == Answer("open")
    assert reads.lookup("offers", now=T0 + timedelta(minutes=5)) is None  # the offer expired
    clock.advance(1.5)
    assert reads.lookup("a") is None


def test_a_suspended_cache_keeps_and_gives_nothing_and_forgets_reads_older_than_resuming() -> None:
    clock = Clock()
    reads: ReadCache[Answer] = ReadCache(max_age_seconds=60.0, followed=True, clock=clock)
    assert not reads.live  # a followed cache waits for its feed
    reads.keep("a", Answer("a"), reads.ticket(), ("x",))
    assert reads.lookup("a") is None
    reads.resume()
    began_before = reads.ticket()
    clock.advance(0.01)
    reads.suspend()
    clock.advance(0.01)
    reads.resume()  # changes between suspend and resume may have been missed
    reads.keep("a", Answer("maybe old"), began_before, ("x",))
    assert reads.lookup("a") is None
    reads.keep("a", Answer("a"), reads.ticket(), ("x",))
    assert reads.lookup("a") == Answer("a")
    reads.suspend()
    assert reads.lookup("a") is None
    assert len(reads) == 0


def test_a_disabled_cache_never_keeps() -> None:
    reads: ReadCache[Answer] = ReadCache(max_age_seconds=0, followed=False)
    reads.resume()
    reads.keep("a", Answer("a"), reads.ticket(), ("x",))
    assert not reads.enabled
    assert reads.lookup("a") is None


def test_the_oldest_answers_go_first_when_memory_is_full() -> None:
    clock = Clock()
    reads = cache(clock, max_bytes=1000)
    for i in range(20):
        reads.keep(i, Answer(str(i), size=100), reads.ticket(), ("x",))
    assert reads.size_bytes <= 1000
    assert reads.lookup(0) is None
    assert reads.lookup(19) == Answer("19", 100)
    reads.keep("huge", Answer("huge", size=5000), reads.ticket(), ("x",))
    assert reads.lookup("huge") is None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["read", "write", "foreign", "tick"]),
            st.sampled_from(["o1", "o2", "o3"]),
        ),
        max_size=60,
    )
)
def test_never_an_answer_older_than_the_last_change_of_what_it_shows(
    steps: list[tuple[str, str]],
) -> None:
    """Model: each order has a version bumped by writes; a read that begins returns the current
    version and is kept when it ends. Whatever the interleaving, a lookup gives either nothing or
    the current version (foreign events settle for 5 s, within which the write lands)."""
    clock = Clock()
    reads = cache(clock, settle=5.0)
    version = {"o1": 0, "o2": 0, "o3": 0}
    pending_foreign: list[tuple[float, str]] = []
    in_flight: list[tuple[str, float, int]] = []
    for action, order in steps:
        clock.advance(0.1)
        for due, foreign_order in [p for p in pending_foreign if p[0] <= clock.now]:
            pending_foreign.remove((due, foreign_order))
            version[foreign_order] += 1  # the consuming pod writes the timeline entry
        if action == "read":
            if in_flight:
                key, ticket, seen = in_flight.pop(0)
                reads.keep(key, Answer(str(seen)), ticket, (order_scope(key),))
            in_flight.append((order, reads.ticket(), version[order]))
        elif action == "write":
            version[order] += 1
            reads.changed(order_scopes("acme", order))
        elif action == "foreign":
            reads.changed((order_scope(order),), settling=True)
            pending_foreign.append((clock.now + 2.0, order))
        else:
            clock.advance(3.0)
        for key, current in version.items():
            kept = reads.lookup(key)
            assert kept is None or kept.text == str(current)
