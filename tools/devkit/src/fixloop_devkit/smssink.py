"""A local SMS provider (Twilio-shaped HTTP API) that stores every received message as JSON.

The embedded stack's stand-in for an SMS provider: ``python -m fixloop_devkit.smssink --port
8766 --dir .fixloop/sms``. It answers ``POST /2010-04-01/Accounts/{account}/Messages.json`` like
the provider: form fields ``To`` (E.164), ``From`` and ``Body``, HTTP basic auth whose user is
the account; 201 with the message (``sid``, ``status: queued`` …) as JSON, or a JSON error
``{"code", "message", "status"}``: 401 without credentials, 400 for a missing or malformed
field, 404 for another path, 413 for a body over 256 KiB.

A request repeating an ``Idempotency-Key`` already accepted gets the first answer again and is
not stored twice (also across restarts: the keys are read back from the folder). Each message is
``{"sid", "received_at", "account", "to", "from", "body", "idempotency_key"}`` in its own file.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import re
import threading
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs

from fixloop_devkit.webhooksink import (
    JsonRequestHandler,
    file_stem,
    serve_until_signalled,
    write_json_atomically,
)

API_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>[A-Za-z0-9_-]{1,64})/Messages\.json$")
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
BODY_MAX_CHARS = 1600
"""The provider's limit on a message's text."""


def _error(status: int, code: int, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"code": code, "message": message, "status": status}


class SmsOutbox:
    """The folder of received messages and the idempotency keys already answered."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._answered: dict[str, dict[str, Any]] = {}
        for path in sorted(folder.glob("*.json")):
            try:
                stored = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(stored, dict) and stored.get("idempotency_key"):
                self._answered[str(stored["idempotency_key"])] = stored

    def accept(self, message: dict[str, Any]) -> dict[str, Any]:
        """Store ``message`` unless its idempotency key was accepted already; the stored one."""
        key = message.get("idempotency_key")
        with self._lock:
            if key and key in self._answered:
                return self._answered[key]
            write_json_atomically(self.folder, f"{file_stem()}-{message['sid']}", message)
            if key:
                self._answered[key] = message
            return message


def provider_answer(message: dict[str, Any]) -> dict[str, Any]:
    """The provider's representation of an accepted message."""
    created = datetime.fromisoformat(message["received_at"])
    account = message["account"]
    return {
        "sid": message["sid"],
        "account_sid": account,
        "to": message["to"],
        "from": message["from"],
        "body": message["body"],
        "status": "queued",
        "direction": "outbound-api",
        "api_version": "2010-04-01",
        "date_created": format_datetime(created),
        "uri": f"/2010-04-01/Accounts/{account}/Messages/{message['sid']}.json",
    }


def _invalid_fields(values: dict[str, str]) -> tuple[int, dict[str, Any]] | None:
    for name, value in values.items():
        if not value:
            return _error(400, 21604 if name == "To" else 21602, f"'{name}' is required")
    if not E164.match(values["To"]):
        return _error(400, 21211, f"The 'To' number {values['To']} is not a valid phone number")
    if len(values["Body"]) > BODY_MAX_CHARS:
        return _error(400, 21617, f"The message body exceeds {BODY_MAX_CHARS} characters")
    return None


class SmsHandler(JsonRequestHandler):
    outbox: ClassVar[SmsOutbox]

    def do_POST(self) -> None:  # noqa: N802 - stdlib hook name
        match = API_PATH.match(self.path)
        if match is None:
            self.answer(*_error(404, 20404, "The requested resource was not found"))
            return
        body = self.read_body()
        if body is None:
            return
        status, data = self._handle(match["account"], body)
        self.answer(status, data)

    def _handle(self, account: str, body: bytes) -> tuple[int, dict[str, Any]]:
        values, refusal = self._read_form(account, body)
        if refusal is not None:
            return refusal
        message = {
            "sid": "SM" + uuid.uuid4().hex,
            "received_at": datetime.now(UTC).isoformat(),
            "account": account,
            "to": values["To"],
            "from": values["From"],
            "body": values["Body"],
            "idempotency_key": self.headers.get("Idempotency-Key") or None,
        }
        return 201, provider_answer(self.outbox.accept(message))

    def _read_form(
        self, account: str, body: bytes
    ) -> tuple[dict[str, str], tuple[int, dict[str, Any]] | None]:
        """The fields To, From and Body, or the provider's error for this request."""
        user = self._basic_user()
        if user is None:
            return {}, _error(401, 20003, "Authenticate: HTTP basic credentials are required")
        if user != account:
            return {}, _error(401, 20003, "Authenticate: credentials are not for this account")
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return {}, _error(400, 20001, "Content-Type must be application/x-www-form-urlencoded")
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            return {}, _error(400, 20001, "The body is not UTF-8")
        values = {name: (fields.get(name) or [""])[0] for name in ("To", "From", "Body")}
        return values, _invalid_fields(values)

    def _basic_user(self) -> str | None:
        """The user of valid HTTP basic credentials (with a non-empty password), else None."""
        scheme, _, encoded = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, colon, password = decoded.partition(":")
        return user if user and colon and password else None


def main() -> None:
    parser = argparse.ArgumentParser(description="Local SMS provider writing JSON files")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    handler = type("FolderSmsHandler", (SmsHandler,), {"outbox": SmsOutbox(args.dir)})
    serve_until_signalled(args.host, args.port, handler)


if __name__ == "__main__":
    main()
