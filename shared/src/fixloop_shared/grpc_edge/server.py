"""Building and stopping a partner-facing ``grpc.aio`` server.

:func:`build_server` creates a server with message-size and concurrency limits, the edge's
interceptor (authentication of principals by API key, rate limit per principal, call log, domain
errors → their status, unexpected errors → INTERNAL) behind a span and RED metrics per call,
standard health checking and (optionally) server reflection; :func:`stop_server` drains it
gracefully.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection as grpc_reflection
from opentelemetry.trace import TracerProvider
from prometheus_client import CollectorRegistry

from fixloop_shared.grpc_edge.auth import (
    HEALTH_SERVICE_NAME,
    REFLECTION_SERVICE_NAME,
    ApiKeyAuthInterceptor,
)
from fixloop_shared.grpc_edge.observability import server_observability
from fixloop_shared.grpc_edge.principals import PrincipalDirectory
from fixloop_shared.grpc_edge.rate_limit import PrincipalRateLimit

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_CONCURRENT_RPCS = 512


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
    principals: PrincipalDirectory,
    reflection: bool,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    max_concurrent_rpcs: int = DEFAULT_MAX_CONCURRENT_RPCS,
    credentials: grpc.ServerCredentials | None = None,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    rate_limit: str | None = None,
    metrics: CollectorRegistry | None = None,
    tracer_provider: TracerProvider | None = None,
) -> GrpcServer:
    """Create, wire and bind (not start) a ``grpc.aio`` server.

    Every call passes :class:`ApiKeyAuthInterceptor` (which finds the calling principal in
    ``principals``, an empty directory denying every call but health and reflection; applies the
    rate limit; logs the call; maps its errors to statuses), then ``interceptors``. Health
    reports SERVING for ``""`` and each service. ``port=0`` binds a free port; the bound one is
    returned. Without ``credentials`` the port is plaintext (TLS is then expected to end at the
    ingress or mesh). ``rate_limit`` (e.g. ``"100/second;3000/minute"``) bounds each principal's
    calls unless the principal has a limit of its own; None means unlimited.

    Outermost, so that refused calls count too: a SERVER span per call (the process's tracer
    provider unless ``tracer_provider``) and, with ``metrics`` (the service's registry), the RED
    metrics of :mod:`~fixloop_shared.grpc_edge.observability`.
    """
    observed = server_observability(metrics, tracer_provider=tracer_provider)
    server = grpc.aio.server(
        interceptors=[
            *observed.outermost,
            ApiKeyAuthInterceptor(principals, rate_limit=PrincipalRateLimit(rate_limit or None)),
            *interceptors,
            *observed.innermost,
        ],
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            # A port taken by another process is an error, never a port shared with it (gRPC's
            # default SO_REUSEPORT would spread the callers over both servers).
            ("grpc.so_reuseport", 0),
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
    "DEFAULT_MAX_CONCURRENT_RPCS",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "GrpcServer",
    "GrpcService",
    "build_server",
    "stop_server",
]
