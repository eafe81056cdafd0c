"""API-key authentication; the caller's tenant is the one its key belongs to.

:class:`ApiKeyAuthInterceptor` authenticates each call by the API key in its metadata
(``x-api-key: <key>`` or ``authorization: Bearer <key>``) and binds the key's tenant to the call.
Servicers read it with :func:`authenticated_tenant`; request messages carry no tenant. Health
checking and server reflection need no key (Kubernetes' gRPC probes send none). With a
:class:`~fixloop_shared.grpc_edge.rate_limit.TenantRateLimit`, a tenant's calls over the limit
end with RESOURCE_EXHAUSTED before their request is read.
"""

from __future__ import annotations

import contextvars
import hmac
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, NoReturn

import grpc
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection as grpc_reflection

from fixloop_shared.grpc_edge._handlers import around, rejecting_handler, wrap_behavior
from fixloop_shared.grpc_edge.errors import abort_with_details
from fixloop_shared.grpc_edge.rate_limit import TenantRateLimit, abort_rate_limited

logger = logging.getLogger(__name__)

API_KEY_METADATA_KEY = "x-api-key"
AUTHORIZATION_METADATA_KEY = "authorization"
UNAUTHENTICATED_MESSAGE = "missing or invalid API key"

HEALTH_SERVICE_NAME: str = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
REFLECTION_SERVICE_NAME: str = grpc_reflection.SERVICE_NAME

EXEMPT_METHOD_PREFIXES: tuple[str, ...] = (
    f"/{HEALTH_SERVICE_NAME}/",
    f"/{REFLECTION_SERVICE_NAME}/",
    "/grpc.reflection.v1.ServerReflection/",
)
"""Methods callable without an API key: health checking and server reflection."""

_tenant: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fixloop_grpc_tenant", default=None
)


async def abort_unauthenticated(context: grpc.aio.ServicerContext) -> NoReturn:
    """UNAUTHENTICATED with a message that does not say what was wrong with the credentials."""
    await abort_with_details(context, grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)


async def _deny(_request: Any, context: grpc.aio.ServicerContext) -> None:
    await abort_unauthenticated(context)


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
            return rejecting_handler(handler, _deny)
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

            return rejecting_handler(handler, reject)

        def bind_tenant() -> None:
            _tenant.set(tenant)

        return wrap_behavior(handler, lambda behavior: around(behavior, bind_tenant, None))

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


__all__ = [
    "API_KEY_METADATA_KEY",
    "AUTHORIZATION_METADATA_KEY",
    "EXEMPT_METHOD_PREFIXES",
    "HEALTH_SERVICE_NAME",
    "REFLECTION_SERVICE_NAME",
    "UNAUTHENTICATED_MESSAGE",
    "ApiKeyAuthInterceptor",
    "abort_unauthenticated",
    "authenticated_tenant",
]
