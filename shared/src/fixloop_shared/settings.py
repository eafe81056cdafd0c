"""Settings shared by every service (pydantic-settings, ``FIXLOOP_`` prefix).

Every value has a safe default for the embedded stack that ``make run`` starts; production
overrides them with environment variables (Kubernetes ConfigMaps and Secrets).
"""

from __future__ import annotations

import sys
from typing import TypeVar

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from fixloop_shared.default_ports import DEV_PORTS


class KafkaSettings(BaseSettings):
    """How to reach the Kafka-protocol broker."""

    model_config = SettingsConfigDict(
        env_prefix="FIXLOOP_KAFKA_", extra="ignore", populate_by_name=True
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

    def client_options(self) -> dict[str, object]:
        """Connection options of an aiokafka client (consumer, producer, admin) for this broker."""
        return {"bootstrap_servers": self.bootstrap}


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
            print(f"invalid setting {name}: {reason}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None
