"""The contractor registry and the dispatch ledger in memory, on
:class:`fixloop_shared.memory.MemoryStore`.

Same collections and promises as the MongoDB adapters: ``contractors`` holds each profile with its
load (open offers and jobs), which an import never resets; ``offers`` holds one decision per
dispatch round of a work order (an offer and what became of it, or ``unfilled``), keyed by its id,
and ``offers_by_work_order`` the ids of each order's decisions by round. Dispatch and the
lifecycle read and write the unit of work's copy, so a decision or an offer's change, its load
change and its events commit or roll back together.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fixloop_contractors.adapters.mongo import (
    CONTRACTORS,
    DISPATCH_DEADLINES,
    EXPLANATIONS,
    MAX_CANDIDATES,
    OFFERS,
    UNFILLED,
    history_from_decisions,
    offer_fields,
    offer_from_document,
)
from fixloop_contractors.app.explain import DispatchExplanation
from fixloop_contractors.app.ports import DispatchHistory, UpsertCounts
from fixloop_contractors.domain.deadlines import DispatchDeadline
from fixloop_contractors.domain.dispatch import Candidate, DispatchRequest
from fixloop_contractors.domain.lifecycle import OfferChange
from fixloop_contractors.domain.model import Contractor
from fixloop_contractors.domain.offers import Offer
from fixloop_shared.contracts import EventPayload
from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.memory import Documents, MemoryStore, MemoryUnitOfWork
from fixloop_shared.vocabulary import Priority

OFFERS_BY_WORK_ORDER = "offers_by_work_order"
"""{work order id: {"rounds": {(dispatch round, fan slot): decision id}}}: what MongoDB's unique
index is for."""


def _site(request: DispatchRequest) -> dict[str, str]:
    return {
        "tenant": request.tenant,
        "equipment_class": request.equipment_class,
        "country": request.country,
        "postal_code": request.postal_code,
    }


def _candidate(doc: dict[str, Any]) -> Candidate:
    score = doc.get("scorecard")
    return Candidate(
        contractor=doc["contractor"],
        open_offers=int(doc["open_offers"]),
        open_jobs=int(doc.get("open_jobs", 0)),
        scorecard=None if score is None else float(score),
    )


class MemoryContractorRegistry:
    """The :class:`~fixloop_contractors.app.ports.ContractorRegistry` in memory."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def upsert(self, contractors: Sequence[Contractor]) -> UpsertCounts:
        created = updated = unchanged = 0
        async with self._store.transaction() as uow:
            profiles = uow.session.collection(CONTRACTORS)
            for contractor in contractors:
                doc = profiles.get(contractor.contractor_id)
                if doc is None:
                    profiles[contractor.contractor_id] = {
                        "contractor": contractor,
                        "open_offers": 0,
                        "open_jobs": 0,
                    }
                    created += 1
                elif doc["contractor"] == contractor:
                    unchanged += 1
                else:
                    doc["contractor"] = contractor
                    updated += 1
        return UpsertCounts(created=created, updated=updated, unchanged=unchanged)

    async def list_contractors(self, *, tenant: str | None = None) -> list[Candidate]:
        profiles = self._store.state.collection(CONTRACTORS)
        return [
            _candidate(profiles[contractor_id])
            for contractor_id in sorted(profiles)
            if tenant is None or tenant in profiles[contractor_id]["contractor"].tenants
        ]


