"""Helpers for tests and benchmarks that drive the system through its public edges.

``ConsumedRecord`` and ``read_topic`` are production code (``fixloop dlq`` uses them) and live in
``fixloop_shared.topic_reader``; they are re-exported here for the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Protocol, TypeVar

from aiokafka import AIOKafkaProducer

from fixloop_devkit.devstack import (
    ManagedProcess,
    embedded_store_command,
    free_port,
    port_open,
    tansu_binary,
)
from fixloop_devkit.devstack import wait_until as _wait_until_sync
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.topic_reader import ConsumedRecord, read_topic

__all__ = [
    "ConsumedRecord",
    "ManagedProcess",
    "eventually",
    "produce",
    "read_topic",
    "start_embedded_broker",
    "start_embedded_store",
    "unique",
]

T = TypeVar("T")


async def produce(
    bootstrap: str | KafkaSettings,
    topic: str,
    value: bytes,
    *,
    key: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    compression: str | None = None,
    max_request_size: int = 1_048_576,
) -> None:
    """Send one record (``bootstrap``: an address without credentials, or the settings of a
    secured cluster)."""
    kafka = KafkaSettings(bootstrap=bootstrap) if isinstance(bootstrap, str) else bootstrap
    producer = AIOKafkaProducer(
        **kafka.client_options(),
        acks="all",
        compression_type=compression,
        max_request_size=max_request_size,
    )
    await producer.start()
    try:
        await producer.send_and_wait(
            topic,
            value,
            key=key,
            headers=[(k, v.encode()) for k, v in (headers or {}).items()],
        )
    finally:
        await producer.stop()


async def eventually(
    probe: Callable[[], Awaitable[T]],
    check: Callable[[T], bool],
    *,
    timeout: float = 20.0,
    interval: float = 0.2,
) -> T:
    """Poll ``probe`` until ``check`` holds; return the last value or raise AssertionError."""
    deadline = time.monotonic() + timeout
    value = await probe()
    while not check(value):
        if time.monotonic() > deadline:
            msg = f"condition not met within {timeout}s; last value: {value!r}"[:2000]
            raise AssertionError(msg)
        await asyncio.sleep(interval)
        value = await probe()
    return value


def start_embedded_broker(log_dir: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    proc = ManagedProcess(
        "kafka",
        [
            tansu_binary(),
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{port}",
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{port}",
        ],
        log_dir / "kafka.log",
    )
    proc.start()
    _wait_until_sync(lambda: port_open(port), 30, "the embedded broker")
    return proc, f"127.0.0.1:{port}"


def start_embedded_store(data_dir: Path, name: str = "test") -> tuple[ManagedProcess, str]:
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = ManagedProcess(
        f"store-{name}",
        [
            *embedded_store_command(),
            "--data-dir",
            str(data_dir / name),
            "--port",
            str(port),
            "--log-file",
            str(data_dir / f"{name}.nx.log"),
            "--pid-file",
            str(data_dir / f"{name}.pid"),
        ],
        data_dir / f"{name}.log",
    )
    proc.start()
    _wait_until_sync(lambda: port_open(port), 30, "the embedded store")
    return proc, f"mongodb://127.0.0.1:{port}/?directConnection=true"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class _Startable(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class _Service(Protocol):
    @property
    def app(self) -> _Startable: ...


ServiceT = TypeVar("ServiceT", bound=_Service)


async def start_in_process(build: Callable[[], ServiceT], *, within: float = 90.0) -> ServiceT:
    """Build and start a service in this process (its ``app``). A start that does not finish
    ``within`` seconds is abandoned and tried once more with a fresh instance: on the embedded
    broker a consumer group's join has been seen to stall for good, and new members join."""
    for attempt in (1, 2):
        service = build()
        try:
            await asyncio.wait_for(service.app.start(), within)
        except TimeoutError:
            # Stopped either way: a stalled instance left running (its gRPC server, its
            # consumers) keeps the test process from exiting.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(service.app.stop(), 30)
            if attempt == 2:
                raise
            continue
        return service
    msg = "unreachable"  # pragma: no cover
    raise AssertionError(msg)
