"""Settings of the orders service (environment variables ``FIXLOOP_ORDERS_*``)."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from fixloop_shared.contracts.types import SourcePlatform, TenantId
from fixloop_shared.default_ports import DEV_PORTS
from fixloop_shared.grpc_edge.rate_limit import TenantRateLimit
from fixloop_shared.settings import ServiceSettings


class OrdersSettings(ServiceSettings):
    """Every value has a default that works with the embedded stack (``make run``).

    Maps are JSON in the environment, e.g.
    ``FIXLOOP_ORDERS_API_KEYS='{"partner-key": "tenant-a"}'`` and
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
        default="50/second;1000/minute",
        max_length=200,
        description=(
            "Calls each partner tenant may make, in moving windows (e.g. '50/second;1000/minute')."
            " Beyond it calls end with RESOURCE_EXHAUSTED and a RetryInfo. Empty: unlimited."
        ),
    )
    grpc_stop_grace_seconds: float = Field(default=5.0, ge=0, le=60)
    grpc_health_interval_seconds: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="How often gRPC health re-checks that the store and broker answer.",
    )
    api_keys: dict[str, TenantId] = Field(
        default_factory=dict,
        repr=False,
        description="Partner API key -> the tenant it belongs to (a secret).",
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

    @field_validator("grpc_rate_limit")
    @classmethod
    def _rate_limit_parses(cls, value: str) -> str:
        if value.strip():
            TenantRateLimit(value)  # ValueError names what it could not read
        return value.strip()


__all__ = ["OrdersSettings"]
