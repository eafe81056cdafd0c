"""The answers given through signed links, in MongoDB (``link_answers``) or in memory.

One document per question answered: ``_id`` is ``{work_order_id}:{purpose}:{round}`` and a unique
index on ``(work_order_id, purpose, round)`` says the same, so a second answer to the same
question is refused by the store itself, whichever pod takes it.
"""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from fixloop_notifications.app.feedback import AlreadyAnswered, AnswerPurpose, LinkAnswer
from fixloop_shared.kernel import UnitOfWork
from fixloop_shared.memory import MemoryStore, MemoryUnitOfWork
from fixloop_shared.store import Document, Store, database_of, equals

LINK_ANSWERS = "link_answers"


def answer_id(work_order_id: str, purpose: AnswerPurpose, round_: str) -> str:
    return f"{work_order_id}:{purpose.value}:{round_}"


def answer_to_document(answer: LinkAnswer) -> Document:
    return {
        "_id": answer_id(answer.work_order_id, answer.purpose, answer.round),
        "tenant": answer.tenant,
        "work_order_id": answer.work_order_id,
        "purpose": answer.purpose.value,
        "round": answer.round,
        "address": answer.address,
        "answered_at": answer.answered_at,
        "answer": dict(answer.answer),
    }


async def create_link_answer_indexes(store: Store) -> None:
    """The ``link_answers`` collection's indexes (idempotent; run at start-up)."""
    await store.ensure_indexes(
        {
            LINK_ANSWERS: [
                IndexModel(
                    [("work_order_id", ASCENDING), ("purpose", ASCENDING), ("round", ASCENDING)],
                    unique=True,
                    name="one_answer_per_question",
                )
            ]
        }
    )


def _already(answer: LinkAnswer) -> AlreadyAnswered:
    return AlreadyAnswered(
        f"work order {answer.work_order_id} has its {answer.purpose.value} answer already"
    )


class MongoLinkAnswers:
    """:class:`~fixloop_notifications.app.feedback.LinkAnswerBook` in the service's store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def is_answered(self, work_order_id: str, purpose: AnswerPurpose, round_: str) -> bool:
        found = await self._store.db[LINK_ANSWERS].find_one(
            equals({"_id": answer_id(work_order_id, purpose, round_)}), projection={"_id": True}
        )
        return found is not None

    async def record(self, uow: UnitOfWork, answer: LinkAnswer) -> None:
        try:
            await database_of(uow)[LINK_ANSWERS].insert_one(
                answer_to_document(answer), session=uow.session
            )
        except DuplicateKeyError as exc:
            raise _already(answer) from exc


class MemoryLinkAnswers:
    """:class:`~fixloop_notifications.app.feedback.LinkAnswerBook` in a
    :class:`~fixloop_shared.memory.MemoryStore` (for tests without MongoDB)."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def is_answered(self, work_order_id: str, purpose: AnswerPurpose, round_: str) -> bool:
        answers = self._store.state.collection(LINK_ANSWERS)
        return answer_id(work_order_id, purpose, round_) in answers

    async def record(self, uow: UnitOfWork, answer: LinkAnswer) -> None:
        if not isinstance(uow, MemoryUnitOfWork):
            msg = f"a memory repository was given {type(uow).__name__}"
            raise TypeError(msg)
        answers = uow.session.collection(LINK_ANSWERS)
        document = answer_to_document(answer)
        if document["_id"] in answers:
            raise _already(answer)
        answers[document["_id"]] = document


__all__ = [
    "LINK_ANSWERS",
    "MemoryLinkAnswers",
    "MongoLinkAnswers",
    "answer_to_document",
    "create_link_answer_indexes",
]
