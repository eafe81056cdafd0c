"""The settings' default ports: where the embedded stack of ``make run`` listens.

Every setting has a safe default for the embedded stack, so the services' settings read these
numbers; the dev tooling (``fixloop_devkit.devstack``) listens on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DevPorts:
    kafka: int = 19092
    smtp: int = 2525
    sms: int = 2526
    """The SMS sink (an HTTP SMS provider's API)."""
    webhooks: int = 2527
    """The webhook sink (a tenant's receiving endpoint)."""
    links: int = 8180
    """The notifications service's public links (survey, verify, unsubscribe)."""
    grpc: int = 50051
    """The orders service's gRPC API (fixloop.v1.WorkOrdersService, ContractorJobsService)."""
    contractors_grpc: int = 50052
    """The contractors service's gRPC API (fixloop.v1.DispatchService)."""
    sla_grpc: int = 50053
    """The sla service's gRPC API (fixloop.v1.SlaService)."""
    stores: dict[str, int] = field(
        default_factory=lambda: {
            "orders": 27101,
            "contractors": 27102,
            "parts": 27103,
            "sla": 27104,
            "notifications": 27105,
        }
    )
    health: dict[str, int] = field(
        default_factory=lambda: {
            "orders": 8101,
            "contractors": 8102,
            "parts": 8103,
            "sla": 8104,
            "notifications": 8105,
        }
    )

    def mongodb_uri(self, service: str) -> str:
        return f"mongodb://127.0.0.1:{self.stores[service]}/?directConnection=true"


DEV_PORTS = DevPorts()
