"""Parts domain: stock arithmetic and where a work order's parts are reserved from."""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import combinations
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from fixloop_parts.adapters.memory import MemoryReservationLog, MemoryStock
from fixloop_parts.adapters.mongo import STOCK
from fixloop_parts.app import PartsReservations, PartsSettlements, import_stock_count
from fixloop_parts.app.reserve_parts import WIRE_QUANTITY_LIMIT, decision_event
from fixloop_parts.app.settle_parts import CANCELLED_WITHOUT_REASON, wire_lines
from fixloop_parts.app.stock_count import StockCountFile, duplicate_problems
from fixloop_parts.domain import (
    Allocation,
    CountBelowReserved,
    InsufficientStock,
    LineSettlement,
    PartDemand,
    SourceStock,
    StockLevel,
    StockMovement,
    StockRuleViolation,
    choose_sources,
    choose_unreserved_source,
    plan_reservation,
    preferred_warehouses,
    release_all,
    settle_completion,
    split_quantity,
    total_demand,
)
from fixloop_shared.contracts import (
    Actor,
    Category,
    CompletionReport,
    PartReservation,
    PartsBackordered,
    PartsConsumed,
    PartsReleased,
    PartsReserved,
    PartUsed,
    Priority,
    WorkOrderCancelled,
    WorkOrderReceived,
    WorkOrderWorkCompleted,
)
from fixloop_shared.envelope import Event, EventEnvelope
from fixloop_shared.memory import MemoryStore
from fixloop_shared.topics import Service, Topic
from fixloop_shared.vocabulary import ActorKind, WorkOrderState

COUNTRIES = ("DE", "AT", "GB")
PARTS = ("FLT-HEPA-24", "BLT-V-A42", "CMP-SCROLL-5T")


def source(
    warehouse_id: str, country: str, available: int, part: str = "FLT-HEPA-24"
) -> SourceStock:
    return SourceStock(
        warehouse_id=warehouse_id, country=country, part_number=part, available=available
    )


warehouse_stock = st.lists(
    st.tuples(st.sampled_from(COUNTRIES), st.integers(min_value=0, max_value=30)),
    max_size=7,
).map(
    lambda entries: [
        source(f"wh-{index}", country, available)
        for index, (country, available) in enumerate(entries)
    ]
)

world_stock = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=5),
        st.sampled_from(COUNTRIES),
        st.sampled_from(PARTS),
        st.integers(min_value=0, max_value=40),
    ),
    max_size=15,
).map(
    lambda entries: list(
        {
            (f"wh-{w}", part): source(f"wh-{w}", country, available, part)
            for w, country, part, available in entries
        }.values()
    )
)
demand_lines = st.lists(
    st.tuples(st.sampled_from(PARTS), st.integers(min_value=1, max_value=40)),
    min_size=1,
    max_size=6,
)


def oracle(
    quantity: int, stock: Sequence[SourceStock], site_country: str, max_sources: int
) -> tuple[int, int, int]:
    """Best (reserved, -foreign units, -warehouses) over every choice of warehouses."""
    best = (0, 0, 0)
    usable = [s for s in stock if s.available > 0]
    for size in range(1, min(max_sources, len(usable)) + 1):
        for chosen in combinations(usable, size):
            total = sum(s.available for s in chosen)
            local = sum(s.available for s in chosen if s.country == site_country)
            reserved = min(quantity, total)
            score = (reserved, -max(0, reserved - local), -size)
            best = max(best, score)
    return best


# --- stock levels -----------------------------------------------------------------------------


@given(
    on_hand=st.integers(min_value=0, max_value=1000),
    reservations=st.lists(st.integers(min_value=-2, max_value=50), max_size=30),
)
def test_reserving_never_drives_stock_negative(on_hand: int, reservations: list[int]) -> None:
    level = StockLevel.counted("wh-berlin", "FLT-HEPA-24", on_hand)
    for quantity in reservations:
        try:
            after = level.reserve(quantity)
        except InsufficientStock:
            assert quantity > level.available
            continue
        except StockRuleViolation:
            assert quantity < 1
            continue
        assert after.reserved == level.reserved + quantity
        assert after.on_hand == on_hand
        level = after
        assert level.available >= 0
        assert level.available == level.on_hand - level.reserved


@given(
    on_hand=st.integers(min_value=0, max_value=100),
    reserved=st.integers(min_value=0, max_value=100),
    counted=st.integers(min_value=0, max_value=200),
)
def test_a_count_sets_on_hand_and_keeps_reservations(
    on_hand: int, reserved: int, counted: int
) -> None:
    if reserved > on_hand:
        with pytest.raises(StockRuleViolation):
            StockLevel("wh-berlin", "BLT-V-A42", on_hand, reserved)
        return
    level = StockLevel("wh-berlin", "BLT-V-A42", on_hand, reserved)
    if counted < reserved:
        with pytest.raises(CountBelowReserved, match=f"{reserved} are reserved"):
            level.recounted(counted)
        return
    after = level.recounted(counted)
    assert (after.on_hand, after.reserved, after.available) == (
        counted,
        reserved,
        counted - reserved,
    )


