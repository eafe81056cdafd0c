"""Every call a service's gRPC server answers is counted on the service's registry, by method and
status code, timed, and traced as a SERVER span — against a real ``grpc.aio`` server on a free
loopback port, hosted the way the services host theirs (``hosted_in``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CollectorRegistry

from fixloop_devkit.testing import eventually
from fixloop_shared.errors import NotFound
from fixloop_shared.grpc_edge.hosting import HostedGrpcApi, hosted_in
from fixloop_shared.grpc_edge.principals import (
    PrincipalDirectory,
    PrincipalKind,
    PrincipalSpec,
    hash_api_key,
)
from fixloop_shared.grpc_edge.server import GrpcService, build_server, stop_server

pytestmark = pytest.mark.integration

SERVICE = "fixloop.test.v1.RepairDesk"
KEY = "acme-desk-test-key-4e11c2"
PRINCIPALS = PrincipalDirectory.of(
    [
        PrincipalSpec(
            id="acme-erp", kind=PrincipalKind.PARTNER, tenant="acme", key_hashes=[hash_api_key(KEY)]
        )
    ]
)
WITH_KEY = (("x-api-key", KEY),)


async def look_up(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    """Answers ``wo-known``; any other work order is not found (a domain error)."""
    if request != b"wo-known":
        raise NotFound(f"work order {request.decode()} not found")
    return b"found " + request


async def fail(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    msg = "the store returned something impossible"
    raise RuntimeError(msg)


def repair_desk() -> GrpcService:
    handlers = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "LookUp": grpc.unary_unary_rpc_method_handler(look_up),
            "Fail": grpc.unary_unary_rpc_method_handler(fail),
        },
    )
    return GrpcService(SERVICE, lambda server: server.add_generic_rpc_handlers((handlers,)))


@dataclass
class ServiceHooksStub:
    """What ``hosted_in`` needs of a service: its hooks and its metrics registry."""

    metrics: CollectorRegistry = field(default_factory=CollectorRegistry)
    on_startup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    readiness_checks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


@dataclass
class Served:
    registry: CollectorRegistry
    channel: grpc.aio.Channel

    def call(self, method: str) -> grpc.aio.UnaryUnaryMultiCallable:
        return self.channel.unary_unary(method)

    def handled(self, method: str, code: str, service: str = SERVICE) -> float:
        value = self.registry.get_sample_value(
            "grpc_server_handled_total",
            {
                "grpc_type": "unary",
                "grpc_service": service,
                "grpc_method": method,
                "grpc_code": code,
            },
        )
        return value or 0.0

    def sample(self, name: str, method: str) -> float:
        labels = {"grpc_type": "unary", "grpc_service": SERVICE, "grpc_method": method}
        return self.registry.get_sample_value(name, labels) or 0.0

    def total(self, name: str) -> float:
        return sum(
            sample.value
            for metric in self.registry.collect()
            for sample in metric.samples
            if sample.name == name
        )

    async def calls_ended(self, calls: int) -> None:
        """Wait until the server has recorded the end of ``calls`` calls (it records a call
        once it is over on its side, which can be just after the caller has its answer)."""

        async def ended() -> tuple[float, float]:
            return self.total("grpc_server_started_total"), self.total("grpc_server_handled_total")

        await eventually(ended, lambda counts: counts == (calls, calls), timeout=10, interval=0.02)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    hooks = ServiceHooksStub()
    api = hosted_in(
        hooks,
        HostedGrpcApi(
            [repair_desk()], host="127.0.0.1", port=0, principals=PRINCIPALS, reflection=False
        ),
        principals_setting="FIXLOOP_TEST_PRINCIPALS",
        has_principals=True,
    )
    for hook in hooks.on_startup:
        await hook()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{api.bound_port}")
    try:
        yield Served(hooks.metrics, channel)
    finally:
        await channel.close()
        for hook in hooks.on_shutdown:
            await hook()


async def test_each_call_is_counted_by_method_and_code_on_the_services_registry(
    served: Served,
) -> None:
    look_up_method = f"/{SERVICE}/LookUp"
    assert await served.call(look_up_method)(b"wo-known", metadata=WITH_KEY) == b"found wo-known"
    assert await served.call(look_up_method)(b"wo-known", metadata=WITH_KEY) == b"found wo-known"
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await served.call(look_up_method)(b"wo-missing", metadata=WITH_KEY)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as broken:
        await served.call(f"/{SERVICE}/Fail")(b"wo-known", metadata=WITH_KEY)
    assert broken.value.code() == grpc.StatusCode.INTERNAL

    await served.calls_ended(4)
    assert served.handled("LookUp", "OK") == 2
    assert served.handled("LookUp", "NOT_FOUND") == 1
    assert served.handled("Fail", "INTERNAL") == 1
    assert served.handled("Fail", "OK") == 0
    assert served.sample("grpc_server_started_total", "LookUp") == 3
    assert served.sample("grpc_server_handling_seconds_count", "LookUp") == 3
    assert served.sample("grpc_server_handling_seconds_count", "Fail") == 1


async def test_calls_the_edge_refuses_are_counted_with_their_code(served: Served) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await served.call(f"/{SERVICE}/LookUp")(b"wo-known")  # no API key
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    await served.calls_ended(1)
    assert served.handled("LookUp", "UNAUTHENTICATED") == 1
    assert served.handled("LookUp", "OK") == 0


async def test_methods_the_server_does_not_carry_share_one_label(served: Served) -> None:
    for made_up in ("/fixloop.test.v1.RepairDesk/Nope", "/made.up.Service/Name"):
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await served.call(made_up)(b"x", metadata=WITH_KEY)
        assert unknown.value.code() == grpc.StatusCode.UNIMPLEMENTED
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await served.call("/fixloop.test.v1.RepairDesk/AlsoNope")(b"x")  # no key either
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    await served.calls_ended(3)
    assert served.handled("unknown", "UNAUTHENTICATED", service="unknown") == 1
    assert served.handled("unknown", "UNIMPLEMENTED", service="unknown") == 2
    exposed = {
        sample.labels.get("grpc_method")
        for metric in served.registry.collect()
        for sample in metric.samples
    }
    assert exposed == {"unknown"}


async def test_health_checks_are_counted_too(served: Served) -> None:
    stub = health_pb2_grpc.HealthStub(served.channel)
    answer = await stub.Check(health_pb2.HealthCheckRequest(service=SERVICE))
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    await served.calls_ended(1)
    counted = served.registry.get_sample_value(
        "grpc_server_handled_total",
        {
            "grpc_type": "unary",
            "grpc_service": "grpc.health.v1.Health",
            "grpc_method": "Check",
            "grpc_code": "OK",
        },
    )
    assert counted == 1


async def test_each_call_is_a_server_span_with_its_status() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    running = await build_server(
        [repair_desk()],
        host="127.0.0.1",
        port=0,
        principals=PRINCIPALS,
        reflection=False,
        tracer_provider=provider,
    )
    await running.server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            look_up_method = channel.unary_unary(f"/{SERVICE}/LookUp")
            await look_up_method(b"wo-known", metadata=WITH_KEY)
            with pytest.raises(grpc.aio.AioRpcError):
                await look_up_method(b"wo-missing", metadata=WITH_KEY)
            with pytest.raises(grpc.aio.AioRpcError):
                await channel.unary_unary(f"/{SERVICE}/Fail")(b"wo-known", metadata=WITH_KEY)
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    finally:
        await stop_server(running.server, running.health, grace=1)
    spans = exporter.get_finished_spans()
    # Health checks make no spans (probes call them every few seconds).
    assert [span.name for span in spans] == [
        f"/{SERVICE}/{m}" for m in ("LookUp", "LookUp", "Fail")
    ]
    assert all(span.kind == SpanKind.SERVER for span in spans)
    found, missing, failed = spans
    assert found.status.status_code != StatusCode.ERROR
    # A caller's mistake is not the server's error (OpenTelemetry's rule for server spans) ...
    assert missing.status.status_code != StatusCode.ERROR
    assert (missing.attributes or {})["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    # ... a failure of the server is.
    assert failed.status.status_code == StatusCode.ERROR
    assert (failed.attributes or {})["rpc.grpc.status_code"] == grpc.StatusCode.INTERNAL.value[0]
