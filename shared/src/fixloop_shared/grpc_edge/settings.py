"""Settings of a service's gRPC API: where it listens, who may call and how often, how it stops.

:class:`GrpcApiSettings` adds them to :class:`~fixloop_shared.settings.ServiceSettings`; under the
service's ``env_prefix`` they are ``FIXLOOP_<SERVICE>_GRPC_*`` and ``FIXLOOP_<SERVICE>_PRINCIPALS``.
The port and the default rate limit are each service's own: a subclass declares ``grpc_port`` with
:func:`grpc_port_field` and ``grpc_rate_limit`` (a
:data:`~fixloop_shared.grpc_edge.rate_limit.RateLimitSetting`) with :func:`grpc_rate_limit_field`.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from fixloop_shared.grpc_edge.principals import PrincipalSpecs
from fixloop_shared.settings import ServiceSettings


def grpc_port_field(default: int, description: str) -> Any:
    """A service's ``grpc_port`` setting: the port its gRPC API listens on (0: a free one)."""
    return Field(default=default, ge=0, le=65535, description=description)


def grpc_rate_limit_field(default: str) -> Any:
    """A service's ``grpc_rate_limit`` setting, ``default`` unless configured."""
    return Field(
        default=default,
        max_length=200,
        description=(
            f"Calls each principal may make, in moving windows (e.g. {default!r}), unless the"
            " principal has a limit of its own. Beyond it calls end with RESOURCE_EXHAUSTED and"
            " a RetryInfo. Empty: unlimited."
        ),
    )


class GrpcApiSettings(ServiceSettings):
    """Base of the settings of a service that serves a gRPC API (see the module)."""

    grpc_host: str = "127.0.0.1"
    grpc_reflection: bool = Field(
        default=True,
        description=(
            "Serve gRPC server reflection. Handy in development (grpcurl, IDEs); production "
            "should turn it off (FIXLOOP_<SERVICE>_GRPC_REFLECTION=false): the published protos "
            "are the contract."
        ),
    )
    grpc_query_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="The most a read may take; less when the caller's deadline is nearer.",
    )
    grpc_stop_grace_seconds: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description="On shutdown, how long calls in flight may still finish.",
    )
    grpc_health_interval_seconds: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description=(
            "How often gRPC health re-checks that what the service needs to answer (its store; "
            "its broker, where it needs one) answers."
        ),
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


__all__ = ["GrpcApiSettings", "grpc_port_field", "grpc_rate_limit_field"]
