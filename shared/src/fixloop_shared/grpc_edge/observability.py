"""Spans and RED metrics of every call a ``grpc.aio`` server answers.

:func:`server_observability` gives the outermost interceptors of a server built by
:func:`~fixloop_shared.grpc_edge.server.build_server` (and one innermost), so that what they
record includes calls the edge refuses (UNAUTHENTICATED, RESOURCE_EXHAUSTED):

* a SERVER span per call (OpenTelemetry's own aio interceptor, in the caller's trace when the
  call carries ``traceparent``; health checks make no spans: probes call them every few
  seconds), given the status the call ended with (``rpc.grpc.status_code``; an error for the
  codes in :data:`SERVER_ERROR_CODES`);
* Prometheus metrics on the service's registry, named as the gRPC ecosystem names them, so that
  the usual dashboards and alerts apply:

  - ``grpc_server_started_total{grpc_type, grpc_service, grpc_method}``
  - ``grpc_server_handled_total{grpc_type, grpc_service, grpc_method, grpc_code}`` — ``grpc_code``
    is the canonical status name (``OK``, ``NOT_FOUND``, ``INTERNAL`` ...)
  - ``grpc_server_handling_seconds{grpc_type, grpc_service, grpc_method}`` (histogram)

  A method the server does not carry is labelled ``unknown``: what callers send never becomes a
  label of its own. Which methods it carries is learnt as calls arrive, by
  :class:`ServedMethods`, the server's innermost interceptor: it sees the handler a method
  resolves to, even for calls the edge then refuses.

The metrics are recorded when a call has ended on the server, which can be just after the caller
has its answer.
"""

from __future__ import annotations

import inspect
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from opentelemetry.instrumentation.grpc.filters import health_check, negate
from opentelemetry.trace import Status, StatusCode, TracerProvider
from prometheus_client import CollectorRegistry, Counter, Histogram

from fixloop_shared.grpc_edge._handlers import Behavior, wrap_behavior
from fixloop_shared.grpc_edge.auth import _final_code

RPC_GRPC_STATUS_CODE = "rpc.grpc.status_code"
"""The span attribute with the numeric status code (OpenTelemetry's semantic conventions)."""
UNKNOWN_LABEL = "unknown"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)
"""Seconds; unary reads answer in milliseconds, streams (watching an order) last minutes."""


_METRICS_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, GrpcServerMetrics] = (
    weakref.WeakKeyDictionary()
)


