"""A local HTTP receiver that stores every webhook request (headers and body) as a JSON file.

The embedded stack's stand-in for a tenant's webhook endpoint: ``python -m
fixloop_devkit.webhooksink --port 8765 --dir .fixloop/webhooks``. Every POST, on any path, is
answered 200 and written to the folder as ``{"received_at", "method", "path", "headers",
"body"}`` (header names lower-case; the body as text, exactly as received, so its signature can
be checked). People and tests read what was delivered from the folder.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

MAX_BODY_BYTES = 256 * 1024
"""Requests with a larger body are refused (413)."""
READ_TIMEOUT_SECONDS = 30.0


def write_json_atomically(folder: Path, name: str, data: Any) -> Path:
    """Write ``data`` as ``folder/name.json`` so a reader never sees a partial file."""
    final = folder / f"{name}.json"
    tmp = folder / f".{name}.tmp"
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    tmp.replace(final)
    return final


def file_stem() -> str:
    """A file name that sorts in arrival order and never repeats."""
    return f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}-{uuid.uuid4().hex[:8]}"


class JsonRequestHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with a bounded request body and JSON answers."""

    protocol_version = "HTTP/1.1"
    timeout = READ_TIMEOUT_SECONDS
    server_version = "FixloopSink/1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: what was received is in the folder."""

    def answer(self, status: int, data: Any) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def read_body(self) -> bytes | None:
        """The request body; None after answering 411/413/400 when it cannot be read."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            self.answer(411, {"message": "a Content-Length is required"})
            return None
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self.answer(400, {"message": "invalid Content-Length"})
            return None
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self.answer(413, {"message": f"body larger than {MAX_BODY_BYTES} bytes"})
            return None
        return self.rfile.read(length)

    def do_GET(self) -> None:
        self.answer(405, {"message": "POST only"})

    do_PUT = do_DELETE = do_PATCH = do_GET  # noqa: N815


class WebhookHandler(JsonRequestHandler):
    folder: ClassVar[Path]

    def do_POST(self) -> None:
        body = self.read_body()
        if body is None:
            return
        record = {
            "received_at": datetime.now(UTC).isoformat(),
            "method": self.command,
            "path": self.path,
            "headers": {name.lower(): value for name, value in self.headers.items()},
            "body": body.decode("utf-8", "replace"),
        }
        write_json_atomically(self.folder, file_stem(), record)
        self.answer(200, {"received": True})


STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def serve_until_signalled(host: str, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
    """Serve ``handler`` on ``host:port`` until SIGTERM or SIGINT, then stop accepting, close
    and return.

    The signals are blocked before the port opens and then waited for (``sigwait``): one that
    arrives at any moment after the port is open ends the server, and no handler runs in the
    middle of the serving thread's locks."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    worker = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2})
    worker.start()
    try:
        signal.sigwait(STOP_SIGNALS)
    finally:
        server.shutdown()
        worker.join()
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Local webhook receiver writing JSON files")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    folder: Path = args.dir
    folder.mkdir(parents=True, exist_ok=True)
    handler = type("FolderWebhookHandler", (WebhookHandler,), {"folder": folder})
    serve_until_signalled(args.host, args.port, handler)


if __name__ == "__main__":
    main()
