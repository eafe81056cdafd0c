"""OpenTelemetry tracing: one provider per process, trace context carried in Kafka headers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_installed: TracerProvider | None = None


def setup_tracing(service: str, otlp_endpoint: str | None) -> TracerProvider:
    """Create and install the process's tracer provider; export over OTLP when configured.

    One provider per process: a second call (several apps built in one process, as the contract
    generator does) returns the first.
    """
    global _installed  # noqa: PLW0603 - the process's one provider
    if _installed is not None:
        return _installed
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
    _installed = provider
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


@contextlib.contextmanager
def consuming(
    tracer: trace.Tracer | None, traceparent: str | None, *, topic: str, event_type: str
) -> Iterator[None]:
    """A CONSUMER span for one consumed event, in the event's own trace (``traceparent``).

    Events are consumed in batches with one FastStream span each; this span puts the handling of
    every event, and what it emits, into the trace the event came with.
    """
    if tracer is None:
        with in_trace_of(traceparent):
            yield
        return
    parent = extract({"traceparent": traceparent}) if traceparent else None
    with tracer.start_as_current_span(
        f"{topic} handle",
        context=parent,
        kind=trace.SpanKind.CONSUMER,
        attributes={
            "messaging.system": "kafka",
            "messaging.destination.name": topic,
            "messaging.operation.type": "process",
            "cloudevents.event_type": event_type,
        },
    ):
        yield


@contextlib.contextmanager
def in_trace_of(traceparent: str | None) -> Iterator[None]:
    """Run the block in the trace ``traceparent`` names, unless the active span is already in it.

    A batch of consumed events has one consumer span; each event's handler still emits its
    events into the event's own trace.
    """
    if not traceparent:
        yield
        return
    parts = traceparent.split("-")
    active = trace.get_current_span().get_span_context()
    if len(parts) == 4 and active.is_valid and format(active.trace_id, "032x") == parts[1]:
        yield
        return
    token = otel_context.attach(extract({"traceparent": traceparent}))
    try:
        yield
    finally:
        otel_context.detach(token)