# --- demand -----------------------------------------------------------------------------------


@given(demand_lines)
def test_total_demand_sums_repeated_lines_in_first_seen_order(lines: list[tuple[str, int]]) -> None:
    demand = total_demand(lines)
    assert [d.part_number for d in demand] == list(dict.fromkeys(part for part, _ in lines))
    for d in demand:
        assert d.quantity == sum(q for part, q in lines if part == d.part_number)


def test_total_demand_rejects_empty_lines() -> None:
    with pytest.raises(ValueError, match="at least one unit"):
        total_demand([("FLT-HEPA-24", 0)])


def test_plan_needs_each_part_once() -> None:
    with pytest.raises(ValueError, match="demanded once"):
        plan_reservation(
            [PartDemand("FLT-HEPA-24", 1), PartDemand("FLT-HEPA-24", 2)], [], site_country="DE"
        )


# --- planning properties ----------------------------------------------------------------------


@settings(max_examples=300)
@given(
    lines=demand_lines,
    stock=world_stock,
    site_country=st.sampled_from(COUNTRIES),
    max_sources=st.integers(min_value=1, max_value=3),
)
def test_plan_never_oversells_and_accounts_for_every_unit(
    lines: list[tuple[str, int]], stock: list[SourceStock], site_country: str, max_sources: int
) -> None:
    demand = total_demand(lines)
    plan = plan_reservation(demand, stock, site_country=site_country, max_sources=max_sources)

    available = {(s.warehouse_id, s.part_number): s.available for s in stock}
    taken: dict[tuple[str, str], int] = {}
    for allocation in plan.allocations:
        assert allocation.quantity >= 1
        key = (allocation.warehouse_id, allocation.part_number)
        assert key not in taken, "one allocation per warehouse and part"
        taken[key] = allocation.quantity
        assert allocation.quantity <= available[key]
    for part in demand:
        assert (
            plan.reserved_of(part.part_number) + plan.missing_of(part.part_number) == part.quantity
        )
        assert plan.missing_of(part.part_number) >= 0
        warehouses = {a.warehouse_id for a in plan.allocations if a.part_number == part.part_number}
        assert len(warehouses) <= max_sources
    assert all(s.quantity >= 1 for s in plan.shortfalls)
    assert plan.complete == (plan.units_missing == 0)
    assert {a.part_number for a in plan.allocations} <= {d.part_number for d in demand}


@settings(max_examples=400)
@given(
    quantity=st.integers(min_value=1, max_value=60),
    stock=warehouse_stock,
    site_country=st.sampled_from(COUNTRIES),
    max_sources=st.integers(min_value=1, max_value=3),
)
def test_choice_is_optimal_reserve_most_then_local_then_fewest_warehouses(
    quantity: int, stock: list[SourceStock], site_country: str, max_sources: int
) -> None:
    allocations = choose_sources(
        PartDemand("FLT-HEPA-24", quantity),
        stock,
        site_country=site_country,
        max_sources=max_sources,
    )
    country = {s.warehouse_id: s.country for s in stock}
    reserved = sum(a.quantity for a in allocations)
    foreign = sum(a.quantity for a in allocations if country[a.warehouse_id] != site_country)
    assert (reserved, -foreign, -len(allocations)) == oracle(
        quantity, stock, site_country, max_sources
    )


