"""The ``fixloop`` command line.

Generic commands live here (``inbound``, ``dlq``, ``outbox``, ``status``, ``keys``); each
service adds its own group through the ``fixloop.cli`` entry point group (``fixloop contractors
import``, ``fixloop orders show``, ...), so this package never imports a service. It imports
neither the dev tooling nor test helpers: ``status`` reads the embedded stack's status file
through :mod:`fixloop_cli.stack_status`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError
from rich.console import Console
from rich.table import Table

from fixloop_shared.contracts import INBOUND_EVENT_TYPES
from fixloop_shared.envelope import STRUCTURED_CONTENT_TYPE, decode_event
from fixloop_shared.errors import PoisonMessage
from fixloop_shared.grpc_edge.principals import PrincipalKind
from fixloop_shared.settings import KafkaSettings
from fixloop_shared.topic_reader import ConsumedRecord, read_topic
from fixloop_shared.topics import (
    PLATFORM_NAME_PATTERN,
    Service,
    Topic,
    dead_letter_topic,
    inbound_topic,
    is_platform_name,
)

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
    except (KafkaConnectionError, OSError) as exc:
        raise fail(f"cannot reach Kafka at {bootstrap} ({type(exc).__name__})") from None
    except KafkaError as exc:  # refused credentials, missing rights, ...
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise fail(f"Kafka at {bootstrap} refused ({detail})") from None


BootstrapOption = Annotated[
    str | None,
    typer.Option("--bootstrap", help="Kafka bootstrap servers (default: FIXLOOP_KAFKA_BOOTSTRAP)"),
]


def _settings(bootstrap: str | None) -> KafkaSettings:
    """The broker and credentials from ``FIXLOOP_KAFKA_*`` (``--bootstrap`` wins); a secured
    cluster takes ``FIXLOOP_KAFKA_SECURITY_PROTOCOL``, ``FIXLOOP_KAFKA_SASL_USERNAME``, ..."""
    from pydantic import ValidationError

    try:
        settings = KafkaSettings()
    except ValidationError as exc:
        for error in exc.errors():
            field = str(error["loc"][0]).upper() if error["loc"] else ""
            name = f" FIXLOOP_KAFKA_{field}" if field else "s"
            reason = error["msg"].removeprefix("Value error, ")
            err.print(f"invalid setting{name}: {reason}", highlight=False)
        raise typer.Exit(2) from None
    if bootstrap:
        settings = settings.model_copy(update={"bootstrap": bootstrap})
    return settings


@inbound_app.command("publish")
def inbound_publish(
    files: Annotated[list[Path], typer.Argument(help="CloudEvent JSON files (structured mode)")],
    *,
    bootstrap: BootstrapOption = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="give each event a new id and the current time")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="validate only")] = False,
    platform: Annotated[
        str | None,
        typer.Option(
            "--platform",
            help="publish as this platform, to its own topic fixloop.workorders.inbound."
            "<platform>.v1 (default: each event's source, when it is a platform name)",
        ),
    ] = None,
    shared_topic: Annotated[
        bool,
        typer.Option(
            "--shared-topic",
            help=f"publish to the shared {Topic.WORKORDERS_INBOUND.value} (unsecured clusters "
            "only; the platform is then the event's source)",
        ),
    ] = False,
) -> None:
    """Validate external order events and publish them to the inbound topic of their platform.

    Each platform has its own topic, which only its Kafka principal may write; the orders
    service takes the platform from the topic. An event whose source is not a platform name
    (a URI) needs --platform or --shared-topic.
    """
    settings = _settings(bootstrap)
    if platform is not None and shared_topic:
        raise fail("--platform and --shared-topic exclude each other", 2)
    if platform is not None and not is_platform_name(platform):
        raise fail(f"--platform {platform!r} is not a platform name ({PLATFORM_NAME_PATTERN})", 2)
    records: list[tuple[bytes, str, str, str]] = []
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
        source = event.envelope.source
        topic = _inbound_topic_of(source, platform=platform, shared_topic=shared_topic)
        if topic is None:
            problems += 1
            err.print(
                f"{path}: source {source!r} is not a platform name ({PLATFORM_NAME_PATTERN}); "
                "say which platform's topic with --platform NAME (or --shared-topic)",
                highlight=False,
            )
            continue
        key = f"{event.envelope.tenant}/{platform or source}/{external_id}"
        label = f"{path.name} (tenant {event.envelope.tenant}, {external_id})"
        records.append((raw, key, label, topic))
    if problems:
        raise typer.Exit(1)
    if dry_run:
        for _, _, label, topic in records:
            out.print(f"valid: {label} for {topic}", highlight=False)
        return
    run_async(_publish(settings, records), bootstrap=settings.bootstrap)


def _inbound_topic_of(source: str, *, platform: str | None, shared_topic: bool) -> str | None:
    """Where an event of ``source`` goes: the shared topic if asked, else the platform's own
    (``platform``, or the source when it is a platform name); None when that is not known."""
    if shared_topic:
        return Topic.WORKORDERS_INBOUND.value
    if platform is not None:
        return inbound_topic(platform)
    return inbound_topic(source) if is_platform_name(source) else None


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


async def _publish(settings: KafkaSettings, records: list[tuple[bytes, str, str, str]]) -> None:
    producer = AIOKafkaProducer(
        **settings.client_options(),
        acks="all",
        enable_idempotence=settings.idempotence,
        request_timeout_ms=10_000,
    )
    await producer.start()
    try:
        for value, key, label, topic in records:
            meta = await producer.send_and_wait(
                topic,
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
        records = await read_topic(settings, dead_letter_topic(service), timeout=timeout)
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
    from fixloop_shared.bus import DLQ_HEADER_PREFIX  # the bus (FastStream) loads slowly

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
    from fixloop_shared.bus import DLQ_HEADER_PREFIX

    producer = AIOKafkaProducer(
        **settings.client_options(), acks="all", enable_idempotence=settings.idempotence
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


@app.command("status")
def status(
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="the folder `make run` uses (default: .fixloop)")
    ] = Path(".fixloop"),
    as_json: Annotated[bool, typer.Option("--json", help="the raw status.json")] = False,
) -> None:
    """The embedded stack of `make run`: each component's pid, state, restarts and last exit."""
    from fixloop_cli.stack_status import read_status, supervisor_alive

    found = read_status(data_dir)
    if found is None:
        raise fail(f"no embedded stack has run under {data_dir} (no {data_dir}/status.json)")
    alive = supervisor_alive(found)
    if as_json:
        sys.stdout.write(json.dumps({**found, "supervisor_alive": alive}) + "\n")
        raise typer.Exit(0 if alive else 1)
    sup = found.get("supervisor", {})
    title = (
        f"Embedded stack under {data_dir}: supervisor pid {sup.get('pid')}, {sup.get('state')}"
        if alive
        else f"Embedded stack under {data_dir}: NOT RUNNING (last known state, "
        f"supervisor {sup.get('state')}, updated {sup.get('updated_at')})"
    )
    table = Table(title=title, title_justify="left")
    for column in ("component", "pid", "state", "restarts", "last exit", "listens on"):
        table.add_column(column, overflow="fold")
    for row in found.get("components", []):
        last = row.get("last_exit") or ""
        if last and row.get("last_exit_at"):
            last = f"{last} at {row['last_exit_at']}"
        table.add_row(
            str(row.get("name")),
            str(row.get("pid") or "-"),
            str(row.get("state")),
            str(row.get("restarts", 0)),
            last,
            str(row.get("listens_on", "")),
        )
    out.print(table)
    if not alive:
        raise typer.Exit(1)


