"""The gRPC edge every service shares: API-key authentication, rich errors and server set-up.

* :class:`ApiKeyAuthInterceptor` authenticates each call by the API key in its metadata
  (``x-api-key: <key>`` or ``authorization: Bearer <key>``) and binds the key's tenant to the
  call. Servicers read it with :func:`authenticated_tenant`; request messages carry no tenant.
  Health checking and server reflection need no key (Kubernetes' gRPC probes send none).
  With a rate limit, each tenant's calls are counted in a moving window; a call over the limit
  ends with RESOURCE_EXHAUSTED (``QuotaFailure`` + ``RetryInfo``) before its request is read.
* :class:`UnexpectedErrorInterceptor` turns an unhandled exception into a bare ``INTERNAL``
  instead of grpc's default ``UNKNOWN`` whose details carry the exception's text.
* ``abort_*`` helpers end a call with a canonical status code and ``google.rpc`` details
  (``BadRequest`` field violations, ``ResourceInfo``, ``RetryInfo``), never with internal text.
* :func:`build_server` creates a ``grpc.aio`` server with message-size and concurrency limits,
  the interceptors above, standard health checking and (optionally) server reflection;
  :func:`stop_server` drains it gracefully.

Servicers behind these interceptors must be ``async``.
"""

from __future__ import annotations

import contextvars
import hmac
import inspect
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, NoReturn

import grpc
from google.protobuf import duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection as grpc_reflection
from grpc_status import rpc_status
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

logger = logging.getLogger(__name__)

API_KEY_METADATA_KEY = "x-api-key"
AUTHORIZATION_METADATA_KEY = "authorization"

HEALTH_SERVICE_NAME: str = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
REFLECTION_SERVICE_NAME: str = grpc_reflection.SERVICE_NAME

UNAUTHENTICATED_MESSAGE = "missing or invalid API key"
INTERNAL_MESSAGE = "internal error"
DEADLINE_EXCEEDED_MESSAGE = "deadline exceeded"
UNAVAILABLE_MESSAGE = "service temporarily unavailable, retry later"
INVALID_ARGUMENT_MESSAGE = "the request has invalid fields"
RESOURCE_EXHAUSTED_MESSAGE = "request rate limit exceeded, retry later"

EXEMPT_METHOD_PREFIXES: tuple[str, ...] = (
    f"/{HEALTH_SERVICE_NAME}/",
    f"/{REFLECTION_SERVICE_NAME}/",
    "/grpc.reflection.v1.ServerReflection/",
)
"""Methods callable without an API key: health checking and server reflection."""

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_CONCURRENT_RPCS = 512

_tenant: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fixloop_grpc_tenant", default=None
)

Behavior = Callable[..., Any]


# --------------------------------------------------------------------------- rich errors


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


async def abort_invalid_argument(
    context: grpc.aio.ServicerContext,
    violations: Mapping[str, str],
    message: str = INVALID_ARGUMENT_MESSAGE,
) -> NoReturn:
    """INVALID_ARGUMENT with one ``BadRequest.FieldViolation`` per ``field -> description``."""
    bad_request = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
            for field, description in violations.items()
        ]
    )
    await abort_with_details(context, grpc.StatusCode.INVALID_ARGUMENT, message, bad_request)


async def abort_not_found(
    context: grpc.aio.ServicerContext, *, resource_type: str, message: str
) -> NoReturn:
    """NOT_FOUND with a fixed message and a ``ResourceInfo`` naming the type only.

    The requested id is deliberately left out, so a resource that exists for someone else
    answers exactly like one that does not exist.
    """
    info = error_details_pb2.ResourceInfo(resource_type=resource_type)
    await abort_with_details(context, grpc.StatusCode.NOT_FOUND, message, info)


async def abort_unauthenticated(context: grpc.aio.ServicerContext) -> NoReturn:
    """UNAUTHENTICATED with a message that does not say what was wrong with the credentials."""
    await abort_with_details(context, grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)


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
        _retry_info(retry_after_seconds),
    )


