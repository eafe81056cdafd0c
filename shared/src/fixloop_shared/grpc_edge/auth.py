"""API-key authentication: every call is made by a :class:`Principal`, found by its key.

:class:`ApiKeyAuthInterceptor` authenticates each call by the API key in its metadata
(``x-api-key: <key>`` or ``authorization: Bearer <key>``): the key is hashed and looked up in a
:class:`~fixloop_shared.grpc_edge.principals.PrincipalDirectory` (only hashes are configured). The
principal is bound to the call; servicers read it with :func:`authenticated_principal`, or the
caller's tenant with :func:`authenticated_tenant` (partners and operators only; a contractor is
refused with PERMISSION_DENIED). Request messages carry no identity. Health checking and server
reflection need no key (Kubernetes' gRPC probes send none). With a
:class:`~fixloop_shared.grpc_edge.rate_limit.PrincipalRateLimit`, a principal's calls over the
limit end with RESOURCE_EXHAUSTED before their request is read.

Every authenticated call is logged once when it ends (``principal``, ``principal_kind``, ``rpc``,
``code``, ``duration_ms``); refused calls are logged when refused, each kind (reason, method,
principal) at most once per ``REFUSAL_LOG_SECONDS`` with the count held back. No key material is
logged.
"""

from __future__ import annotations

import contextvars
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, NoReturn

import grpc
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection as grpc_reflection

from fixloop_shared.errors import Forbidden
from fixloop_shared.grpc_edge._handlers import ErrorHook, around, ending_handler, wrap_behavior
from fixloop_shared.grpc_edge.errors import abort_for, abort_with_details, error_hook, rich_status
from fixloop_shared.grpc_edge.principals import Principal, PrincipalDirectory
from fixloop_shared.grpc_edge.rate_limit import PrincipalRateLimit, rate_limited_status
from fixloop_shared.log_throttle import ThrottledLog

logger = logging.getLogger(__name__)

API_KEY_METADATA_KEY = "x-api-key"
AUTHORIZATION_METADATA_KEY = "authorization"
UNAUTHENTICATED_MESSAGE = "missing or invalid API key"
PARTNERS_ONLY_MESSAGE = "this method is for requester-side partners"

HEALTH_SERVICE_NAME: str = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
REFLECTION_SERVICE_NAME: str = grpc_reflection.SERVICE_NAME

EXEMPT_METHOD_PREFIXES: tuple[str, ...] = (
    f"/{HEALTH_SERVICE_NAME}/",
    f"/{REFLECTION_SERVICE_NAME}/",
    "/grpc.reflection.v1.ServerReflection/",
)
"""Methods callable without an API key: health checking and server reflection."""

CALL_LOG_MESSAGE = "gRPC call"
REFUSED_LOG_MESSAGE = "gRPC call refused"

_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "fixloop_grpc_principal", default=None
)


async def abort_unauthenticated(context: grpc.aio.ServicerContext) -> NoReturn:
    """UNAUTHENTICATED with a message that does not say what was wrong with the credentials."""
    await abort_with_details(context, grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)


UNAUTHENTICATED_STATUS = rich_status(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)
REFUSAL_LOG_SECONDS = 10.0
"""Refusals of one kind (reason, method, principal) are logged once per this many seconds, with
how many were held back: a flood of bad calls does not become a flood of log lines."""


class ApiKeyAuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Authenticates every call (health and reflection excepted) as a principal, by its API key.

    A call without a key, with an unknown key or with more than one credential ends with
    UNAUTHENTICATED and a generic message before its request is even decoded. An accepted call
    runs with its :class:`Principal` bound, for :func:`authenticated_principal` and
    :func:`authenticated_tenant`, is logged once when it ends, and ends with the status of the
    domain error its servicer raises (any other exception: INTERNAL; see
    :func:`~fixloop_shared.grpc_edge.errors.error_hook`). With ``rate_limit``, a
    principal's calls beyond it end with RESOURCE_EXHAUSTED. Keys are only ever hashed
    (:meth:`PrincipalDirectory.authenticate`), never kept or logged.
    """

    def __init__(
        self,
        principals: PrincipalDirectory,
        *,
        exempt_method_prefixes: Sequence[str] = EXEMPT_METHOD_PREFIXES,
        rate_limit: PrincipalRateLimit | None = None,
    ) -> None:
        self._principals = principals
        self._exempt = tuple(exempt_method_prefixes)
        self._rate_limit = rate_limit
        self._refusals = ThrottledLog(logger, every_seconds=REFUSAL_LOG_SECONDS)
        self._error_hooks: dict[str, ErrorHook] = {}
        """One per method, made on its first call (the hook depends on the method only)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._principals!r})"

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        method: str = handler_call_details.method
        if method.startswith(self._exempt):
            return await continuation(handler_call_details)
        started = time.perf_counter()
        presented = _presented_credentials(handler_call_details.invocation_metadata)
        principal = self._authenticate(presented)
        handler = await continuation(handler_call_details)
        if principal is None:
            reason = _refusal_reason(presented)
            self._refusals.log(
                logging.INFO,
                f"{reason}|{method}",
                REFUSED_LOG_MESSAGE,
                extra={
                    "rpc": method,
                    "code": grpc.StatusCode.UNAUTHENTICATED.name,
                    "reason": reason,
                },
            )
            return ending_handler(handler, UNAUTHENTICATED_STATUS)
        if handler is None:
            return None
        if self._rate_limit is not None and (
            hit := self._rate_limit.retry_after(principal.id, principal.rate_limit)
        ):
            item, retry_after = hit
            limit = str(item)
            self._refusals.log(
                logging.INFO,
                f"rate limit|{method}|{principal.id}",
                REFUSED_LOG_MESSAGE,
                extra={
                    **_who(principal),
                    "rpc": method,
                    "code": grpc.StatusCode.RESOURCE_EXHAUSTED.name,
                    "reason": "rate limit",
                    "limit": limit,
                },
            )
            status = rate_limited_status(
                limit=limit,
                retry_after_seconds=math.ceil(retry_after * 10) / 10,
                subject=f"principal:{principal.id}",
            )
            return ending_handler(handler, status)

        def begin(context: grpc.aio.ServicerContext) -> None:
            _principal.set(principal)
            context.add_done_callback(lambda ended: _log_call(ended, principal, method, started))

        # One wrapper per call binds the principal, logs the call and maps its errors.
        ending = self._error_hooks.get(method)
        if ending is None:
            ending = self._error_hooks[method] = error_hook(method)
        return wrap_behavior(handler, lambda behavior: around(behavior, begin, ending))

    def principal_for(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> Principal | None:
        """The principal of the one API key presented in ``metadata``, or None."""
        return self._authenticate(_presented_credentials(metadata))

    def _authenticate(self, presented: list[str]) -> Principal | None:
        if len(presented) != 1:
            return None
        return self._principals.authenticate(presented[0])


def _presented_credentials(metadata: Iterable[tuple[str, str | bytes]] | None) -> list[str]:
    presented: list[str] = []
    for key, value in metadata or ():
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        if key == API_KEY_METADATA_KEY:
            presented.append(text.strip())
        elif key == AUTHORIZATION_METADATA_KEY:
            scheme, _, token = text.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                presented.append(token.strip())
    return presented


def _refusal_reason(presented: list[str]) -> str:
    """Why a call was not authenticated, for the log only (the caller is told nothing)."""
    if not presented:
        return "no API key"
    if len(presented) > 1:
        return "more than one credential"
    return "unknown API key"


def _who(principal: Principal) -> dict[str, str]:
    fields = {"principal": principal.id, "principal_kind": principal.kind.value}
    if principal.tenant is not None:
        fields["tenant"] = principal.tenant
    if principal.contractor_id is not None:
        fields["contractor_id"] = principal.contractor_id
    return fields


def _final_code(context: grpc.aio.ServicerContext) -> str:
    """The status a call ended with, as seen when it is over (after every interceptor)."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    if context.done():
        return "OK"
    # Ended before its handler finished: the deadline passed, or the client went away.
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        return "DEADLINE_EXCEEDED"
    return "CANCELLED"


def _log_call(
    context: grpc.aio.ServicerContext, principal: Principal, method: str, started: float
) -> None:
    try:
        code = _final_code(context)
    except Exception:  # noqa: BLE001 - a log line must never break the call's teardown
        code = "UNKNOWN"
    logger.info(
        CALL_LOG_MESSAGE,
        extra={
            **_who(principal),
            "rpc": method,
            "code": code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )


async def authenticated_principal(context: grpc.aio.ServicerContext) -> Principal:
    """The principal the current call authenticated as; ends the call UNAUTHENTICATED if none.

    The only source of a caller's identity: request messages carry none, and a call that did
    not pass :class:`ApiKeyAuthInterceptor` has none bound.
    """
    principal = _principal.get()
    if principal is None:
        await abort_unauthenticated(context)
    return principal


async def authenticated_tenant(context: grpc.aio.ServicerContext) -> str:
    """The tenant of the requester-side principal (partner or operator) making this call.

    Ends the call UNAUTHENTICATED if no principal is bound, and PERMISSION_DENIED for a
    contractor principal: it belongs to no single tenant, so a method scoped to "the caller's
    tenant" is not for it.
    """
    principal = await authenticated_principal(context)
    tenant = principal.tenant
    if tenant is None:  # the call's log line (code PERMISSION_DENIED) names the principal
        await abort_for(
            context,
            Forbidden(
                f"{principal} called a method for requester-side partners",
                caller_message=PARTNERS_ONLY_MESSAGE,
            ),
        )
    return tenant


__all__ = [
    "API_KEY_METADATA_KEY",
    "AUTHORIZATION_METADATA_KEY",
    "CALL_LOG_MESSAGE",
    "EXEMPT_METHOD_PREFIXES",
    "HEALTH_SERVICE_NAME",
    "PARTNERS_ONLY_MESSAGE",
    "REFLECTION_SERVICE_NAME",
    "REFUSED_LOG_MESSAGE",
    "UNAUTHENTICATED_MESSAGE",
    "ApiKeyAuthInterceptor",
    "abort_unauthenticated",
    "authenticated_principal",
    "authenticated_tenant",
]