@given(
    quantity=st.integers(min_value=1, max_value=60),
    stock=warehouse_stock,
    site_country=st.sampled_from(COUNTRIES),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_choice_does_not_depend_on_the_order_stock_was_read_in(
    quantity: int, stock: list[SourceStock], site_country: str, seed: int
) -> None:
    shuffled = list(stock)
    random.Random(seed).shuffle(shuffled)
    demand = PartDemand("FLT-HEPA-24", quantity)
    assert choose_sources(demand, stock, site_country=site_country) == choose_sources(
        demand, shuffled, site_country=site_country
    )


@given(
    quantity=st.integers(min_value=1, max_value=30),
    stock=warehouse_stock,
    site_country=st.sampled_from(COUNTRIES),
)
def test_a_local_warehouse_that_can_cover_the_line_ships_it_alone(
    quantity: int, stock: list[SourceStock], site_country: str
) -> None:
    local = [s for s in stock if s.country == site_country]
    richest_local = max((s.available for s in local), default=0)
    allocations = choose_sources(
        PartDemand("FLT-HEPA-24", quantity), stock, site_country=site_country
    )
    if richest_local >= quantity:
        assert len(allocations) == 1
        (only,) = allocations
        chosen = next(s for s in stock if s.warehouse_id == only.warehouse_id)
        assert chosen.country == site_country
        assert chosen.available == richest_local, "the local warehouse with most stock"
        assert only.quantity == quantity


# --- planning examples ------------------------------------------------------------------------


def test_prefers_the_sites_country_over_a_bigger_foreign_stock() -> None:
    stock = [
        source("wh-vienna", "AT", 50),
        source("wh-munich", "DE", 3),
        source("wh-berlin", "DE", 5),
    ]
    allocations = choose_sources(PartDemand("FLT-HEPA-24", 4), stock, site_country="DE")
    assert [(a.warehouse_id, a.quantity) for a in allocations] == [("wh-berlin", 4)]


def test_splits_across_local_warehouses_before_going_abroad() -> None:
    stock = [
        source("wh-vienna", "AT", 50),
        source("wh-munich", "DE", 3),
        source("wh-berlin", "DE", 5),
    ]
    allocations = choose_sources(PartDemand("FLT-HEPA-24", 7), stock, site_country="DE")
    assert [(a.warehouse_id, a.quantity) for a in allocations] == [
        ("wh-berlin", 5),
        ("wh-munich", 2),
    ]


def test_goes_abroad_only_for_what_local_stock_lacks() -> None:
    stock = [
        source("wh-vienna", "AT", 50),
        source("wh-munich", "DE", 3),
        source("wh-berlin", "DE", 5),
    ]
    allocations = choose_sources(PartDemand("FLT-HEPA-24", 10), stock, site_country="DE")
    assert [(a.warehouse_id, a.quantity) for a in allocations] == [
        ("wh-berlin", 5),
        ("wh-munich", 3),
        ("wh-vienna", 2),
    ]


def test_without_local_stock_the_biggest_foreign_warehouse_ships() -> None:
    stock = [
        source("wh-vienna", "AT", 4),
        source("wh-munich", "DE", 9),
        source("wh-berlin", "DE", 6),
    ]
    allocations = choose_sources(PartDemand("FLT-HEPA-24", 5), stock, site_country="GB")
    assert [(a.warehouse_id, a.quantity) for a in allocations] == [("wh-munich", 5)]


def test_a_split_limit_never_costs_units_that_one_bigger_warehouse_has() -> None:
    stock = [
        source("wh-a", "DE", 1),
        source("wh-b", "DE", 1),
        source("wh-c", "DE", 1),
        source("wh-vienna", "AT", 100),
    ]
    allocations = choose_sources(
        PartDemand("FLT-HEPA-24", 5), stock, site_country="DE", max_sources=3
    )
    assert sum(a.quantity for a in allocations) == 5
    assert [(a.warehouse_id, a.quantity) for a in allocations] == [
        ("wh-a", 1),
        ("wh-b", 1),
        ("wh-vienna", 3),
    ]


def test_scarce_compressor_is_partly_reserved_and_partly_missing() -> None:
    stock = [
        source("wh-berlin", "DE", 6, "GSK-FRIDGE-180"),
        source("wh-munich", "DE", 1, "CMP-SCROLL-5T"),
        source("wh-berlin", "DE", 0, "CMP-SCROLL-5T"),
    ]
    demand = total_demand([("GSK-FRIDGE-180", 1), ("CMP-SCROLL-5T", 2)])
    plan = plan_reservation(demand, stock, site_country="DE")
    assert not plan.complete
    assert [(a.part_number, a.warehouse_id, a.quantity) for a in plan.allocations] == [
        ("GSK-FRIDGE-180", "wh-berlin", 1),
        ("CMP-SCROLL-5T", "wh-munich", 1),
    ]
    assert [(s.part_number, s.quantity) for s in plan.shortfalls] == [("CMP-SCROLL-5T", 1)]


def test_unknown_part_is_missing_entirely() -> None:
    plan = plan_reservation([PartDemand("THERM-DIGI-01", 3)], [], site_country="AT")
    assert plan.allocations == ()
    assert [(s.part_number, s.quantity) for s in plan.shortfalls] == [("THERM-DIGI-01", 3)]


# --- wire form of a decision ------------------------------------------------------------------


@given(
    quantity=st.integers(min_value=0, max_value=100_000),
    limit=st.integers(min_value=1, max_value=20_000),
)
def test_split_quantity_keeps_the_total_within_the_limit(quantity: int, limit: int) -> None:
    pieces = split_quantity(quantity, limit)
    assert sum(pieces) == quantity
    assert all(1 <= piece <= limit for piece in pieces)


def test_large_reservations_are_split_into_contract_sized_lines() -> None:
    from datetime import UTC, datetime

    stock = [source("wh-berlin", "DE", 25_000), source("wh-munich", "DE", 1_000)]
    demand = total_demand(
        [("FLT-HEPA-24", 10_000), ("FLT-HEPA-24", 10_000), ("FLT-HEPA-24", 7_000)]
    )
    plan = plan_reservation(demand, stock, site_country="DE")
    event = decision_event("wo-1", plan, datetime(2026, 11, 21, tzinfo=UTC))
    assert isinstance(event, PartsBackordered)
    assert sum(r.quantity for r in event.reservations) == 26_000
    assert all(r.quantity <= WIRE_QUANTITY_LIMIT for r in event.reservations)
    assert [(m.part_number, m.quantity) for m in event.missing] == [("FLT-HEPA-24", 1_000)]

    complete = plan_reservation(total_demand([("FLT-HEPA-24", 3)]), stock, site_country="DE")
    assert isinstance(
        decision_event("wo-2", complete, datetime(2026, 11, 21, tzinfo=UTC)), PartsReserved
    )


# --- stock file model -------------------------------------------------------------------------


def test_stock_file_model_is_strict() -> None:
    with pytest.raises(ValidationError) as info:
        StockCountFile.model_validate(
            {
                "warehouses": [{"warehouse_id": "wh-berlin", "name": "Berlin", "country": "de"}],
                "stock": [
                    {"warehouse_id": "wh-berlin", "part_number": "FLT-HEPA-24", "quantity": "5"},
                    {"warehouse_id": "wh-berlin", "part_number": "BLT-V-A42", "quantity": -1},
                    {"warehouse_id": {"$ne": None}, "part_number": "X", "quantity": 1},
                    {"warehouse_id": "wh-berlin", "part_number": "Y", "quantity": 1, "bin": "A1"},
                ],
            }
        )
    locations = {tuple(e["loc"]) for e in info.value.errors()}
    assert locations == {
        ("warehouses", 0, "country"),
        ("stock", 0, "quantity"),
        ("stock", 1, "quantity"),
        ("stock", 2, "warehouse_id"),
        ("stock", 3, "bin"),
    }


def test_duplicates_in_a_count_are_problems_with_locations() -> None:
    count = StockCountFile.model_validate(
        {
            "warehouses": [
                {"warehouse_id": "wh-berlin", "name": "Berlin", "country": "DE"},
                {"warehouse_id": "wh-berlin", "name": "Berlin again", "country": "DE"},
            ],
            "stock": [
                {"warehouse_id": "wh-berlin", "part_number": "FLT-HEPA-24", "quantity": 5},
                {"warehouse_id": "wh-berlin", "part_number": "FLT-HEPA-24", "quantity": 6},
            ],
        }
    )
    problems = duplicate_problems(count)
    assert [p.location for p in problems] == [
        ("warehouses", 1, "warehouse_id"),
        ("stock", 1, "part_number"),
    ]
    assert "already counted at stock[0]" in problems[1].message
    assert [p.message for p in duplicate_problems(StockCountFile())] == [
        "the file lists no warehouses and no stock"
    ]


# --- settling reservations: cancelled and completed work orders ---------------------------------


def reserved(part: str, warehouse_id: str, quantity: int) -> Allocation:
    return Allocation(part_number=part, warehouse_id=warehouse_id, quantity=quantity)


def as_tuples(allocations: Sequence[Allocation]) -> list[tuple[str, str, int]]:
    return [(a.part_number, a.warehouse_id, a.quantity) for a in allocations]


def test_a_release_puts_reserved_units_back_to_available() -> None:
    level = StockLevel("wh-berlin", "FLT-HEPA-24", on_hand=10, reserved=4)
    after = level.moved(StockMovement.settling("wh-berlin", "FLT-HEPA-24", consumed=0, released=3))
    assert (after.on_hand, after.reserved, after.available) == (10, 1, 9)


def test_consumed_reserved_units_leave_on_hand_and_available_is_untouched() -> None:
    level = StockLevel("wh-berlin", "FLT-HEPA-24", on_hand=10, reserved=4)
    consumed = StockMovement.settling("wh-berlin", "FLT-HEPA-24", consumed=3, released=0)
    assert consumed.available == 0
    after = level.moved(consumed)
    assert (after.on_hand, after.reserved, after.available) == (7, 1, 6)
    both = level.moved(StockMovement.settling("wh-berlin", "FLT-HEPA-24", consumed=3, released=1))
    assert (both.on_hand, both.reserved, both.available) == (7, 0, 7)


def test_unreserved_use_takes_from_available_and_never_below_zero() -> None:
    level = StockLevel("wh-berlin", "FLT-HEPA-24", on_hand=5, reserved=3)
    two = StockMovement.unreserved_use("wh-berlin", "FLT-HEPA-24", 2)
    assert two.minimums() == {"on_hand": 2, "available": 2}
    after = level.moved(two)
    assert (after.on_hand, after.reserved, after.available) == (3, 3, 0)
    three = StockMovement.unreserved_use("wh-berlin", "FLT-HEPA-24", 3)
    assert not three.fits(level)
    with pytest.raises(StockRuleViolation, match="negative"):
        level.moved(three)
    with pytest.raises(StockRuleViolation):
        StockMovement.unreserved_use("wh-berlin", "FLT-HEPA-24", 0)


def test_a_movement_never_releases_more_than_is_reserved_nor_moves_another_line() -> None:
    level = StockLevel("wh-berlin", "FLT-HEPA-24", on_hand=5, reserved=1)
    release = StockMovement.settling("wh-berlin", "FLT-HEPA-24", consumed=0, released=2)
    assert release.minimums() == {"reserved": 2}
    with pytest.raises(StockRuleViolation):
        level.moved(release)
    with pytest.raises(StockRuleViolation, match="applied to"):
        level.moved(StockMovement.settling("wh-munich", "FLT-HEPA-24", consumed=0, released=1))
    with pytest.raises(StockRuleViolation):
        StockMovement.settling("wh-berlin", "FLT-HEPA-24", consumed=-1, released=1)


@given(
    on_hand=st.integers(min_value=0, max_value=30),
    reserved_share=st.integers(min_value=0, max_value=30),
    on_hand_delta=st.integers(min_value=-40, max_value=0),
    reserved_delta=st.integers(min_value=-40, max_value=10),
)
def test_a_movement_applies_exactly_when_no_quantity_goes_negative(
    on_hand: int, reserved_share: int, on_hand_delta: int, reserved_delta: int
) -> None:
    level = StockLevel("wh-1", "P", on_hand, min(reserved_share, on_hand))
    movement = StockMovement("wh-1", "P", on_hand=on_hand_delta, reserved=reserved_delta)
    expected_ok = (
        level.on_hand + on_hand_delta >= 0
        and level.reserved + reserved_delta >= 0
        and level.available + movement.available >= 0
    )
    assert movement.fits(level) == expected_ok
    if not expected_ok:
        with pytest.raises(StockRuleViolation):
            level.moved(movement)
        return
    after = level.moved(movement)
    assert after.on_hand == level.on_hand + on_hand_delta
    assert after.reserved == level.reserved + reserved_delta
    assert after.available == level.available + movement.available >= 0


def test_a_cancellation_releases_every_line_in_full() -> None:
    settlement = release_all(
        [
            reserved("FLT-HEPA-24", "wh-munich", 2),
            reserved("BLT-V-A42", "wh-berlin", 1),
            reserved("FLT-HEPA-24", "wh-berlin", 3),
        ]
    )
    assert settlement.consumed == ()
    assert settlement.unreserved == ()
    assert as_tuples(settlement.released) == [
        ("BLT-V-A42", "wh-berlin", 1),
        ("FLT-HEPA-24", "wh-berlin", 3),
        ("FLT-HEPA-24", "wh-munich", 2),
    ]
    assert (settlement.units_consumed, settlement.units_released) == (0, 6)
    assert [line.outcome for line in settlement.lines] == ["released"] * 3
    assert release_all([]).lines == ()


def test_completion_consumes_the_used_units_largest_line_first_and_releases_the_rest() -> None:
    reservations = [
        reserved("FLT-HEPA-24", "wh-berlin", 2),
        reserved("FLT-HEPA-24", "wh-vienna", 3),
        reserved("BLT-V-A42", "wh-berlin", 1),
    ]
    settlement = settle_completion(reservations, [("FLT-HEPA-24", 4)])
    assert as_tuples(settlement.consumed) == [
        ("FLT-HEPA-24", "wh-vienna", 3),
        ("FLT-HEPA-24", "wh-berlin", 1),
    ]
    assert as_tuples(settlement.released) == [
        ("BLT-V-A42", "wh-berlin", 1),
        ("FLT-HEPA-24", "wh-berlin", 1),
    ]
    assert settlement.unreserved == ()
    assert [line.outcome for line in settlement.lines] == ["released", "consumed", "consumed"]
    movements = {
        (line.reservation.warehouse_id, line.reservation.part_number): line.movement
        for line in settlement.lines
    }
    assert movements[("wh-berlin", "FLT-HEPA-24")] == StockMovement(
        "wh-berlin", "FLT-HEPA-24", on_hand=-1, reserved=-2
    )
    assert movements[("wh-vienna", "FLT-HEPA-24")].available == 0
    assert movements[("wh-berlin", "BLT-V-A42")].available == 1


def test_units_used_beyond_a_reservation_or_never_reserved_are_unreserved_use() -> None:
    settlement = settle_completion(
        [reserved("FLT-HEPA-24", "wh-berlin", 2)],
        [("FLT-HEPA-24", 3), ("GSK-FRIDGE-180", 1), ("FLT-HEPA-24", 1)],
    )
    assert as_tuples(settlement.consumed) == [("FLT-HEPA-24", "wh-berlin", 2)]
    assert settlement.released == ()
    assert settlement.unreserved == (
        PartDemand("FLT-HEPA-24", 2),
        PartDemand("GSK-FRIDGE-180", 1),
    )
    nothing_reserved = settle_completion([], [("GSK-FRIDGE-180", 2)])
    assert nothing_reserved.lines == ()
    assert nothing_reserved.unreserved == (PartDemand("GSK-FRIDGE-180", 2),)
    nothing_used = settle_completion([reserved("GSK-FRIDGE-180", "wh-berlin", 2)], [])
    assert as_tuples(nothing_used.released) == [("GSK-FRIDGE-180", "wh-berlin", 2)]


def test_a_line_ends_with_exactly_its_units_and_lines_are_unique() -> None:
    line = reserved("FLT-HEPA-24", "wh-berlin", 3)
    with pytest.raises(StockRuleViolation):
        LineSettlement(line, consumed=2, released=2)
    with pytest.raises(StockRuleViolation):
        LineSettlement(line, consumed=4, released=-1)
    with pytest.raises(ValueError, match="one reservation line"):
        release_all([line, line])
    with pytest.raises(ValueError, match="at least one unit"):
        settle_completion([line], [("FLT-HEPA-24", 0)])


reservation_lines = st.dictionaries(
    st.tuples(st.sampled_from(PARTS), st.sampled_from(("wh-0", "wh-1", "wh-2"))),
    st.integers(min_value=1, max_value=20),
    max_size=6,
).map(lambda lines: [reserved(p, w, q) for (p, w), q in lines.items()])
used_lines = st.lists(
    st.tuples(st.sampled_from((*PARTS, "THERM-DIGI-01")), st.integers(min_value=1, max_value=25)),
    max_size=6,
)


@settings(max_examples=300)
@given(reservation_lines, used_lines, st.randoms(use_true_random=False))
def test_completion_accounts_for_every_reserved_and_every_used_unit(
    reservations: list[Allocation], used: list[tuple[str, int]], rnd: random.Random
) -> None:
    settlement = settle_completion(reservations, used)
    assert sorted(as_tuples([line.reservation for line in settlement.lines])) == sorted(
        as_tuples(reservations)
    )
    used_total = {d.part_number: d.quantity for d in total_demand(used)} if used else {}
    for part in {*used_total, *(r.part_number for r in reservations)}:
        lines = [line for line in settlement.lines if line.reservation.part_number == part]
        consumed = sum(line.consumed for line in lines)
        released = sum(line.released for line in lines)
        unreserved = sum(d.quantity for d in settlement.unreserved if d.part_number == part)
        assert consumed + released == sum(line.reservation.quantity for line in lines)
        assert consumed + unreserved == used_total.get(part, 0)
        assert not (released and unreserved), "a part is either short or over, never both"
        assert sum(1 for line in lines if 0 < line.consumed < line.reservation.quantity) <= 1
    shuffled = list(reservations)
    rnd.shuffle(shuffled)
    assert settle_completion(shuffled, used) == settlement
    # Applied to stock that holds the reservations, no quantity ever goes negative.
    for line in settlement.lines:
        r = line.reservation
        level = StockLevel(r.warehouse_id, r.part_number, on_hand=r.quantity, reserved=r.quantity)
        after = level.moved(line.movement)
        assert (after.on_hand, after.reserved, after.available) == (line.released, 0, line.released)


def test_unreserved_use_comes_from_one_warehouse_that_has_it_all_the_orders_own_first() -> None:
    stock = [
        source("wh-berlin", "DE", 1),
        source("wh-munich", "DE", 5),
        source("wh-vienna", "AT", 9),
        source("wh-hamburg", "DE", 20, part="BLT-V-A42"),
    ]
    three = PartDemand("FLT-HEPA-24", 3)
    preferred = ["wh-berlin", "wh-munich"]
    assert choose_unreserved_source(three, stock, preferred=preferred) == reserved(
        "FLT-HEPA-24", "wh-munich", 3
    ), "Berlin lacks them; Munich is the order's next warehouse"
    assert choose_unreserved_source(three, stock) == reserved("FLT-HEPA-24", "wh-vienna", 3)
    assert choose_unreserved_source(PartDemand("FLT-HEPA-24", 10), stock) is None, "never split"
    assert choose_unreserved_source(PartDemand("GSK-FRIDGE-180", 1), stock) is None


def test_the_warehouses_an_order_reserved_from_are_preferred_for_its_part_first() -> None:
    reservations = [
        reserved("BLT-V-A42", "wh-hamburg", 9),
        reserved("FLT-HEPA-24", "wh-munich", 1),
        reserved("FLT-HEPA-24", "wh-berlin", 4),
        reserved("GSK-FRIDGE-180", "wh-berlin", 2),
    ]
    assert preferred_warehouses(reservations, "FLT-HEPA-24") == [
        "wh-berlin",
        "wh-munich",
        "wh-hamburg",
    ]
    assert preferred_warehouses([], "FLT-HEPA-24") == []


def test_event_lines_are_one_per_part_and_warehouse_within_the_contracts_limit() -> None:
    lines = wire_lines(
        [
            reserved("FLT-HEPA-24", "wh-berlin", 3),
            reserved("GSK-FRIDGE-180", "wh-berlin", 2 * WIRE_QUANTITY_LIMIT + 5),
            reserved("FLT-HEPA-24", "wh-berlin", 2),
        ]
    )
    assert [(line.part_number, line.warehouse_id, line.quantity) for line in lines] == [
        ("FLT-HEPA-24", "wh-berlin", 5),
        ("GSK-FRIDGE-180", "wh-berlin", WIRE_QUANTITY_LIMIT),
        ("GSK-FRIDGE-180", "wh-berlin", WIRE_QUANTITY_LIMIT),
        ("GSK-FRIDGE-180", "wh-berlin", 5),
    ]


# --- settling on the in-memory store (the same promises as MongoDB) -----------------------------

T0 = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)


