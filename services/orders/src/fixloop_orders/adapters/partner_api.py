"""The partner gRPC server's life in the service: start, health that follows readiness, stop.

The orders pods' Kubernetes readiness probe is the gRPC health check, so health reports
SERVING only while the service can actually work: its store and broker answer. When either
stops answering, health turns NOT_SERVING until they are back. On shutdown health turns
NOT_SERVING first, then calls in flight get a grace period. The lifecycle itself is the edge's
:class:`~fixloop_shared.grpc_edge.hosting.GrpcApiHost`; this module says what the server carries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fixloop_orders.adapters.grpc_api import DEFAULT_QUERY_TIMEOUT_SECONDS, partner_grpc_services
from fixloop_orders.adapters.grpc_mutations import Mutations
from fixloop_orders.adapters.read_cache import ReadCache
from fixloop_orders.adapters.watch import WorkOrderWatch
from fixloop_orders.app.intake import WorkOrderIntake
from fixloop_orders.app.lifecycle import WorkOrderLifecycle
from fixloop_orders.app.queries import WorkOrderQueries
from fixloop_shared.grpc_edge.hosting import GrpcApiHost, ReadinessProbe
from fixloop_shared.grpc_edge.server import GrpcService


@dataclass(kw_only=True)
class PartnerApi(GrpcApiHost):
    """The orders gRPC server with its settings; ``start``/``stop`` are service hooks.

    Without ``lifecycle`` and ``mutations`` it serves reads only."""

    queries: WorkOrderQueries = field(kw_only=False)
    name: str = "partner gRPC API"
    query_timeout_seconds: float = DEFAULT_QUERY_TIMEOUT_SECONDS
    lifecycle: WorkOrderLifecycle | None = None
    intake: WorkOrderIntake | None = None
    mutations: Mutations | None = None
    watch: WorkOrderWatch | None = None
    cache: ReadCache[Any] | None = None

    def grpc_services(self) -> Sequence[GrpcService]:
        return partner_grpc_services(
            self.queries,
            query_timeout_seconds=self.query_timeout_seconds,
            lifecycle=self.lifecycle,
            intake=self.intake,
            mutations=self.mutations,
            watch=self.watch,
            cache=self.cache,
        )


__all__ = ["PartnerApi", "ReadinessProbe"]