async def abort_rate_limited(
    context: grpc.aio.ServicerContext, *, limit: str, retry_after_seconds: float
) -> NoReturn:
    """RESOURCE_EXHAUSTED with the exceeded limit (``QuotaFailure``) and when to retry."""
    quota = error_details_pb2.QuotaFailure(
        violations=[
            error_details_pb2.QuotaFailure.Violation(
                subject="tenant", description=f"more than {limit} requests"
            )
        ]
    )
    await abort_with_details(
        context,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        RESOURCE_EXHAUSTED_MESSAGE,
        quota,
        _retry_info(retry_after_seconds),
    )


def _retry_info(seconds: float) -> error_details_pb2.RetryInfo:
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(round(seconds * 1_000_000_000))
    return error_details_pb2.RetryInfo(retry_delay=delay)


async def abort_internal(context: grpc.aio.ServicerContext) -> NoReturn:
    await abort_with_details(context, grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)


# --------------------------------------------------------------------------- handler wrapping


def _wrap_behavior(handler: grpc.RpcMethodHandler, wrap: Callable[[Behavior], Behavior]) -> Any:
    """The same handler (serializers included) with its behaviour passed through ``wrap``."""
    if handler.request_streaming and handler.response_streaming:
        return handler._replace(stream_stream=wrap(handler.stream_stream))
    if handler.request_streaming:
        return handler._replace(stream_unary=wrap(handler.stream_unary))
    if handler.response_streaming:
        return handler._replace(unary_stream=wrap(handler.unary_stream))
    return handler._replace(unary_unary=wrap(handler.unary_unary))


