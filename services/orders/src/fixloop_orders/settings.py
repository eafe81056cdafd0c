"""Settings of the orders service (environment variables ``FIXLOOP_ORDERS_*``)."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from fixloop_shared.contracts.types import SourcePlatform, TenantId
from fixloop_shared.default_ports import DEV_PORTS
from fixloop_shared.grpc_edge.principals import PrincipalSpecs
from fixloop_shared.grpc_edge.rate_limit import parse_rate_limit
from fixloop_shared.settings import ServiceSettings


class OrdersSettings(ServiceSettings):
    """Every value has a default that works with the embedded stack (``make run``).

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

    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(default=DEV_PORTS.grpc, ge=0, le=65535)
    grpc_reflection: bool = Field(
        default=True,
        description=(
            "Serve gRPC server reflection. Handy in development (grpcurl, IDEs); production "
            "should turn it off (FIXLOOP_ORDERS_GRPC_REFLECTION=false): the published protos "
            "are the contract."
        ),
    )
    grpc_query_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    grpc_rate_limit: str = Field(
        default="100/second;3000/minute",
        max_length=200,
        description=(
            "Calls each principal may make, in moving windows (e.g. '100/second;3000/minute'),"
            " unless the principal has a limit of its own. Beyond it calls end with"
            " RESOURCE_EXHAUSTED and a RetryInfo. Empty: unlimited."
        ),
    )
    grpc_stop_grace_seconds: float = Field(default=5.0, ge=0, le=60)
    grpc_health_interval_seconds: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="How often gRPC health re-checks that the store and broker answer.",
    )
    principals: PrincipalSpecs = Field(
        default_factory=list,
        repr=False,
        description=(
            "Who may call the gRPC API: a JSON list of principals (id, kind partner|contractor|"
            "operator, tenant or contractor_id, key_hashes). Keys are stored only as hashes "
            "('sha256:<hex>', from `fixloop keys new` / `fixloop keys hash`); two hashes while a "
            "key is rotated. Empty: every gRPC call is denied."
        ),
    )
    source_tenants: dict[SourcePlatform, list[TenantId]] = Field(
        default_factory=dict,
        description=(
            "Source platform (the CloudEvents source of inbound orders: a URI-reference such as "
            "'https://fieldhub.example.com/orders', 'urn:fixloop:fieldhub' or 'fieldhub', matched "
            "as the exact string) -> the tenants it may submit work orders for. Empty: no "
            "platform may submit any."
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

    @field_validator("grpc_rate_limit")
    @classmethod
    def _rate_limit_parses(cls, value: str) -> str:
        if value.strip():
            parse_rate_limit(value)  # ValueError names what it could not read
        return value.strip()


__all__ = ["OrdersSettings"]
