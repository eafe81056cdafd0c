"""What the requester answers through the signed links of their notices.

- **Survey** (closed order): a rating 1-5 and an optional comment, once per order. Recorded, and
  ``fixloop.feedback.submitted.v1`` emitted, in one unit of work.
- **Verify / reject** (completed work): the requester's verdict, once per completion (a
  rejected order that is completed again gets new links and may be answered again). Recorded,
  and ``fixloop.feedback.completion_answered.v1`` emitted, in one unit of work; orders takes the
  verify or reject step.
- **Unsubscribe**: the opt-out of a kind of notice (or of every kind) on a channel, recorded in
  the recipient's preferences (idempotent; no event).

Events go through the outbox on ``fixloop.notifications.events.v1``, keyed by the work order id.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from fixloop_notifications.domain.links import LinkClaims
from fixloop_notifications.domain.preferences import RecipientPreferences, SmsConsent
from fixloop_notifications.domain.quiet_hours import QuietHours
from fixloop_shared.contracts import CompletionAnswered, CompletionVerdict, FeedbackSubmitted
from fixloop_shared.errors import Conflict
from fixloop_shared.kernel import UnitOfWork, UnitsOfWork, in_unit_of_work
from fixloop_shared.topics import Topic
from fixloop_shared.vocabulary import Channel

log = logging.getLogger(__name__)

MAX_COMMENT_LENGTH = 2000
MAX_REASON_LENGTH = 500


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AnswerPurpose(StrEnum):
    """What a recorded answer answers (verify and reject links answer the same question)."""

    SURVEY = "survey"
    COMPLETION = "completion"


class AlreadyAnswered(Conflict):
    """The link's question was answered already."""

    reason = "already-answered"


@dataclass(frozen=True, slots=True)
class LinkAnswer:
    """One answer given through a link: which question (order, purpose, round), by whom, what.

    ``round`` tells apart the same question asked again: "" for the survey (once per order), the
    verify-by time for a completion (each completion of the order asks anew).
    """

    tenant: str
    work_order_id: str
    purpose: AnswerPurpose
    round: str
    address: str
    answered_at: datetime
    answer: dict[str, str | int | None] = field(default_factory=dict)


class LinkAnswerBook(Protocol):
    """The answers given through links, one per question (a unique key refuses a second)."""

    async def is_answered(self, work_order_id: str, purpose: AnswerPurpose, round_: str) -> bool:
        """Whether the question is answered (committed state; a shortcut, not the guarantee)."""

    async def record(self, uow: UnitOfWork, answer: LinkAnswer) -> None:
        """Record ``answer`` within ``uow``; :class:`AlreadyAnswered` (now or when ``uow``
        commits) if the question was answered already."""


class PreferenceBook(Protocol):
    """Recipients' preferences, per (tenant, address)."""

    async def get(self, tenant: str, address: str) -> RecipientPreferences | None:
        """The recipient's recorded preferences (None: they recorded none)."""

    async def opt_out(
        self, tenant: str, address: str, kind: str | None, channel: Channel, *, at: datetime
    ) -> None:
        """Stop ``kind`` (None: every kind) on ``channel`` for the recipient (idempotent)."""

    async def opt_in(self, tenant: str, address: str, kind: str | None, channel: Channel) -> None:
        """Undo an opt-out (idempotent)."""

    async def record_sms_consent(self, tenant: str, address: str, consent: SmsConsent) -> None:
        """Record the recipient's latest word on SMS."""

    async def set_quiet_hours(
        self, tenant: str, address: str, quiet_hours: QuietHours | None
    ) -> None:
        """Set the recipient's quiet hours (None: back to the default)."""


_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_LOCALE = re.compile(r"^[a-z]{2}(-[A-Z]{2})?$")


def _matching(pattern: re.Pattern[str], value: str | None) -> str | None:
    """``value`` if it fits the event's field, else None (an optional field left out)."""
    return value if value is not None and pattern.match(value) else None


def completion_round(claims: LinkClaims) -> str:
    """The round of a verify/reject link: its expiry (the completion's verify-by time)."""
    expires = claims.expires_at
    return "" if expires is None else expires.astimezone(UTC).isoformat()


def _work_order_of(claims: LinkClaims) -> str:
    if not claims.work_order_id:
        msg = "the link names no work order"
        raise ValueError(msg)
    return claims.work_order_id


