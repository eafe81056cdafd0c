"""Settings of the orders service (environment variables ``FIXLOOP_ORDERS_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from fixloop_shared.contracts.types import SourcePlatform, TenantId
from fixloop_shared.default_ports import DEV_PORTS
from fixloop_shared.grpc_edge.rate_limit import RateLimitSetting
from fixloop_shared.grpc_edge.settings import (
    GrpcApiSettings,
    grpc_port_field,
    grpc_rate_limit_field,
)
from fixloop_shared.topics import is_platform_name


class OrdersSettings(GrpcApiSettings):
    """Every value has a default that works with the embedded stack (``make run``); the partner
    gRPC API's settings (``FIXLOOP_ORDERS_GRPC_*``, ``FIXLOOP_ORDERS_PRINCIPALS``) are the edge's
    (:class:`~fixloop_shared.grpc_edge.settings.GrpcApiSettings`).

    Lists and maps are JSON in the environment, e.g.
    ``FIXLOOP_ORDERS_PRINCIPALS='[{"id": "acme-erp", "kind": "partner", "tenant": "acme",
    "key_hashes": ["sha256:…"]}]'`` (``fixloop keys new`` prints such an entry) and
    ``FIXLOOP_ORDERS_SOURCE_TENANTS='{"https://fieldhub.example.com/orders": ["tenant-a"]}'``.
    """

    model_config = SettingsConfigDict(
        env_prefix="FIXLOOP_ORDERS_", extra="ignore", populate_by_name=True
    )

    mongodb_uri: str = DEV_PORTS.mongodb_uri("orders")
    database: str = "fixloop_orders"
    health_port: int = Field(default=DEV_PORTS.health["orders"], ge=0, le=65535)

    grpc_port: int = grpc_port_field(
        DEV_PORTS.grpc,
        "Port of the partner gRPC API (fixloop.v1.WorkOrdersService, "
        "fixloop.v1.ContractorJobsService).",
    )
    grpc_rate_limit: RateLimitSetting = grpc_rate_limit_field("100/second;3000/minute")
    source_tenants: dict[SourcePlatform, list[TenantId]] = Field(
        default_factory=dict,
        description=(
            "Source platform (the CloudEvents source of inbound orders: a URI-reference such as "
            "'https://fieldhub.example.com/orders', 'urn:fixloop:fieldhub' or 'fieldhub', matched "
            "as the exact string) -> the tenants it may submit work orders for. Empty: no "
            "platform may submit any. A platform named like a DNS label ('fieldhub') also gets "
            "its own inbound topic, fixloop.workorders.inbound.<platform>.v1, where the platform "
            "is the topic's whatever the event's source says (the way for secured clusters); "
            "on the shared fixloop.workorders.inbound.v1 (unsecured clusters only) the platform "
            "is the event's source."
        ),
    )

    reopen_window_days: float = Field(
        default=14,
        gt=0,
        le=3650,
        description="How long after closing a requester may still reject the work (reopen).",
    )
    verify_after_hours: float = Field(
        default=72,
        ge=0,
        le=24 * 365,
        description="Completed work without the requester's answer is verified after this.",
    )
    close_after_seconds: float = Field(
        default=0,
        ge=0,
        le=3600 * 24 * 365,
        description="A verified order is closed this long after verification.",
    )
    archive_after_days: float = Field(
        default=30,
        ge=0,
        le=3650,
        description="A closed or cancelled order moves to the archive after this (still readable).",
    )
    lifecycle_timer_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    read_cache_seconds: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description=(
            "The partner API's reads are answered from memory until what they show changes, and "
            "for at most this long; 0 answers every read from the store."
        ),
    )
    read_cache_max_mib: int = Field(
        default=64, ge=1, le=4096, description="Most memory the kept read answers take."
    )
    read_cache_settle_seconds: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description=(
            "How long after another service's event about an order its reads skip the cache "
            "(another pod may still be writing it into the timeline)."
        ),
    )

    @property
    def platforms(self) -> list[str]:
        """The bound platforms with their own inbound topic (named like a DNS label)."""
        return sorted(source for source in self.source_tenants if is_platform_name(source))


__all__ = ["OrdersSettings"]
