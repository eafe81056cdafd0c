"""gRPC errors: rich statuses, and the one mapping of the error taxonomy to status codes.

* :func:`status_for` is that mapping. A :class:`~fixloop_shared.errors.DomainError` becomes the
  canonical code its ``status`` names, with what it tells the caller (``told``: its
  ``caller_message`` when set) and ``google.rpc`` details: ``BadRequest`` field violations for
  :class:`~fixloop_shared.errors.InvalidInput`, ``ResourceInfo`` (the resource's type, never its
  id) for :class:`~fixloop_shared.errors.NotFound`.
* :func:`abort_for` ends a call with that status; :func:`error_hook` (applied to every call by
  the edge's interceptor) does it for any domain error a servicer raises, so servicers just
  raise, and turns any other exception into a bare ``INTERNAL`` instead of grpc's default
  ``UNKNOWN`` whose details carry the exception's text.
* ``abort_*`` helpers end a call with the statuses that are not domain errors (deadline,
  unavailable, internal), always with a fixed message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import NoReturn

import grpc
from google.protobuf import duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from fixloop_shared.errors import DomainError, FieldViolation, InvalidInput, NotFound
from fixloop_shared.grpc_edge._handlers import ErrorHook

logger = logging.getLogger(__name__)

INTERNAL_MESSAGE = "internal error"
DEADLINE_EXCEEDED_MESSAGE = "deadline exceeded"
UNAVAILABLE_MESSAGE = "service temporarily unavailable, retry later"
INVALID_ARGUMENT_MESSAGE = "the request has invalid fields"


# --------------------------------------------------------------------------- rich statuses


def rich_status(code: grpc.StatusCode, message: str, *details: Message) -> grpc.Status:
    """A ``grpc.Status`` carrying a ``google.rpc.Status`` with ``details`` in its trailers."""
    status = status_pb2.Status(code=code.value[0], message=message)
    for detail in details:
        status.details.add().Pack(detail)
    return rpc_status.to_status(status)


async def abort_with_details(
    context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str, *details: Message
) -> NoReturn:
    """End the call with ``code``, ``message`` and ``google.rpc`` ``details``."""
    await context.abort_with_status(rich_status(code, message, *details))
    raise AssertionError  # pragma: no cover - abort_with_status always raises


def retry_info(seconds: float) -> error_details_pb2.RetryInfo:
    """A ``RetryInfo`` telling the client to wait ``seconds`` before trying again."""
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(round(seconds * 1_000_000_000))
    return error_details_pb2.RetryInfo(retry_delay=delay)


# --------------------------------------------------------------------------- the one mapping


def status_code(exc: DomainError) -> grpc.StatusCode:
    """The canonical code a domain error's ``status`` names (``"NOT_FOUND"`` → ``NOT_FOUND``)."""
    try:
        return grpc.StatusCode[exc.status]
    except KeyError:
        msg = f"{type(exc).__qualname__}.status {exc.status!r} is not a gRPC status code"
        raise ValueError(msg) from None


def status_for(exc: DomainError) -> grpc.Status:
    """The status a call ends with when the domain refuses it with ``exc``."""
    details: list[Message] = []
    if isinstance(exc, InvalidInput) and exc.violations:
        details.append(bad_request(exc.violations))
    if isinstance(exc, NotFound) and exc.resource_type:
        details.append(error_details_pb2.ResourceInfo(resource_type=exc.resource_type))
    return rich_status(status_code(exc), exc.told, *details)


def bad_request(violations: tuple[FieldViolation, ...]) -> error_details_pb2.BadRequest:
    return error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in violations
        ]
    )


async def abort_for(context: grpc.aio.ServicerContext, exc: DomainError) -> NoReturn:
    """End the call with the status of ``exc`` (see :func:`status_for`)."""
    await context.abort_with_status(status_for(exc))
    raise AssertionError  # pragma: no cover - abort_with_status always raises


async def abort_invalid_argument(
    context: grpc.aio.ServicerContext,
    violations: Mapping[str, str],
    message: str = INVALID_ARGUMENT_MESSAGE,
) -> NoReturn:
    """INVALID_ARGUMENT with one ``BadRequest.FieldViolation`` per ``field -> description``."""
    await abort_for(
        context,
        InvalidInput(message, [FieldViolation(f, d) for f, d in violations.items()]),
    )


async def abort_not_found(
    context: grpc.aio.ServicerContext, *, resource_type: str, message: str
) -> NoReturn:
    """NOT_FOUND with a fixed message and a ``ResourceInfo`` naming the type only.

    The requested id is deliberately left out, so a resource that exists for someone else
    answers exactly like one that does not exist.
    """
    await abort_for(context, NotFound(message, resource_type=resource_type, caller_message=message))


# --------------------------------------------------------------------------- other statuses


async def abort_deadline_exceeded(context: grpc.aio.ServicerContext) -> NoReturn:
    await abort_with_details(context, grpc.StatusCode.DEADLINE_EXCEEDED, DEADLINE_EXCEEDED_MESSAGE)


async def abort_unavailable(
    context: grpc.aio.ServicerContext, *, retry_after_seconds: float = 1.0
) -> NoReturn:
    """UNAVAILABLE with a ``RetryInfo`` telling the client when to try again."""
    await abort_with_details(
        context,
        grpc.StatusCode.UNAVAILABLE,
        UNAVAILABLE_MESSAGE,
        retry_info(retry_after_seconds),
    )


async def abort_internal(context: grpc.aio.ServicerContext) -> NoReturn:
    await abort_with_details(context, grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)


# --------------------------------------------------------------------------- the calls' errors


def error_hook(method: str) -> ErrorHook:
    """What ends a call of ``method`` whose servicer raised: a
    :class:`~fixloop_shared.errors.DomainError` becomes its status (:func:`status_for`); anything
    else is logged with its traceback and becomes a bare INTERNAL (grpc's default, UNKNOWN, would
    put the exception's text in the details)."""

    async def end(exc: Exception, context: grpc.aio.ServicerContext) -> None:
        if isinstance(exc, DomainError):
            logger.info(
                "gRPC call refused",
                extra={"rpc": method, "status": exc.status, "reason": exc.reason},
            )
            await abort_for(context, exc)
        logger.error("unhandled error in gRPC call", exc_info=exc, extra={"rpc": method})
        await abort_internal(context)

    return end


__all__ = [
    "DEADLINE_EXCEEDED_MESSAGE",
    "INTERNAL_MESSAGE",
    "INVALID_ARGUMENT_MESSAGE",
    "UNAVAILABLE_MESSAGE",
    "abort_deadline_exceeded",
    "abort_for",
    "abort_internal",
    "abort_invalid_argument",
    "abort_not_found",
    "abort_unavailable",
    "abort_with_details",
    "bad_request",
    "error_hook",
    "retry_info",
    "rich_status",
    "status_code",
    "status_for",
]