class MemoryDispatchTransaction:
    """The :class:`~fixloop_contractors.app.ports.DispatchTransaction` on a memory unit of work."""

    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow

    @property
    def _contractors(self) -> Documents:
        return self._uow.session.collection(CONTRACTORS)

    @property
    def _offers(self) -> Documents:
        return self._uow.session.collection(OFFERS)

    @property
    def _by_work_order(self) -> Documents:
        return self._uow.session.collection(OFFERS_BY_WORK_ORDER)

    async def decision_exists(self, work_order_id: str) -> bool:
        return work_order_id in self._by_work_order

    async def candidates(
        self,
        request: DispatchRequest,
        *,
        at: datetime,  # noqa: ARG002 - every profile is looked at here; the domain judges dates
    ) -> list[Candidate]:
        found: list[Candidate] = []
        for contractor_id in sorted(self._contractors):
            doc = self._contractors[contractor_id]
            contractor: Contractor = doc["contractor"]
            if (
                request.tenant in contractor.tenants
                and request.equipment_class in contractor.skills
                and any(region.country == request.country for region in contractor.regions)
            ):
                found.append(_candidate(doc))
                if len(found) >= MAX_CANDIDATES:
                    break
        return found

    async def history(self, work_order_id: str, *, tenant: str | None) -> DispatchHistory | None:
        entry = self._by_work_order.get(work_order_id)
        if entry is None:
            return None
        docs = [self._offers[decision_id] for decision_id in entry["rounds"].values()]
        return history_from_decisions([d for d in docs if tenant in {None, d["tenant"]}])

    async def contractor(self, contractor_id: str) -> Candidate | None:
        doc = self._contractors.get(contractor_id)
        return None if doc is None else _candidate(doc)

    async def dequeue(self, work_order_id: str) -> None:
        entry = self._by_work_order.get(work_order_id) or {"rounds": {}}
        for decision_id in entry["rounds"].values():
            self._offers[decision_id]["queued"] = False

    async def save_offer(
        self,
        offer: Offer,
        request: DispatchRequest,
        priority: Priority,
        *,
        correlationid: str,  # noqa: ARG002 - no expiry timer runs in memory
    ) -> None:
        self._decide(
            {
                "_id": offer.offer_id,
                **offer_fields(offer),
                "site": _site(request),
                "priority": priority.value,
            }
        )
        contractor = self._contractors.get(offer.contractor_id)
        if contractor is None:
            msg = f"contractor {offer.contractor_id} vanished while being offered an order"
            raise LookupError(msg)
        contractor["open_offers"] += 1

    async def save_unfilled(
        self,
        *,
        decision_id: str,
        request: DispatchRequest,
        reason: str,
        considered_total: int,
        decided_at: datetime,
        dispatch_round: int,
        priority: Priority,
    ) -> None:
        self._decide(
            {
                "_id": decision_id,
                "work_order_id": request.work_order_id,
                "tenant": request.tenant,
                "contractor_id": None,
                "dispatch_round": dispatch_round,
                "fan_slot": 0,
                "status": UNFILLED,
                "decided_at": decided_at,
                "reason": reason,
                "considered_total": considered_total,
                "site": _site(request),
                "priority": priority.value,
                "queued": True,
            },
        )

    async def save_explanation(self, explanation: DispatchExplanation) -> None:
        self._uow.session.collection(EXPLANATIONS)[explanation.decision_id] = {
            "explanation": explanation
        }

    async def arm_deadline(self, deadline: DispatchDeadline, *, correlationid: str) -> None:
        # Kept as a record (no due-work scheduler runs in memory).
        self._uow.session.collection(DISPATCH_DEADLINES)[deadline.work_order_id] = {
            "deadline": deadline,
            "correlationid": correlationid,
            "escalated": False,
        }

    async def escalate_deadline(self, work_order_id: str, *, at: datetime, reason: str) -> None:
        item = self._uow.session.collection(DISPATCH_DEADLINES).get(work_order_id)
        if item is not None:
            item.update(escalated=True, escalated_at=at, reason=reason)

    async def forget_deadline(self, work_order_id: str) -> None:
        self._uow.session.collection(DISPATCH_DEADLINES).pop(work_order_id, None)

    def _decide(self, doc: dict[str, Any]) -> None:
        work_order_id, dispatch_round = doc["work_order_id"], doc["dispatch_round"]
        slot = (dispatch_round, int(doc.get("fan_slot") or 0))
        rounds = self._by_work_order.setdefault(work_order_id, {"rounds": {}})["rounds"]
        if slot in rounds or doc["_id"] in self._offers:
            msg = f"work order {work_order_id} was decided already (round {dispatch_round})"
            raise ValueError(msg)
        rounds[slot] = doc["_id"]
        self._offers[doc["_id"]] = doc

    async def offers_of(self, work_order_id: str, *, tenant: str) -> list[Offer]:
        entry = self._by_work_order.get(work_order_id)
        if entry is None:
            return []
        docs = [self._offers[decision_id] for decision_id in entry["rounds"].values()]
        return [
            offer_from_document(doc)
            for doc in docs
            if doc["tenant"] == tenant and doc["status"] != UNFILLED
        ]

    async def save_change(self, change: OfferChange) -> bool:
        before, after = change.before, change.after
        doc = self._offers.get(before.offer_id)
        if doc is None or offer_from_document(doc) != before:
            return False
        doc.update(offer_fields(after))
        load = change.load
        contractor = self._contractors.get(change.contractor_id)
        if contractor is not None:
            contractor["open_offers"] += load.open_offers
            contractor["open_jobs"] = contractor.get("open_jobs", 0) + load.open_jobs
        return True

    def emit(
        self, payload: EventPayload, *, topic: str, key: str, tenant: str, correlationid: str
    ) -> None:
        self._uow.emit(
            payload, topic=topic, key=key, tenant=tenant, correlationid=correlationid, subject=key
        )


