"""Settings shared by every service (pydantic-settings, ``FIXLOOP_`` prefix).

Every value has a safe default for the embedded stack that ``make run`` starts; production
overrides them with environment variables (Kubernetes ConfigMaps and Secrets).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal, Self, TypeVar

from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fixloop_shared.default_ports import DEV_PORTS
from fixloop_shared.kafka_security import aiokafka_security, security_problem

KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]


class KafkaSettings(BaseSettings):
    """How to reach the Kafka-protocol broker, and who to be there.

    The embedded broker needs no credentials (``PLAINTEXT``, the default). A secured cluster
    takes SASL (``FIXLOOP_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT`` or ``SASL_SSL`` with
    ``FIXLOOP_KAFKA_SASL_USERNAME``/``FIXLOOP_KAFKA_SASL_PASSWORD``, SCRAM-SHA-512 unless
    ``FIXLOOP_KAFKA_SASL_MECHANISM`` says otherwise) and/or TLS (``SSL``/``SASL_SSL``, with
    ``FIXLOOP_KAFKA_SSL_CAFILE`` for a private CA and ``FIXLOOP_KAFKA_SSL_CERTFILE``/
    ``FIXLOOP_KAFKA_SSL_KEYFILE`` for a client certificate). Every Kafka client Fixloop makes
    takes its options from :meth:`client_options` (aiokafka) or
    :func:`fixloop_shared.kafka_security.broker_security` (FastStream).
    """

    model_config = SettingsConfigDict(
        env_prefix="FIXLOOP_KAFKA_", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    bootstrap: str = Field(
        default=f"127.0.0.1:{DEV_PORTS.kafka}",
        validation_alias=AliasChoices("FIXLOOP_KAFKA_BOOTSTRAP", "KAFKA_BOOTSTRAP"),
    )
    # Real Kafka: on. The embedded Tansu broker rejects idempotent producers, so dev turns it off.
    idempotence: bool = False
    partitions: int = Field(default=3, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1, le=5)
    max_message_bytes: int = Field(default=1_048_576, ge=1024)
    fetch_max_wait_ms: int = Field(
        default=50,
        ge=1,
        le=10_000,
        description=(
            "How long a fetch waits for records when there are none. Kafka answers a waiting "
            "fetch as soon as records arrive, so 500 is right there (fewer idle fetches); the "
            "embedded broker answers only when the wait is over, so every hop between services "
            "waits up to this long."
        ),
    )

    security_protocol: KafkaSecurityProtocol = Field(
        default="PLAINTEXT",
        description="PLAINTEXT (embedded broker), SSL, SASL_PLAINTEXT or SASL_SSL.",
    )
    sasl_mechanism: KafkaSaslMechanism = "SCRAM-SHA-512"
    sasl_username: str | None = Field(default=None, min_length=1, max_length=256)
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = Field(
        default=None, description="CA certificates (PEM) the broker's certificate is checked with."
    )
    ssl_certfile: Path | None = Field(
        default=None, description="Client certificate (PEM) for TLS client authentication."
    )
    ssl_keyfile: Path | None = Field(default=None, description="Key (PEM) of ssl_certfile.")

    @model_validator(mode="after")
    def _security_is_complete(self) -> Self:
        problem = security_problem(self)
        if problem is not None:
            raise ValueError(problem)
        return self

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def client_options(self) -> dict[str, object]:
        """Connection and security options of an aiokafka client (consumer, producer, admin)
        for this broker: ``bootstrap_servers`` and what
        :func:`fixloop_shared.kafka_security.aiokafka_security` adds."""
        return {"bootstrap_servers": self.bootstrap, **aiokafka_security(self)}


class ServiceSettings(BaseSettings):
    """Base of each service's settings class; subclasses set ``env_prefix="FIXLOOP_<SERVICE>_"``."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    mongodb_uri: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    database: str = "fixloop"
    health_host: str = "127.0.0.1"
    health_port: int = Field(default=8080, ge=0, le=65535)
    log_level: str = "INFO"
    otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("FIXLOOP_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
    )
    outbox_poll_seconds: float = Field(default=0.2, gt=0, le=60)
    outbox_batch_size: int = Field(
        default=200,
        ge=1,
        le=5000,
        description="Outbox records the relay publishes, then marks sent, in one round.",
    )
    consume_batch_records: int = Field(
        default=100,
        ge=1,
        le=1000,
        description="Most records one consumer applies in one unit of work.",
    )
    outbox_retention_seconds: float = Field(
        default=7 * 24 * 3600,
        ge=0,
        le=90 * 24 * 3600,
        description=(
            "How long sent outbox records are kept after the broker acknowledged them, for "
            "`fixloop outbox republish` after a broker lost records (default 7 days)."
        ),
    )
    # One store writer at a time per process: required by the embedded store, optional on a
    # real MongoDB replica set (turn off there for more throughput per pod).
    store_serialize_writes: bool = True
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def load_settings(cls: type[SettingsT]) -> SettingsT:
    """``cls()`` from the environment; on a bad value, one line per problem naming the
    environment variable, and exit status 2 (no traceback)."""
    try:
        return cls()
    except ValidationError as exc:
        owner = next((c for c in (cls, KafkaSettings) if c.__name__ == exc.title), cls)
        prefix = str(owner.model_config.get("env_prefix", ""))
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            name = field if field.isupper() else f"{prefix}{field}".upper()
            reason = error["msg"].removeprefix("Value error, ")
            if not field:  # a rule across several settings names them in its message
                print(f"invalid settings: {reason}", file=sys.stderr)  # noqa: T201
                continue
            print(f"invalid setting {name}: {reason}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None
