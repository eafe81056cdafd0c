"""Fixtures shared by the integration tests (the servers themselves come from tests/conftest)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.integration.receivers import ScriptedEndpoint


@pytest.fixture
async def scripted() -> AsyncIterator[ScriptedEndpoint]:
    """A webhook endpoint answering as its script says (then 200)."""
    endpoint = ScriptedEndpoint(script=[])
    server = await asyncio.start_server(endpoint.handle, "127.0.0.1", 0)
    endpoint.port = server.sockets[0].getsockname()[1]
    try:
        yield endpoint
    finally:
        server.close()
