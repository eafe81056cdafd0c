"""Parts domain: stock arithmetic and where a work order's parts are reserved from."""

from __future__ import annotations

import random
from collections.abc import Sequence
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from fixloop_parts.app.reserve_parts import WIRE_QUANTITY_LIMIT, decision_event
from fixloop_parts.app.stock_count import StockCountFile, duplicate_problems
from fixloop_parts.domain import (
    CountBelowReserved,
    InsufficientStock,
    PartDemand,
    SourceStock,
    StockLevel,
    StockRuleViolation,
    choose_sources,
    plan_reservation,
    split_quantity,
    total_demand,
)
from fixloop_shared.contracts import PartsBackordered, PartsReserved

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
