"""A local SMTP server (aiosmtpd) that stores every received message as an .eml file.

The embedded stack's stand-in for a mail relay: ``python -m fixloop_devkit.mailsink --port 2525
--dir .fixloop/mail``. People and tests read what was sent from the folder.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class FolderHandler:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802, ARG002 - aiosmtpd hook name
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        final = self.folder / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        tmp = final.with_suffix(".tmp")
        data = envelope.original_content or envelope.content
        tmp.write_bytes(data if isinstance(data, bytes) else str(data).encode())
        tmp.rename(final)
        return "250 Message accepted for delivery"


def main() -> None:
    parser = argparse.ArgumentParser(description="Local SMTP sink writing .eml files")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    controller = Controller(FolderHandler(args.dir), hostname=args.host, port=args.port)
    controller.start()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        loop.run_until_complete(stop.wait())
    finally:
        controller.stop()
        loop.close()


if __name__ == "__main__":
    main()
