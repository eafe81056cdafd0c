"""Fixtures that start real servers: the embedded Kafka-protocol broker and MongoDB-wire store,
or use the ones named by ``KAFKA_BOOTSTRAP`` / ``MONGODB_URI``."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from fixloop_devkit.testing import start_embedded_broker, start_embedded_store, unique
from fixloop_shared.store import MongoClient, make_client


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if env := os.environ.get("KAFKA_BOOTSTRAP"):
        yield env
        return
    proc, bootstrap = start_embedded_broker(tmp_path_factory.mktemp("kafka"))
    try:
        yield bootstrap
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def mongodb_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if env := os.environ.get("MONGODB_URI"):
        yield env
        return
    proc, uri = start_embedded_store(tmp_path_factory.mktemp("mongo"))
    try:
        yield uri
    finally:
        proc.stop()


@pytest.fixture
async def mongo_client(mongodb_uri: str) -> AsyncIterator[MongoClient]:
    client = make_client(mongodb_uri, app_name="fixloop-tests")
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def database_name() -> str:
    """A fresh database per test, so tests never see each other's documents."""
    return unique("test").replace("-", "_")


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