def _around(
    behavior: Behavior,
    before: Callable[[], None],
    on_error: Callable[[Exception, grpc.aio.ServicerContext], Awaitable[None]] | None,
) -> Behavior:
    """Wrap an async behaviour (coroutine or async generator) with a set-up step and an error hook.

    Synchronous behaviours are returned unchanged: they run in an executor thread, outside the
    call's context, and so never see the authenticated tenant (:func:`authenticated_tenant`
    fails closed for them).
    """
    if inspect.isasyncgenfunction(behavior):

        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            # Each call runs in its own asyncio task, so what ``before`` sets in the context
            # stays with this call.
            before()
            try:
                async for response in behavior(request, context):
                    yield response
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                if on_error is None:
                    raise
                await on_error(exc, context)

        return streaming

    if inspect.iscoroutinefunction(behavior):

        async def single(request: Any, context: grpc.aio.ServicerContext) -> Any:
            before()
            try:
                return await behavior(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                if on_error is None:
                    raise
                await on_error(exc, context)
                raise

        return single

    return behavior


async def _deny(_request: Any, context: grpc.aio.ServicerContext) -> None:
    await abort_unauthenticated(context)


def _denying_handler(
    handler: grpc.RpcMethodHandler | None,
    deny: Callable[[Any, grpc.aio.ServicerContext], Awaitable[None]] = _deny,
) -> Any:
    """A handler of the same streaming kind that rejects the call without reading the request."""
    if handler is None or not (handler.request_streaming or handler.response_streaming):
        return grpc.unary_unary_rpc_method_handler(deny)
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(deny)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(deny)
    return grpc.unary_stream_rpc_method_handler(deny)


class TenantRateLimit:
    """Requests per tenant in moving windows, e.g. ``"50/second;1000/minute"`` (``limits``
    notation). Counted in this process: with several pods each allows the limit."""

    def __init__(self, spec: str) -> None:
        self.items: tuple[RateLimitItem, ...] = tuple(parse_many(spec))
        if not self.items:
            msg = f"no rate limit in {spec!r}"
            raise ValueError(msg)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def retry_after(self, tenant: str) -> tuple[RateLimitItem, float] | None:
        """Count one request of ``tenant``; None if allowed, else the limit hit and the seconds
        until the window lets another request through."""
        for item in self.items:  # a refused call counts against no window
            if not self._limiter.test(item, tenant):
                reset_at = self._limiter.get_window_stats(item, tenant).reset_time
                return item, max(0.0, reset_at - time.time())
        for item in self.items:
            self._limiter.hit(item, tenant)
        return None


# --------------------------------------------------------------------------- authentication


class ApiKeyAuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Authenticates every call (health and reflection excepted) by its API key.

    ``api_keys`` maps each key to the tenant it belongs to. A call without a key, with an
    unknown key or with more than one credential ends with UNAUTHENTICATED and a generic
    message before its request is even decoded. An accepted call runs with its tenant bound,
    for :func:`authenticated_tenant`. Keys are compared in constant time and never logged.
    With ``rate_limit``, a tenant's calls beyond it end with RESOURCE_EXHAUSTED.
    """

    def __init__(
        self,
        api_keys: Mapping[str, str],
        *,
        exempt_method_prefixes: Sequence[str] = EXEMPT_METHOD_PREFIXES,
        rate_limit: TenantRateLimit | None = None,
    ) -> None:
        entries: list[tuple[bytes, str]] = []
        for key, tenant in api_keys.items():
            if not key.strip():
                msg = f"an API key of tenant {tenant!r} is empty"
                raise ValueError(msg)
            if not tenant:
                msg = "every API key must belong to a tenant"
                raise ValueError(msg)
            entries.append((key.encode(), tenant))
        self._keys = tuple(entries)
        self._exempt = tuple(exempt_method_prefixes)
        self._rate_limit = rate_limit

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<{len(self._keys)} keys>)"

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        method: str = handler_call_details.method
        if method.startswith(self._exempt):
            return await continuation(handler_call_details)
        tenant = self.tenant_for(handler_call_details.invocation_metadata)
        handler = await continuation(handler_call_details)
        if tenant is None:
            logger.info("gRPC call rejected: missing or invalid API key", extra={"rpc": method})
            return _denying_handler(handler)
        if handler is None:
            return None
        if self._rate_limit is not None and (hit := self._rate_limit.retry_after(tenant)):
            item, retry_after = hit
            logger.info("gRPC call rejected: rate limit", extra={"rpc": method, "tenant": tenant})
            limit = str(item)

            async def reject(_request: Any, context: grpc.aio.ServicerContext) -> None:
                await abort_rate_limited(
                    context, limit=limit, retry_after_seconds=math.ceil(retry_after * 10) / 10
                )

            return _denying_handler(handler, reject)

        def bind_tenant() -> None:
            _tenant.set(tenant)

        return _wrap_behavior(handler, lambda behavior: _around(behavior, bind_tenant, None))

    def tenant_for(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
        """The tenant of the one API key presented in ``metadata``, or None."""
        presented = _presented_credentials(metadata)
        if len(presented) != 1:
            return None
        candidate = presented[0]
        found: str | None = None
        for key, tenant in self._keys:  # no early exit: the time taken says nothing of the key
            if hmac.compare_digest(candidate, key):
                found = tenant
        return found


def _presented_credentials(metadata: Iterable[tuple[str, str | bytes]] | None) -> list[bytes]:
    presented: list[bytes] = []
    for key, value in metadata or ():
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        if key == API_KEY_METADATA_KEY:
            presented.append(text.strip().encode())
        elif key == AUTHORIZATION_METADATA_KEY:
            scheme, _, token = text.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                presented.append(token.strip().encode())
    return presented


async def authenticated_tenant(context: grpc.aio.ServicerContext) -> str:
    """The tenant the current call authenticated as; ends the call UNAUTHENTICATED if none.

    The only source of a caller's tenant: request messages carry none, and a call that did
    not pass :class:`ApiKeyAuthInterceptor` has none bound.
    """
    tenant = _tenant.get()
    if tenant is None:
        await abort_unauthenticated(context)
    return tenant


# --------------------------------------------------------------------------- unexpected errors


class UnexpectedErrorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Logs an unhandled exception with its traceback and ends the call with a bare INTERNAL.

    Without it grpc answers UNKNOWN with the exception's class and text in the details.
    """

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method

        async def report(exc: Exception, context: grpc.aio.ServicerContext) -> None:
            logger.error("unhandled error in gRPC call", exc_info=exc, extra={"rpc": method})
            await abort_internal(context)

        return _wrap_behavior(handler, lambda behavior: _around(behavior, _nothing, report))


def _nothing() -> None:
    return None


# --------------------------------------------------------------------------- server


@dataclass(frozen=True)
class GrpcService:
    """A service to serve: its full name (e.g. ``fixloop.v1.WorkOrdersService``) and how to add
    its servicer to a server (usually a generated ``add_<Service>Servicer_to_server``)."""

    name: str
    register: Callable[[grpc.aio.Server], None]


class GrpcServer(NamedTuple):
    """A built server, the port it is bound to, and its health servicer."""

    server: grpc.aio.Server
    port: int
    health: health_aio.HealthServicer


async def build_server(
    services: Sequence[GrpcService],
    *,
    host: str,
    port: int,
    api_keys: Mapping[str, str],
    reflection: bool,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    max_concurrent_rpcs: int = DEFAULT_MAX_CONCURRENT_RPCS,
    credentials: grpc.ServerCredentials | None = None,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    rate_limit: str | None = None,
) -> GrpcServer:
    """Create, wire and bind (not start) a ``grpc.aio`` server.

    Every call passes :class:`UnexpectedErrorInterceptor`, :class:`ApiKeyAuthInterceptor`,
    then ``interceptors``. Health reports SERVING for ``""`` and each service. ``port=0``
    binds a free port; the bound one is returned. Without ``credentials`` the port is
    plaintext (TLS is then expected to end at the ingress or mesh). ``rate_limit`` (e.g.
    ``"50/second;1000/minute"``) bounds each tenant's calls; None means unlimited.
    """
    server = grpc.aio.server(
        interceptors=[
            UnexpectedErrorInterceptor(),
            ApiKeyAuthInterceptor(
                api_keys, rate_limit=TenantRateLimit(rate_limit) if rate_limit else None
            ),
            *interceptors,
        ],
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ],
        maximum_concurrent_rpcs=max_concurrent_rpcs,
    )
    for service in services:
        service.register(server)

    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    names = [service.name for service in services]
    if reflection:
        grpc_reflection.enable_server_reflection(
            [*names, HEALTH_SERVICE_NAME, REFLECTION_SERVICE_NAME], server
        )

    address = f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
    if credentials is None:
        bound = server.add_insecure_port(address)
    else:
        bound = server.add_secure_port(address, credentials)
    if not bound:
        msg = f"could not bind the gRPC server to {address}"
        raise OSError(msg)

    serving = health_pb2.HealthCheckResponse.SERVING
    for name in ("", *names):
        await health.set(name, serving)
    return GrpcServer(server=server, port=int(bound), health=health)


async def stop_server(
    server: grpc.aio.Server, health: health_aio.HealthServicer, *, grace: float = 10.0
) -> None:
    """Report NOT_SERVING for every service, then stop, letting calls in flight finish within
    ``grace`` seconds."""
    await health.enter_graceful_shutdown()
    await server.stop(grace)


__all__ = [
    "API_KEY_METADATA_KEY",
    "AUTHORIZATION_METADATA_KEY",
    "DEFAULT_MAX_CONCURRENT_RPCS",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "EXEMPT_METHOD_PREFIXES",
    "HEALTH_SERVICE_NAME",
    "REFLECTION_SERVICE_NAME",
    "RESOURCE_EXHAUSTED_MESSAGE",
    "UNAUTHENTICATED_MESSAGE",
    "ApiKeyAuthInterceptor",
    "GrpcServer",
    "GrpcService",
    "TenantRateLimit",
    "UnexpectedErrorInterceptor",
    "abort_deadline_exceeded",
    "abort_internal",
    "abort_invalid_argument",
    "abort_not_found",
    "abort_rate_limited",
    "abort_unauthenticated",
    "abort_unavailable",
    "abort_with_details",
    "authenticated_tenant",
    "build_server",
    "rich_status",
    "stop_server",
]