def memory_order(work_order_id: str, parts: Sequence[tuple[str, int]]) -> WorkOrderReceived:
    return WorkOrderReceived.model_validate(
        {
            "work_order_id": work_order_id,
            "tenant": "acme",
            "source_platform": "fieldhub",
            "received_at": T0,
            "external_id": f"fh-{work_order_id}",
            "site": {
                "site_id": "site-berlin",
                "name": "Berlin office",
                "address": {
                    "line1": "Hauptstrasse 1",
                    "city": "Berlin",
                    "postal_code": "10115",
                    "country": "DE",
                },
                "timezone": "Europe/Berlin",
            },
            "equipment": {"equipment_id": "eq-1", "equipment_class": "hvac"},
            "category": Category.BREAKDOWN,
            "priority": Priority.HIGH,
            "description": "Unit does not cool",
            "requester": {"name": "Facility desk", "email": "desk@acme.example", "locale": "de"},
            "required_parts": [{"part_number": p, "quantity": q} for p, q in parts],
        }
    )


def lifecycle_facts(work_order_id: str, state: WorkOrderState) -> dict[str, object]:
    return {
        "work_order_id": work_order_id,
        "external_id": f"fh-{work_order_id}",
        "source_platform": "fieldhub",
        "state": state,
        "previous_state": WorkOrderState.ON_SITE,
        "occurred_at": T0 + timedelta(hours=3),
        "actor": Actor(kind=ActorKind.CONTRACTOR, id="ctr-1"),
        "via": "grpc",
        "version": 7,
        "contractor_id": "ctr-1",
    }


