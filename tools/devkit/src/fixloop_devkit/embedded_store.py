"""The embedded MongoDB-wire store: ``nx-27017``, with a dead client's transactions aborted.

MongoDB isolates a transaction until it commits and aborts it when its session expires, so a
client killed in the middle of a transaction leaves nothing behind. nx-27017 runs every session
of a database on one SQLite connection: the open transaction of a killed client stays open, its
writes are visible to every other session, and the next commit on that connection makes them
durable — a half-done unit of work (for example an event claimed without its effect) survives
the crash. Here the server aborts a session's open transaction once every connection that carried
it has closed, which is what MongoDB's session expiry does, only sooner.

Run as ``python -m fixloop_devkit.embedded_store`` with nx-27017's own arguments. Production
uses MongoDB and never runs this.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from typing import Any

from nx_27017 import daemon, nx_27017
from nx_27017.handler import NeoSQLiteHandler
from nx_27017.wire_protocol import _extract_session_id

log = logging.getLogger("fixloop.embedded_store")


def _session_id(msg: dict[str, Any]) -> str | None:
    for section_type, section in msg.get("sections", ()):
        if section_type == "body" and isinstance(section, dict):
            lsid = section.get("lsid")
            return _extract_session_id(lsid) if isinstance(lsid, dict) else None
    return None


class SessionReapingHandler(NeoSQLiteHandler):  # type: ignore[misc]
    """nx-27017's handler, plus: a session's transaction ends with its client's connections."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._connections_of_session: defaultdict[str, set[str]] = defaultdict(set)
        self._carried_sessions: defaultdict[str, set[str]] = defaultdict(set)
        self._carriers_lock = threading.Lock()

    def _note_carrier(self, msg: dict[str, Any]) -> None:
        conn_id = msg.get("_conn_id")
        session_id = _session_id(msg)
        if conn_id is None or session_id is None:
            return
        with self._carriers_lock:
            self._connections_of_session[session_id].add(conn_id)
            self._carried_sessions[conn_id].add(session_id)

    def handle_insert(self, msg: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self._note_carrier(msg)
        result: tuple[int, dict[str, Any]] = super().handle_insert(msg)
        return result

    def handle_command(self, msg: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        self._note_carrier(msg)
        return super().handle_command(msg, *args, **kwargs)

    def close_streams_for_connection(self, conn_id: Any) -> None:
        super().close_streams_for_connection(conn_id)
        orphaned: list[str] = []
        with self._carriers_lock:
            for session_id in self._carried_sessions.pop(conn_id, set()):
                carriers = self._connections_of_session[session_id]
                carriers.discard(conn_id)
                if not carriers:
                    del self._connections_of_session[session_id]
                    orphaned.append(session_id)
        for session_id in orphaned:
            self._abort_orphaned(session_id)

    def _abort_orphaned(self, session_id: str) -> None:
        for session in self._tx_sessions(session_id):
            try:
                session.abort_transaction()
            except Exception:  # the server must outlive a failed clean-up
                log.exception("could not abort the transaction of a disconnected client")
            else:
                log.warning("aborted the open transaction of a disconnected client")


def main() -> None:
    daemon.NeoSQLiteHandler = SessionReapingHandler
    nx_27017.main()


if __name__ == "__main__":
    main()
