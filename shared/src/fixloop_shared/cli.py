"""The ``fixloop`` command line.

Generic commands live here (``inbound``, ``dlq``); each service adds its own group through the
``fixloop.cli`` entry point group (``fixloop contractors import``, ``fixloop orders show``, ...),
so this library never imports a service.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError
from rich.console import Console
from rich.table import Table

from fixloop_shared.bus import DLQ_HEADER_PREFIX
from fixloop_shared.contracts import INBOUND_EVENT_TYPES
from fixloop_shared.envelope import STRUCTURED_CONTENT_TYPE, PoisonMessage, decode_event
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.testing import ConsumedRecord, read_topic
from fixloop_shared.topics import Service, Topic, dead_letter_topic

T = TypeVar("T")

app = typer.Typer(
    name="fixloop",
    help="Fixloop: maintenance and repair work, end to end.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
inbound_app = typer.Typer(help="Orders from external platforms.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead-letter topics: list and replay.", no_args_is_help=True)
app.add_typer(inbound_app, name="inbound")
app.add_typer(dlq_app, name="dlq")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

MAX_FILE_BYTES = 1_048_576


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def run_async(coro: Coroutine[Any, Any, T], *, bootstrap: str) -> T:
    try:
        return asyncio.run(coro)
    except (KafkaConnectionError, KafkaError, OSError) as exc:
        raise fail(f"cannot reach Kafka at {bootstrap} ({type(exc).__name__})") from None


BootstrapOption = Annotated[
    str | None,
    typer.Option("--bootstrap", help="Kafka bootstrap servers (default: FIXLOOP_KAFKA_BOOTSTRAP)"),
]


def _settings(bootstrap: str | None) -> KafkaSettings:
    settings = KafkaSettings()
    if bootstrap:
        settings = settings.model_copy(update={"bootstrap": bootstrap})
    return settings


@inbound_app.command("publish")
def inbound_publish(
    files: Annotated[list[Path], typer.Argument(help="CloudEvent JSON files (structured mode)")],
    bootstrap: BootstrapOption = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="give each event a new id and the current time")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="validate only")] = False,
) -> None:
    """Validate external order events and publish them to the inbound topic."""
    settings = _settings(bootstrap)
    records: list[tuple[bytes, str, str]] = []
    problems = 0
    for path in files:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise fail(f"{path}: cannot read ({exc.strerror})") from None
        if len(raw) > MAX_FILE_BYTES:
            raise fail(f"{path}: {len(raw)} bytes, the limit is {MAX_FILE_BYTES}")
        if fresh:
            raw = _refresh(path, raw)
        try:
            event = decode_event(raw, [], INBOUND_EVENT_TYPES, accept_structured=True)
        except PoisonMessage as exc:
            problems += 1
            for problem in exc.message.split("; "):
                err.print(f"{path}: invalid ({exc.reason}): {problem}", highlight=False)
            continue
        payload = event.payload
        external_id = getattr(payload, "external_id", event.envelope.subject)
        key = f"{event.envelope.tenant}/{event.envelope.source}/{external_id}"
        records.append((raw, key, f"{path.name} (tenant {event.envelope.tenant}, {external_id})"))
    if problems:
        raise typer.Exit(1)
    if dry_run:
        for _, _, label in records:
            out.print(f"valid: {label}")
        return
    run_async(_publish(settings, records), bootstrap=settings.bootstrap)


def _refresh(path: Path, raw: bytes) -> bytes:
    import uuid

    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise fail(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise fail(f"{path}: a CloudEvent must be a JSON object")
    doc["id"] = str(uuid.uuid4())
    doc["time"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    doc.pop("correlationid", None)
    return json.dumps(doc).encode()


async def _publish(settings: KafkaSettings, records: list[tuple[bytes, str, str]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap,
        acks="all",
        enable_idempotence=settings.idempotence,
        request_timeout_ms=10_000,
    )
    await producer.start()
    try:
        for value, key, label in records:
            meta = await producer.send_and_wait(
                Topic.WORKORDERS_INBOUND.value,
                value,
                key=key.encode(),
                headers=[("content-type", STRUCTURED_CONTENT_TYPE.encode())],
            )
            out.print(
                f"published {label} to {meta.topic} partition {meta.partition} "
                f"offset {meta.offset}",
                highlight=False,
            )
    finally:
        await producer.stop()


def _services(service: str | None) -> list[str]:
    if service is None:
        return [s.value for s in Service]
    try:
        return [Service(service).value]
    except ValueError:
        names = ", ".join(s.value for s in Service)
        raise fail(f"unknown service {service!r}; choose one of: {names}", 2) from None


async def _read_dead_letters(
    settings: KafkaSettings, services: list[str], timeout: float
) -> list[tuple[str, ConsumedRecord]]:
    found: list[tuple[str, ConsumedRecord]] = []
    for service in services:
        records = await read_topic(settings.bootstrap, dead_letter_topic(service), timeout=timeout)
        found.extend((service, r) for r in records)
    return found


ServiceOption = Annotated[
    str | None, typer.Option("--service", "-s", help="one service (default: all five)")
]


@dlq_app.command("list")
def dlq_list(
    service: ServiceOption = None,
    bootstrap: BootstrapOption = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
    wait: Annotated[float, typer.Option(help="seconds to read each topic", min=0.2)] = 2.0,
) -> None:
    """List dead-lettered messages with the reason each was rejected."""
    settings = _settings(bootstrap)
    found = run_async(
        _read_dead_letters(settings, _services(service), wait), bootstrap=settings.bootstrap
    )[-limit:]
    if as_json:
        for svc, record in found:
            sys.stdout.write(json.dumps(_dlq_summary(svc, record)) + "\n")
        return
    if not found:
        out.print("no dead letters")
        return
    table = Table(title="Dead letters")
    for column in ("id", "reason", "original", "dead-lettered at", "message"):
        table.add_column(column, overflow="fold")
    for svc, record in found:
        s = _dlq_summary(svc, record)
        table.add_row(s["id"], s["reason"], s["original"], s["time"], s["message"][:160])
    out.print(table)


def _dlq_summary(service: str, record: ConsumedRecord) -> dict[str, str]:
    h = record.headers
    p = DLQ_HEADER_PREFIX
    return {
        "id": f"{service}/{record.partition}/{record.offset}",
        "service": service,
        "reason": h.get(f"{p}reason", "?"),
        "exception": h.get(f"{p}exception", "?"),
        "message": h.get(f"{p}message", ""),
        "original": (
            f"{h.get(f'{p}original_topic', '?')}[{h.get(f'{p}original_partition', '?')}]"
            f"@{h.get(f'{p}original_offset', '?')}"
        ),
        "time": h.get(f"{p}time", ""),
    }


@dlq_app.command("replay")
def dlq_replay(
    service: Annotated[str, typer.Option("--service", "-s", help="whose dead letters")],
    ids: Annotated[
        list[str] | None, typer.Option("--id", help="service/partition/offset from `dlq list`")
    ] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="replay every dead letter")] = False,
    bootstrap: BootstrapOption = None,
    wait: Annotated[float, typer.Option(help="seconds to read the topic", min=0.2)] = 2.0,
) -> None:
    """Publish dead letters back to their original topic (consumers are idempotent)."""
    settings = _settings(bootstrap)
    services = _services(service)
    if not ids and not replay_all:
        raise fail("say which dead letters to replay: --id SERVICE/PARTITION/OFFSET or --all", 2)
    found = run_async(_read_dead_letters(settings, services, wait), bootstrap=settings.bootstrap)
    by_id = {_dlq_summary(svc, r)["id"]: r for svc, r in found}
    wanted = list(by_id) if replay_all else list(ids or [])
    unknown = [i for i in wanted if i not in by_id]
    if unknown:
        raise fail(f"no dead letter with id {', '.join(unknown)}", 2)
    run_async(_replay(settings, [(i, by_id[i]) for i in wanted]), bootstrap=settings.bootstrap)


async def _replay(settings: KafkaSettings, records: list[tuple[str, ConsumedRecord]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap, acks="all", enable_idempotence=settings.idempotence
    )
    await producer.start()
    try:
        for record_id, record in records:
            topic = record.headers.get(f"{DLQ_HEADER_PREFIX}original_topic")
            if not topic:
                err.print(f"{record_id}: no original topic header; skipped")
                continue
            headers = [
                (k, v.encode())
                for k, v in record.headers.items()
                if not k.startswith(DLQ_HEADER_PREFIX)
            ]
            headers.append(("fixloop_replayed_from", record_id.encode()))
            await producer.send_and_wait(
                topic, record.value or b"", key=record.key, headers=headers
            )
            out.print(f"replayed {record_id} to {topic}", highlight=False)
    finally:
        await producer.stop()


def _load_service_commands() -> None:
    for entry in entry_points(group="fixloop.cli"):
        try:
            sub_app = entry.load()
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not break the CLI
            err.print(f"warning: cannot load `fixloop {entry.name}` commands ({exc})")
            continue
        app.add_typer(sub_app, name=entry.name)


def main() -> None:
    """Entry point: usage errors become one line on stderr and exit code 2, never a traceback."""
    _load_service_commands()
    try:
        result = app(standalone_mode=False)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except typer.TyperException as exc:
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        message = exc.format_message()
        if message:
            err.print(f"error: {message}{hint}", highlight=False)
        sys.exit(exc.exit_code)
    sys.exit(result if isinstance(result, int) else 0)