class MemoryDispatchLedger:
    """The :class:`~fixloop_contractors.app.ports.DispatchLedger` in memory."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def within(self, uow: UnitOfWork) -> MemoryDispatchTransaction:
        if not isinstance(uow, MemoryUnitOfWork):
            msg = f"the in-memory ledger was given {type(uow).__name__}"
            raise TypeError(msg)
        return MemoryDispatchTransaction(uow)

    async def explanations(
        self, work_order_id: str, *, tenant: str | None = None
    ) -> list[DispatchExplanation]:
        """Every committed decision's explanation for the work order (of ``tenant`` only, if
        given), by round."""
        kept = self._store.state.collection(EXPLANATIONS).values()
        found: list[DispatchExplanation] = [
            doc["explanation"]
            for doc in kept
            if doc["explanation"].work_order_id == work_order_id
            and tenant in {None, doc["explanation"].tenant}
        ]
        return sorted(found, key=lambda e: e.dispatch_round)

    async def offers(self, work_order_id: str, *, tenant: str | None = None) -> list[Offer]:
        """Every committed offer of the work order (of ``tenant`` only, if given), by round."""
        entry = self._store.state.collection(OFFERS_BY_WORK_ORDER).get(work_order_id)
        if entry is None:
            return []
        offers = self._store.state.collection(OFFERS)
        docs = [offers[decision_id] for _, decision_id in sorted(entry["rounds"].items())]
        return [
            offer_from_document(doc)
            for doc in docs
            if doc["status"] != UNFILLED and tenant in {None, doc["tenant"]}
        ]

    def decision(self, work_order_id: str, dispatch_round: int = 1) -> dict[str, Any] | None:
        """The committed decision on a work order in a round (its offer, or why it is unfilled)."""
        entry = self._store.state.collection(OFFERS_BY_WORK_ORDER).get(work_order_id)
        decision_id = None if entry is None else entry["rounds"].get((dispatch_round, 0))
        return None if decision_id is None else self._store.state.collection(OFFERS)[decision_id]

    def offer(self, offer_id: str) -> dict[str, Any] | None:
        """An offer as committed."""
        return self._store.state.collection(OFFERS).get(offer_id)

    def open_offers(self, contractor_id: str) -> int:
        """A contractor's committed load: its open offers."""
        doc = self._store.state.collection(CONTRACTORS).get(contractor_id)
        return 0 if doc is None else int(doc["open_offers"])

    def open_jobs(self, contractor_id: str) -> int:
        """A contractor's committed load: its open jobs."""
        doc = self._store.state.collection(CONTRACTORS).get(contractor_id)
        return 0 if doc is None else int(doc.get("open_jobs", 0))


__all__ = [
    "MemoryContractorRegistry",
    "MemoryDispatchLedger",
    "MemoryDispatchTransaction",
]