def cancelled(work_order_id: str, reason: str | None = "customer fixed it") -> WorkOrderCancelled:
    return WorkOrderCancelled.model_validate(
        {**lifecycle_facts(work_order_id, WorkOrderState.CANCELLED), "reason": reason}
    )


def completed(work_order_id: str, used: Sequence[tuple[str, int]]) -> WorkOrderWorkCompleted:
    return WorkOrderWorkCompleted.model_validate(
        {
            **lifecycle_facts(work_order_id, WorkOrderState.WORK_COMPLETED),
            "completion": CompletionReport(
                resolution_code="replaced_part",
                work_summary="Replaced the worn parts",
                labour_minutes=90,
                parts_used=[PartUsed(part_number=p, quantity=q) for p, q in used],
            ),
            "verify_by": T0 + timedelta(days=3),
        }
    )


Lifecycle = TypeVar("Lifecycle", WorkOrderReceived, WorkOrderCancelled, WorkOrderWorkCompleted)


def memory_event(payload: Lifecycle, tenant: str = "acme") -> Event[Lifecycle]:
    envelope = EventEnvelope.new(
        payload, source="orders", subject=payload.work_order_id, tenant=tenant
    )
    return Event(envelope, payload)


async def memory_world(
    lines: Sequence[tuple[str, str, int]],
) -> tuple[MemoryStore, MemoryStock, PartsReservations, PartsSettlements]:
    store = MemoryStore(Service.PARTS)
    stock, log = MemoryStock(store), MemoryReservationLog(store)
    count = StockCountFile.model_validate(
        {
            "warehouses": [
                {"warehouse_id": "wh-berlin", "name": "Berlin", "country": "DE"},
                {"warehouse_id": "wh-munich", "name": "Munich", "country": "DE"},
            ],
            "stock": [{"warehouse_id": w, "part_number": p, "quantity": q} for w, p, q in lines],
        }
    )
    await import_stock_count(store, stock, count)
    return (
        store,
        stock,
        PartsReservations(store, stock, log),
        PartsSettlements(store, stock, log, clock=lambda: T0 + timedelta(hours=4)),
    )