# --- fixloop outbox: republish retained records after a broker lost them -----------------------

outbox_app = typer.Typer(
    help="A service's outbox: republish records a broker lost.", no_args_is_help=True
)
app.add_typer(outbox_app, name="outbox")

if TYPE_CHECKING:
    from fixloop_shared.outbox import RepublishResult, RepublishWindow
    from fixloop_shared.settings import ServiceSettings


def _service_store_settings(service: str) -> ServiceSettings:
    """The service's own store and broker settings, read as the service reads them:
    ``FIXLOOP_<SERVICE>_MONGODB_URI`` / ``_DATABASE`` (embedded-stack defaults) and
    ``FIXLOOP_KAFKA_*`` — without importing the service."""
    from pydantic_settings import SettingsConfigDict

    from fixloop_shared.default_ports import DEV_PORTS
    from fixloop_shared.settings import ServiceSettings, load_settings

    class StoreOfService(ServiceSettings):
        model_config = SettingsConfigDict(
            env_prefix=f"FIXLOOP_{service.upper()}_", extra="ignore", populate_by_name=True
        )
        mongodb_uri: str = DEV_PORTS.mongodb_uri(service)
        database: str = f"fixloop_{service}"

    return load_settings(StoreOfService)


def _moment_option(name: str, text: str) -> datetime:
    from fixloop_shared.outbox import parse_moment

    try:
        return parse_moment(text)
    except ValueError as exc:
        raise fail(f"{name}: {exc}", 2) from None


