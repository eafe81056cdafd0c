"""Read the status file the embedded stack's supervisor writes (``fixloop status``).

The supervisor (``python -m fixloop_devkit.devstack run``, what ``make run`` starts) writes
``<data-dir>/status.json`` atomically whenever anything changes::

    {"supervisor": {"pid": 123, "state": "running", "started_at": "...", "updated_at": "...",
                    "data_dir": "..."},
     "components": [{"name": "kafka", "pid": 124, "state": "running", "restarts": 0,
                     "last_exit": null, "last_exit_at": null, "listens_on": "...",
                     "log": "..."}, ...]}

The file is plain JSON so that this command reads it without importing the dev tooling (the CLI
is also an operator's tool against production, where the devkit is not installed).
``tests/integration/test_devstack.py`` runs ``fixloop status`` against a real supervisor.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

STATUS_FILE = "status.json"
SUPERVISOR_MODULE = "devstack"
"""A word on the supervisor's command line; a live pid without it was reused by another process."""


def read_status(data_dir: Path) -> dict[str, Any] | None:
    """What the supervisor under ``data_dir`` last wrote, or None if it never ran there."""
    try:
        status = json.loads((data_dir / STATUS_FILE).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return status if isinstance(status, dict) else None


def supervisor_alive(status: Mapping[str, Any]) -> bool:
    """Whether the supervisor that wrote ``status`` is still running."""
    supervisor = status.get("supervisor", {})
    if not isinstance(supervisor, Mapping):
        return False
    pid = supervisor.get("pid")
    if not isinstance(pid, int) or supervisor.get("state") == "stopped":
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    command = _process_command_line(pid)
    return command is None or SUPERVISOR_MODULE in command  # else the pid was reused


def _process_command_line(pid: int) -> str | None:
    """The command line of a live process, or None if it cannot be read."""
    with contextlib.suppress(OSError):
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return raw.replace(b"\0", b" ").decode(errors="replace")
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        result = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return result.stdout.strip() if result.returncode == 0 else None
    return None