def level_of(stock: MemoryStock, warehouse_id: str, part: str) -> tuple[int, int, int]:
    level = stock.level(warehouse_id, part)
    assert level is not None
    return (level.on_hand, level.reserved, level.available)


async def test_in_memory_a_cancellation_releases_once_and_nothing_after_it_moves_stock() -> None:
    store, stock, reservations, settlements = await memory_world(
        [("wh-berlin", "FLT-HEPA-24", 3), ("wh-munich", "FLT-HEPA-24", 4)]
    )
    assert await reservations.work_order_received(
        memory_event(memory_order("wo-1", [("FLT-HEPA-24", 5)]))
    )
    assert level_of(stock, "wh-munich", "FLT-HEPA-24") == (4, 4, 0)
    event = memory_event(cancelled("wo-1", reason=None))

    outcome = await settlements.work_order_cancelled(event)

    assert outcome is not None
    assert isinstance(outcome.event, PartsReleased)
    assert outcome.event.reason == CANCELLED_WITHOUT_REASON
    assert outcome.event.released_at == T0 + timedelta(hours=4)
    assert sorted((r.warehouse_id, r.quantity) for r in outcome.event.released) == [
        ("wh-berlin", 1),
        ("wh-munich", 4),
    ]
    assert level_of(stock, "wh-berlin", "FLT-HEPA-24") == (3, 0, 3)
    assert level_of(stock, "wh-munich", "FLT-HEPA-24") == (4, 0, 4)
    assert [e.topic for e in store.outbox] == [Topic.PARTS_EVENTS] * 2
    before = copy.deepcopy(store.state.collection(STOCK))

    assert await settlements.work_order_cancelled(event) is None, "redelivered"
    assert await settlements.work_order_cancelled(memory_event(cancelled("wo-1"))) is None
    assert (
        await settlements.work_order_completed(
            memory_event(completed("wo-1", [("FLT-HEPA-24", 2)]))
        )
        is None
    ), "a completion after the cancellation finds nothing active"
    assert store.state.collection(STOCK) == before
    assert len(store.outbox) == 2
    assert await settlements.work_order_cancelled(memory_event(cancelled("wo-none"))) is None


