"""One error taxonomy for every service, mapped once to dead-letter reasons and gRPC codes.

Three families, and what the platform does with each:

- **Domain errors** (:class:`DomainError`): a request or event that the domain refuses —
  an illegal transition, something not found, a conflict, a forbidden act, invalid input. A gRPC
  call answers with the error's canonical status code; an event is dead-lettered with the error's
  reason (it will never succeed as it is).
- **Poison** (:class:`PoisonMessage`): a record that can never be processed — undecodable, against
  the schema, of an unknown type, from a source not allowed to send it, too large. Dead-lettered
  with its reason; the consumer moves on.
- **Transient** (:func:`is_transient`): a store or broker that cannot be reached, a write conflict,
  a timeout. Retried with backoff, never dead-lettered. A failure of one record (too large,
  unserializable) is never transient, even when the broker client reports it.

Anything else is a bug: retried a few times, then dead-lettered as ``handler-error`` so one bad
record cannot block its partition.

The canonical status codes are names (``"NOT_FOUND"``), so this module stays free of grpc; the
gRPC edge turns a name into ``grpc.StatusCode`` in one place
(:func:`fixloop_shared.grpc_edge.errors.status_for`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from aiokafka.errors import (
    CommitFailedError,
    KafkaError,
    KafkaTimeoutError,
    RebalanceInProgressError,
)
from pymongo.errors import ConnectionFailure, PyMongoError

# -- domain errors ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: its path (``site.postal_code``) and what is wrong with it."""

    field: str
    description: str


class DomainError(Exception):
    """The domain refuses a request or an event; ``status`` and ``reason`` say how to report it.

    ``message`` is for the logs and the dead-letter headers. A caller of the gRPC edge is told
    ``caller_message`` instead when it is set (by the subclass or per error): set it wherever
    ``message`` names something the caller may not see.
    """

    status: ClassVar[str] = "FAILED_PRECONDITION"
    reason: ClassVar[str] = "refused"
    caller_message: str | None = None

    def __init__(self, message: str, *, caller_message: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if caller_message is not None:
            self.caller_message = caller_message

    @property
    def told(self) -> str:
        """What the caller is told: ``caller_message``, else ``message``."""
        return self.caller_message if self.caller_message is not None else self.message


class IllegalTransition(DomainError):  # noqa: N818 - the domain's word
    """The aggregate is not in a state that allows this step."""

    status = "FAILED_PRECONDITION"
    reason = "illegal-transition"


class NotFound(DomainError):  # noqa: N818
    """Nothing of that id exists for this tenant (another tenant's looks exactly the same).

    The caller is told a fixed message (never the id it asked for) and ``resource_type``, the
    kind of thing it did not find (e.g. ``fixloop.v1.WorkOrder``), when known.
    """

    status = "NOT_FOUND"
    reason = "not-found"
    caller_message: str | None = "not found"
    resource_type: str | None = None

    def __init__(
        self,
        message: str,
        *,
        resource_type: str | None = None,
        caller_message: str | None = None,
    ) -> None:
        super().__init__(message, caller_message=caller_message)
        if resource_type is not None:
            self.resource_type = resource_type


class Conflict(DomainError):  # noqa: N818
    """The request contradicts what is already recorded (for example the same id, other facts)."""

    status = "ABORTED"
    reason = "conflict"


class Forbidden(DomainError):  # noqa: N818
    """The caller is known but may not do this."""

    status = "PERMISSION_DENIED"
    reason = "forbidden"


class InvalidInput(DomainError):  # noqa: N818
    """The request is malformed; ``violations`` name each bad field."""

    status = "INVALID_ARGUMENT"
    reason = "invalid-input"

    def __init__(
        self,
        message: str,
        violations: Sequence[FieldViolation] = (),
        *,
        caller_message: str | None = None,
    ) -> None:
        super().__init__(message, caller_message=caller_message)
        self.violations = tuple(violations)


# -- poison records -----------------------------------------------------------------------------


class PoisonMessage(Exception):  # noqa: N818 - the domain word for a message that can never succeed
    """A record that can never be processed; it goes to the dead-letter topic with ``reason``."""

    reason: ClassVar[str] = "poison"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UndecodableMessage(PoisonMessage):
    reason = "undecodable"


class SchemaViolation(PoisonMessage):
    reason = "schema-violation"


class UnknownEventType(PoisonMessage):
    reason = "unknown-type"


class UnauthorizedSource(PoisonMessage):
    """The record's tenant or source is not one its sender may speak for."""

    reason = "unauthorized"


class MessageTooLarge(PoisonMessage):
    reason = "too-large"


# -- transient failures -------------------------------------------------------------------------


class TransientError(Exception):
    """A failure of ours that goes away by itself (contention, a dependency catching up)."""


def is_transient(exc: BaseException) -> bool:
    """True for failures that go away by themselves: store or broker unreachable, write conflict.

    Kafka errors count only when the client marks them retriable: a record the broker refuses
    (too large, corrupt) fails the same way every time.
    """
    if isinstance(exc, TransientError | ConnectionFailure | TimeoutError | ConnectionError):
        return True
    if isinstance(exc, KafkaError):
        return bool(getattr(exc, "retriable", False)) or _is_connection_level(exc)
    if isinstance(exc, PyMongoError):
        if exc.has_error_label("TransientTransactionError") or exc.has_error_label(
            "RetryableWriteError"
        ):
            return True
        # The embedded SQLite-backed store reports overlapping transactions this way; a retry
        # is correct (the idempotent consumer absorbs a commit that did go through).
        return "savepoint" in str(exc)
    return False


def _is_connection_level(exc: KafkaError) -> bool:
    # aiokafka marks these non-retriable, yet they are about reaching the broker or the group,
    # never about the record: a produce that timed out, a commit lost to a rebalance.
    return isinstance(exc, KafkaTimeoutError | RebalanceInProgressError | CommitFailedError)


def dead_letter_reason(exc: BaseException) -> str:
    """The reason a record is dead-lettered for ``exc`` (the one mapping used by the bus)."""
    if isinstance(exc, PoisonMessage | DomainError):
        return exc.reason
    return "handler-error"


def is_record_level(exc: BaseException) -> bool:
    """True when ``exc`` is about this record and will fail the same way on every retry."""
    return isinstance(exc, PoisonMessage | DomainError)
