"""Fixed local ports of the embedded stack that ``make run`` starts.

They are the services' settings defaults, so the table itself lives in production code
(``fixloop_shared.default_ports``); the dev tooling reads it from here.
"""

from __future__ import annotations

from fixloop_shared.default_ports import DEV_PORTS, DevPorts

__all__ = ["DEV_PORTS", "DevPorts"]
