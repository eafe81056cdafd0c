"""OpenTelemetry tracing: one provider per process, trace context carried in Kafka headers."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.propagate import inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def setup_tracing(service: str, otlp_endpoint: str | None) -> TracerProvider:
    """Create and install the process's tracer provider; export over OTLP when configured."""
    provider = TracerProvider(resource=Resource.create({"service.name": f"fixloop-{service}"}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    trace.set_tracer_provider(provider)
    try:
        from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

        PymongoInstrumentor().instrument(tracer_provider=provider)
    except Exception:  # noqa: BLE001 - tracing of the store is optional, never fatal
        trace.get_tracer(__name__).start_span("pymongo-instrumentation-unavailable").end()
    return provider


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the active span, to carry the trace through the outbox."""
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get("traceparent")


def current_trace_ids() -> tuple[str | None, str | None]:
    """(trace_id, span_id) of the active span as hex, for log records."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None, None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