class GrpcServerMetrics:
    """The RED metrics of the gRPC servers of one process, on one registry (use :meth:`on`)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["grpc_type", "grpc_service", "grpc_method"]
        self.started = Counter(
            "grpc_server_started", "gRPC calls started on the server", labels, registry=registry
        )
        self.handled = Counter(
            "grpc_server_handled",
            "gRPC calls completed on the server, by status code",
            [*labels, "grpc_code"],
            registry=registry,
        )
        self.handling = Histogram(
            "grpc_server_handling_seconds",
            "Time from the start of a gRPC call to its end, on the server",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    @classmethod
    def on(cls, registry: CollectorRegistry) -> GrpcServerMetrics:
        """The metrics on ``registry``, registered there on first use (several servers of one
        service, or one server started again, share them)."""
        metrics = _METRICS_BY_REGISTRY.get(registry)
        if metrics is None:
            metrics = _METRICS_BY_REGISTRY[registry] = cls(registry)
        return metrics


def _rpc_type(handler: grpc.RpcMethodHandler) -> str:
    if handler.request_streaming and handler.response_streaming:
        return "bidi_stream"
    if handler.request_streaming:
        return "client_stream"
    if handler.response_streaming:
        return "server_stream"
    return "unary"


def _ended_code(context: grpc.aio.ServicerContext, raised: bool) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    if raised:
        return "UNKNOWN"  # what grpc answers for an exception no interceptor turned into a status
    return _final_code(context)


class ServedMethods(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """The innermost interceptor: notes each method that resolves to a handler on this server
    (at most the methods it carries), before any other interceptor may replace the handler."""

    def __init__(self) -> None:
        self.methods: set[str] = set()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is not None:
            self.methods.add(handler_call_details.method)
        return handler


SERVER_ERROR_CODES = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
"""Codes that mark a SERVER span as an error (OpenTelemetry's rule for gRPC servers: a caller's
mistake, such as NOT_FOUND or INVALID_ARGUMENT, is not the server's error)."""


def _mark_span(context: grpc.aio.ServicerContext) -> None:
    """Give the call's span the status the call ended with. The edge ends calls with
    ``abort_with_status`` (rich details) or ``set_code``; OpenTelemetry's interceptor sees
    neither."""
    code = context.code()
    span = trace.get_current_span()
    if not isinstance(code, grpc.StatusCode) or not span.is_recording():
        return
    span.set_attribute(RPC_GRPC_STATUS_CODE, code.value[0])
    if code in SERVER_ERROR_CODES:
        span.set_status(Status(StatusCode.ERROR, code.name))


class GrpcCallObserver(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Completes each call's span with its final status and, with ``metrics``, counts the call
    by type, service, method and final status, and times it. Goes right inside OpenTelemetry's
    interceptor; ``served`` must be the server's innermost interceptor."""

    def __init__(self, metrics: GrpcServerMetrics | None, served: ServedMethods) -> None:
        self._metrics = metrics
        self._served = served

    def _labels(self, full_method: str) -> tuple[str, str]:
        if full_method not in self._served.methods:
            return UNKNOWN_LABEL, UNKNOWN_LABEL
        service, _, method = full_method.lstrip("/").partition("/")
        return service, method

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        metrics = self._metrics
        service, method = self._labels(handler_call_details.method)
        if handler is None:  # no such method here: grpc answers UNIMPLEMENTED
            if metrics is not None:
                metrics.started.labels("unary", service, method).inc()
                metrics.handled.labels("unary", service, method, "UNIMPLEMENTED").inc()
            return None
        rpc_type = _rpc_type(handler)

        def begin(context: grpc.aio.ServicerContext) -> list[bool]:
            raised = [False]
            if metrics is None:
                return raised
            began = time.perf_counter()
            metrics.started.labels(rpc_type, service, method).inc()

            def ended(call: grpc.aio.ServicerContext) -> None:
                metrics.handling.labels(rpc_type, service, method).observe(
                    time.perf_counter() - began
                )
                try:
                    code = _ended_code(call, raised[0])
                except Exception:  # noqa: BLE001 - counting never breaks a call's teardown
                    code = "UNKNOWN"
                metrics.handled.labels(rpc_type, service, method, code).inc()

            context.add_done_callback(ended)
            return raised

        def observed(behavior: Behavior) -> Behavior:
            if inspect.isasyncgenfunction(behavior):

                async def streaming(
                    request: Any, context: grpc.aio.ServicerContext
                ) -> AsyncIterator[Any]:
                    raised = begin(context)
                    try:
                        async for response in behavior(request, context):
                            yield response
                    except grpc.aio.AbortError:
                        _mark_span(context)
                        raise
                    except Exception:
                        raised[0] = True
                        raise
                    _mark_span(context)

                return streaming

            if not inspect.iscoroutinefunction(behavior):
                return behavior  # runs in an executor thread: the edge serves none such

            async def single(request: Any, context: grpc.aio.ServicerContext) -> Any:
                raised = begin(context)
                try:
                    response = await behavior(request, context)
                except grpc.aio.AbortError:
                    _mark_span(context)
                    raise
                except Exception:
                    raised[0] = True
                    raise
                _mark_span(context)
                return response

            return single

        return wrap_behavior(handler, observed)


@dataclass(frozen=True)
class ServerObservability:
    """Interceptors to put first (``outermost``) and last (``innermost``) on a server."""

    outermost: list[grpc.aio.ServerInterceptor]
    innermost: list[grpc.aio.ServerInterceptor]


def server_observability(
    metrics: CollectorRegistry | None, *, tracer_provider: TracerProvider | None = None
) -> ServerObservability:
    """A server's spans (the process's tracer provider unless ``tracer_provider``) and, with
    ``metrics`` (the service's registry), its RED metrics."""
    spans = aio_server_interceptor(  # type: ignore[no-untyped-call]
        tracer_provider=tracer_provider, filter_=negate(health_check())
    )
    served = ServedMethods()
    observer = GrpcCallObserver(
        GrpcServerMetrics.on(metrics) if metrics is not None else None, served
    )
    return ServerObservability(outermost=[spans, observer], innermost=[served])


__all__ = [
    "LATENCY_BUCKETS",
    "SERVER_ERROR_CODES",
    "GrpcCallObserver",
    "GrpcServerMetrics",
    "ServedMethods",
    "ServerObservability",
    "server_observability",
]