async def test_in_memory_a_completion_consumes_what_was_used_and_releases_the_rest() -> None:
    store, stock, reservations, settlements = await memory_world(
        [
            ("wh-berlin", "FLT-HEPA-24", 10),
            ("wh-berlin", "BLT-V-A42", 2),
            ("wh-munich", "GSK-FRIDGE-180", 3),
        ]
    )
    assert await reservations.work_order_received(
        memory_event(memory_order("wo-2", [("FLT-HEPA-24", 4), ("BLT-V-A42", 1)]))
    )
    event = memory_event(
        completed("wo-2", [("FLT-HEPA-24", 3), ("GSK-FRIDGE-180", 2), ("THERM-DIGI-01", 1)])
    )

    outcome = await settlements.work_order_completed(event)

    assert outcome is not None
    assert isinstance(outcome.event, PartsConsumed)
    assert outcome.event.consumed == [
        PartReservation(part_number="FLT-HEPA-24", warehouse_id="wh-berlin", quantity=3),
        PartReservation(part_number="GSK-FRIDGE-180", warehouse_id="wh-munich", quantity=2),
    ]
    assert sorted((r.part_number, r.quantity) for r in outcome.event.released) == [
        ("BLT-V-A42", 1),
        ("FLT-HEPA-24", 1),
    ]
    assert outcome.ignored == (PartDemand("THERM-DIGI-01", 1),), "not in stock anywhere"
    assert level_of(stock, "wh-berlin", "FLT-HEPA-24") == (7, 0, 7)
    assert level_of(stock, "wh-berlin", "BLT-V-A42") == (2, 0, 2)
    assert level_of(stock, "wh-munich", "GSK-FRIDGE-180") == (1, 0, 1)
    before = copy.deepcopy(store.state.collection(STOCK))

    assert await settlements.work_order_completed(event) is None, "redelivered"
    assert (
        await settlements.work_order_completed(
            memory_event(completed("wo-2", [("GSK-FRIDGE-180", 1)]))
        )
        is None
    ), "a second completion (reopened order) consumes nothing more"
    assert await settlements.work_order_cancelled(memory_event(cancelled("wo-2"))) is None
    assert store.state.collection(STOCK) == before
    assert [type(e.payload) for e in store.outbox] == [PartsReserved, PartsConsumed]