@outbox_app.command("republish")
def outbox_republish(
    *,
    service: Annotated[str, typer.Option("--service", "-s", help="whose outbox")],
    since: Annotated[
        str,
        typer.Option(help="records created since: RFC 3339 time with zone, or a duration (2h)"),
    ],
    until: Annotated[
        str | None, typer.Option(help="and created before this (same forms; default: now)")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="only count the records")] = False,
    bootstrap: BootstrapOption = None,
    mongodb_uri: Annotated[
        str | None,
        typer.Option(
            "--mongodb-uri", help="the service's store (default: FIXLOOP_<S>_MONGODB_URI)"
        ),
    ] = None,
    database: Annotated[
        str | None, typer.Option(help="its database (default: FIXLOOP_<S>_DATABASE)")
    ] = None,
) -> None:
    """Publish a service's sent events again, in original order, with their original key,
    headers and event id (consumers are idempotent and drop the copies they already had)."""
    from fixloop_shared.outbox import RepublishWindow

    name = _services(service)[0]
    start = _moment_option("--since", since)
    end = _moment_option("--until", until) if until is not None else None
    if end is not None and end <= start:
        raise fail(
            f"--until ({end.isoformat()}) must be later than --since ({start.isoformat()})", 2
        )
    settings = _service_store_settings(name)
    updates: dict[str, Any] = {}
    if mongodb_uri:
        updates["mongodb_uri"] = mongodb_uri
    if database:
        updates["database"] = database
    if bootstrap:
        updates["kafka"] = settings.kafka.model_copy(update={"bootstrap": bootstrap})
    settings = settings.model_copy(update=updates)
    window = RepublishWindow(since=start, until=end)
    result = _run_republish(name, settings, window, dry_run=dry_run)
    upto = f" and before {end.isoformat()}" if end is not None else ""
    verb = "would republish" if dry_run else "republished"
    topics = f" to {', '.join(result.topics)}" if result.topics else ""
    out.print(
        f"{verb} {result.republished} {name} records created since {start.isoformat()}{upto}"
        f"{topics}",
        highlight=False,
    )
    if result.pending:
        out.print(
            f"{result.pending} records of that window are not sent yet; the relay sends them",
            highlight=False,
        )


def _run_republish(
    service: str, settings: ServiceSettings, window: RepublishWindow, *, dry_run: bool
) -> RepublishResult:
    import re

    from pymongo.errors import ConnectionFailure, PyMongoError

    from fixloop_shared.bus import ensure_topics, make_bus
    from fixloop_shared.outbox import republish
    from fixloop_shared.store import Store, make_client

    uri = re.sub(r"//[^@/]*@", "//***@", settings.mongodb_uri)

    async def run() -> RepublishResult:
        client = make_client(settings.mongodb_uri, app_name="fixloop-outbox-cli")
        bus = make_bus(settings.kafka, service=service)
        try:
            store = Store(client, settings.database, service=service)
            await store.ping()

            async def connect(topics: list[str]) -> None:
                await ensure_topics(settings.kafka, topics)  # a restarted broker lost them
                await bus.broker.connect()

            return await republish(
                store, bus.publish_raw, window, dry_run=dry_run, before_publish=connect
            )
        finally:
            await bus.broker.stop()
            await client.close()

    try:
        return asyncio.run(run())
    except ConnectionFailure as exc:
        raise fail(f"cannot reach the {service} store at {uri} ({type(exc).__name__})") from None
    except PyMongoError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise fail(f"the {service} store failed: {first}") from None
    except (KafkaConnectionError, KafkaError, OSError) as exc:
        detail = f"{type(exc).__name__}: {str(exc)[:200]}" if str(exc) else type(exc).__name__
        raise fail(f"cannot publish to Kafka at {settings.kafka.bootstrap} ({detail})") from None


