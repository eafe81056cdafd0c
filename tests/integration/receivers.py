"""Local receivers for the notification channels' tests: the devkit's sinks as processes, and a
scripted webhook endpoint that fails in the ways real endpoints do."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fixloop_devkit.devstack import free_port, port_open


@dataclass
class Sink:
    proc: subprocess.Popen[bytes]
    port: int
    folder: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stored(self) -> list[dict[str, Any]]:
        return [json.loads(path.read_text()) for path in sorted(self.folder.glob("*.json"))]

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=10)


def start_sink(module: str, folder: Path) -> Sink:
    port = free_port()
    log = folder.with_suffix(".log")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "--port", str(port), "--dir", str(folder)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 15
    while not port_open(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"{module} did not start: {log.read_text(errors='replace')}")
        time.sleep(0.05)
    return Sink(proc, port, folder)


@dataclass
class ScriptedEndpoint:
    """A webhook receiver answering each request as scripted: a status code, or ``"hang"``
    (no answer until the sender gives up). Requests beyond the script get 200."""

    script: list[int | str]
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode().split("\r\n")[1:]
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append((headers, body))
            answer = self.script.pop(0) if self.script else 200
            if answer == "hang":
                await reader.read()  # until the sender gives up and closes the connection
                return
            writer.write(
                f"HTTP/1.1 {answer} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno".encode()
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