class LinkAnswers:
    """The use cases behind the links: answer the survey, verify or reject, unsubscribe."""

    def __init__(
        self,
        *,
        units: UnitsOfWork,
        answers: LinkAnswerBook,
        preferences: PreferenceBook,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._units = units
        self._answers = answers
        self._preferences = preferences
        self._clock = clock

    def now(self) -> datetime:
        return self._clock()

    async def survey_answered_already(self, claims: LinkClaims) -> bool:
        return await self._answers.is_answered(_work_order_of(claims), AnswerPurpose.SURVEY, "")

    async def completion_answered_already(self, claims: LinkClaims) -> bool:
        return await self._answers.is_answered(
            _work_order_of(claims), AnswerPurpose.COMPLETION, completion_round(claims)
        )

    async def answer_survey(
        self, claims: LinkClaims, *, rating: int, comment: str | None
    ) -> FeedbackSubmitted:
        """Record the survey's answer and emit ``FeedbackSubmitted``; :class:`AlreadyAnswered`
        if it was answered before. ``rating`` 1-5, ``comment`` at most 2000 characters."""
        work_order_id = _work_order_of(claims)
        text = (comment or "").strip() or None
        if text is not None and len(text) > MAX_COMMENT_LENGTH:
            msg = f"comment longer than {MAX_COMMENT_LENGTH} characters"
            raise ValueError(msg)
        at = self._clock()
        feedback = FeedbackSubmitted(
            work_order_id=work_order_id,
            rating=rating,
            submitted_at=at,
            comment=text,
            contractor_id=_matching(_IDENTIFIER, claims.contractor_id),
            locale=_matching(_LOCALE, claims.locale),
        )
        answer = LinkAnswer(
            tenant=claims.tenant,
            work_order_id=work_order_id,
            purpose=AnswerPurpose.SURVEY,
            round="",
            address=claims.address,
            answered_at=at,
            answer={"rating": rating, "comment": text, "locale": claims.locale},
        )
        await self._record(answer, feedback)
        log.info("survey answered", extra={"work_order_id": work_order_id, "rating": rating})
        return feedback

    async def answer_completion(
        self, claims: LinkClaims, *, verdict: CompletionVerdict, reason: str | None = None
    ) -> CompletionAnswered:
        """Record the requester's verdict on completed work and emit ``CompletionAnswered``;
        :class:`AlreadyAnswered` if this completion was answered before."""
        work_order_id = _work_order_of(claims)
        text = (reason or "").strip() or None
        if text is not None and len(text) > MAX_REASON_LENGTH:
            msg = f"reason longer than {MAX_REASON_LENGTH} characters"
            raise ValueError(msg)
        if verdict is CompletionVerdict.VERIFIED:
            text = None
        at = self._clock()
        answered = CompletionAnswered(
            work_order_id=work_order_id, verdict=verdict, reason=text, answered_at=at
        )
        answer = LinkAnswer(
            tenant=claims.tenant,
            work_order_id=work_order_id,
            purpose=AnswerPurpose.COMPLETION,
            round=completion_round(claims),
            address=claims.address,
            answered_at=at,
            answer={"verdict": verdict.value, "reason": text},
        )
        await self._record(answer, answered)
        log.info(
            "completed work answered",
            extra={"work_order_id": work_order_id, "verdict": verdict.value},
        )
        return answered

    async def _record(
        self, answer: LinkAnswer, payload: FeedbackSubmitted | CompletionAnswered
    ) -> None:
        async def work(uow: UnitOfWork) -> None:
            await self._answers.record(uow, answer)
            uow.emit(
                payload,
                topic=Topic.NOTIFICATIONS_EVENTS,
                key=answer.work_order_id,
                tenant=answer.tenant,
            )

        await in_unit_of_work(self._units, work)

    async def unsubscribe(self, claims: LinkClaims) -> None:
        """Record the opt-out an unsubscribe link stands for (idempotent)."""
        if claims.channel is None:
            msg = "the link names no channel"
            raise ValueError(msg)
        await self._preferences.opt_out(
            claims.tenant, claims.address, claims.kind, claims.channel, at=self._clock()
        )
        log.info(
            "recipient unsubscribed",
            extra={"tenant": claims.tenant, "kind": claims.kind, "channel": claims.channel.value},
        )


__all__ = [
    "MAX_COMMENT_LENGTH",
    "MAX_REASON_LENGTH",
    "AlreadyAnswered",
    "AnswerPurpose",
    "LinkAnswer",
    "LinkAnswerBook",
    "LinkAnswers",
    "PreferenceBook",
    "completion_round",
]