# --- fixloop keys: API keys of gRPC principals, configured only as hashes ---------------------

keys_app = typer.Typer(
    help="API keys of the gRPC API's principals: make one, hash one.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")


def _principal_entry(
    principal: str, kind: PrincipalKind, tenant: str | None, contractor: str | None, key: str
) -> dict[str, Any]:
    from pydantic import ValidationError

    from fixloop_shared.grpc_edge.principals import PrincipalSpec, hash_api_key

    try:
        spec = PrincipalSpec(
            id=principal,
            kind=kind,
            tenant=tenant,
            contractor_id=contractor,
            key_hashes=[hash_api_key(key)],
        )
    except ValidationError as exc:
        # PrincipalSpec reports all of an entry's problems as one line naming the principal.
        from rich.markup import escape

        message = str(exc.errors(include_url=False)[0]["msg"]).removeprefix("Value error, ")
        raise fail(escape(message), 2) from None
    return spec.entry()


@keys_app.command("new")
def keys_new(
    principal: Annotated[
        str | None,
        typer.Option("--principal", help="the principal's id, e.g. acme-erp (a lower-case slug)"),
    ] = None,
    kind: Annotated[
        PrincipalKind,
        typer.Option(
            "--kind",
            help="partner (a tenant's integration), contractor (a contractor's app) or "
            "operator (a tenant's dispatch desk)",
        ),
    ] = PrincipalKind.PARTNER,
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="its tenant (partner and operator)")
    ] = None,
    contractor: Annotated[
        str | None, typer.Option("--contractor", help="its contractor id (contractor only)")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="one JSON object: key, key_hash and entry")
    ] = False,
) -> None:
    """Make a new random API key; print it once, with the FIXLOOP_ORDERS_PRINCIPALS entry
    holding its hash (the service is configured with the hash only, never the key).

    To rotate a key, add the new hash as the second of the principal's key_hashes, move the
    caller to the new key, then remove the old hash.
    """
    from fixloop_shared.grpc_edge.principals import hash_api_key, new_api_key

    if principal is None and (tenant is not None or contractor is not None):
        raise fail("--tenant and --contractor describe a principal: give --principal too", 2)
    key = new_api_key()
    key_hash = hash_api_key(key)
    entry = (
        _principal_entry(principal, kind, tenant, contractor, key)
        if principal is not None
        else None
    )
    if as_json:
        result: dict[str, Any] = {"key": key, "key_hash": key_hash}
        if entry is not None:
            result["entry"] = entry
        sys.stdout.write(json.dumps(result) + "\n")
        return
    sys.stdout.write(
        f"API key (shown once; give it to the caller, it cannot be recovered):\n  {key}\n"
        f"Its hash:\n  {key_hash}\n"
    )
    if entry is not None:
        sys.stdout.write(
            "Entry for FIXLOOP_ORDERS_PRINCIPALS (a JSON list; add it, or add the hash to an "
            "existing entry's key_hashes to rotate):\n"
            f"  {json.dumps(entry)}\n"
        )


_KEY_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=")


@keys_app.command("hash")
def keys_hash(
    key: Annotated[
        str | None,
        typer.Argument(
            help="the API key; leave it out to read it from standard input (keeps it out of "
            "the shell history)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print the hash of an existing API key, as it goes into a principal's key_hashes."""
    from fixloop_shared.grpc_edge.principals import hash_api_key

    if key is None:
        key = sys.stdin.readline().strip()
    if not key:
        raise fail("no API key given (as an argument or on standard input)", 2)
    if not set(key) <= _KEY_CHARACTERS:
        # A key travels in gRPC metadata (x-api-key or a Bearer token): printable, no spaces.
        raise fail(
            "an API key is letters, digits and - . _ ~ + / = only; this one could never be "
            "presented",
            2,
        )
    sys.stdout.write(hash_api_key(key) + "\n")


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
