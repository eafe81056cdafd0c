"""The dev supervisor (``make run``) restarts what dies and stops everything when asked.

Real processes throughout: the whole embedded stack is started as ``python -m
fixloop_devkit.devstack run --free-ports`` with a temporary data folder, a service and a store are
killed with ``kill -9``, and both must come back (the store despite a pid file naming a live,
unrelated process) while the rest keeps running; SIGTERM then stops every child.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fixloop_cli.stack_status import read_status
from fixloop_devkit.devstack import (
    Backoff,
    LocalPlatform,
    ManagedProcess,
    StackPorts,
    Supervisor,
    clear_stale_pid_file,
    free_port,
    http_ok,
    port_open,
)

pytestmark = pytest.mark.integration

STACK_SERVICES = ("contractors", "parts")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _until(
    predicate: Callable[[], bool], timeout: float, what: str, describe: Callable[[], str]
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{describe()}")
        time.sleep(0.2)


# -- stale pid files -----------------------------------------------------------------------------
def test_pid_file_of_a_gone_or_foreign_process_is_removed(tmp_path: Path) -> None:
    pid_file = tmp_path / "orders.pid"
    assert clear_stale_pid_file(pid_file) is None

    pid_file.write_text("not-a-pid\n")
    assert clear_stale_pid_file(pid_file) is not None
    assert not pid_file.exists()

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    pid_file.write_text(str(gone.pid))
    reason = clear_stale_pid_file(pid_file)
    assert reason is not None
    assert not pid_file.exists()

    # A live process that is not this store: the pid was reused (the case nx-27017 trips on).
    pid_file.write_text(str(os.getpid()))
    reason = clear_stale_pid_file(pid_file)
    assert reason is not None
    assert "not this store" in reason
    assert not pid_file.exists()


def test_pid_file_of_a_live_store_is_kept(tmp_path: Path) -> None:
    pid_file = tmp_path / "orders.pid"
    # Stands in for a live store: its command line names this pid file, as a store's does.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "--pid-file", str(pid_file)]
    )
    try:
        pid_file.write_text(str(holder.pid))
        _until(
            lambda: str(pid_file) in Path(f"/proc/{holder.pid}/cmdline").read_bytes().decode(),
            10,
            "the holder's command line",
            lambda: "",
        )
        assert clear_stale_pid_file(pid_file) is None
        assert pid_file.read_text() == str(holder.pid)
    finally:
        holder.kill()
        holder.wait()


# -- backoff -------------------------------------------------------------------------------------
def test_backoff_doubles_from_one_second_up_to_thirty() -> None:
    backoff = Backoff()
    assert [backoff.delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 30, 30, 30]


class _CrashingPlatform(LocalPlatform):
    """One component, ``flaky``: a real process that exits with status 3 right away."""

    def component_names(self, services: Any = ()) -> list[str]:
        return ["flaky"]

    def port_of(self, name: str) -> int:
        return self.ports.smtp  # never listened on: launch() sees it free

    def listens_on(self, name: str) -> str:
        return "-"

    def build_process(self, name: str) -> ManagedProcess:
        return ManagedProcess(
            name,
            [sys.executable, "-c", "import sys; print('boom', flush=True); sys.exit(3)"],
            self.data_dir / "logs" / f"{name}.log",
        )

    def is_up(self, name: str) -> bool:
        return False


def test_a_child_that_keeps_crashing_is_retried_at_a_bounded_rate_and_reported(
    tmp_path: Path,
) -> None:
    ports = StackPorts(kafka=0, smtp=free_port(), grpc=0, stores={}, health={})
    platform = _CrashingPlatform(data_dir=tmp_path, ports=ports)
    backoff = Backoff(initial=0.05, maximum=0.4, stable_after=10, crash_loop_after=4)
    supervisor = Supervisor(platform, services=(), backoff=backoff, echo=False)
    supervisor._launch_initial("flaky")
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        supervisor.tick()
        time.sleep(0.02)
    comp = supervisor.components["flaky"]
    # 0.05 + 0.1 + 0.2 + 0.4 + 0.4 ... plus start-up time of each try: a handful, never hundreds.
    assert 4 <= comp.restarts <= 10, comp.restarts
    assert comp.last_exit is not None
    assert comp.last_exit.startswith("exit status 3")
    log = supervisor.log_path.read_text()
    assert "WARNING: flaky keeps failing (4 times in a row" in log
    assert log.count("keeps failing") == 1
    assert "boom" in log
    # Still supervising (not given up), and the status file says so.
    assert comp.state in ("backoff", "starting")
    status = read_status(tmp_path)
    assert status is not None
    (row,) = status["components"]
    assert row["name"] == "flaky"
    assert row["restarts"] == comp.restarts
    supervisor.stop()
    assert all(not p.running for p in platform.processes.values())
    stopped = read_status(tmp_path)
    assert stopped is not None
    assert stopped["supervisor"]["state"] == "stopped"


# -- the whole stack -----------------------------------------------------------------------------
@pytest.fixture
def devstack(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    data_dir = tmp_path / "stack"
    output = (tmp_path / "devstack.out").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fixloop_devkit.devstack",
            "run",
            "--data-dir",
            str(data_dir),
            "--free-ports",
            # Two of the five services (and their stores) keep the test light on a shared
            # machine; the supervision is the same for every child.
            "--services",
            ",".join(STACK_SERVICES),
        ],
        stdout=output,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    output.close()
    try:
        yield proc, data_dir
    finally:
        seen = _all_pids(data_dir)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pid in seen | _all_pids(data_dir):  # nothing may outlive the test
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


_SEEN_PIDS: dict[Path, set[int]] = {}


def _all_pids(data_dir: Path) -> set[int]:
    status = read_status(data_dir) or {}
    pids = {c["pid"] for c in status.get("components", []) if c.get("pid")}
    _SEEN_PIDS.setdefault(data_dir, set()).update(pids)
    return set(_SEEN_PIDS[data_dir])


def _component(data_dir: Path, name: str) -> dict[str, Any]:
    status = read_status(data_dir)
    assert status is not None
    _all_pids(data_dir)
    for row in status["components"]:
        if row["name"] == name:
            return dict(row)
    pytest.fail(f"{name} not in status.json")


def test_killed_service_and_store_are_restarted_and_sigterm_stops_everything(
    devstack: tuple[subprocess.Popen[bytes], Path],
) -> None:
    proc, data_dir = devstack
    out_file = data_dir.parent / "devstack.out"

    def describe() -> str:
        log = data_dir / "logs" / "devstack.log"
        return (
            f"devstack output:\n{out_file.read_text(errors='replace')[-3000:]}\n"
            f"devstack.log:\n{log.read_text()[-3000:] if log.exists() else ''}\n"
            f"status: {json.dumps(read_status(data_dir), indent=1)[-3000:]}"
        )

    def stack_running() -> bool:
        assert proc.poll() is None, f"the devstack exited\n{describe()}"
        status = read_status(data_dir)
        return status is not None and status["supervisor"]["state"] == "running"

    _until(stack_running, 60, "the stack to start", describe)
    before = {
        name: _component(data_dir, name)
        for name in ("kafka", "smtp", "store-contractors", *STACK_SERVICES)
    }

    # A service, kill -9: restarted, /healthz answers again from a new pid.
    service = _component(data_dir, "contractors")
    old_service_pid = service["pid"]
    os.kill(old_service_pid, signal.SIGKILL)

    # A store, kill -9, and its pid file then names a live process that is not a store (the pid
    # was reused): nx-27017 on its own would refuse to start ("already running").
    store = _component(data_dir, "store-parts")
    old_store_pid = store["pid"]
    pid_file = data_dir / "stores" / "parts.pid"
    assert pid_file.read_text().strip() == str(old_store_pid)
    os.kill(old_store_pid, signal.SIGKILL)
    pid_file.write_text(str(os.getpid()))

    def back(name: str, old_pid: int) -> Callable[[], bool]:
        def check() -> bool:
            assert proc.poll() is None, f"the devstack exited\n{describe()}"
            row = _component(data_dir, name)
            return row["state"] == "running" and row["pid"] not in (None, old_pid)

        return check

    _until(back("contractors", old_service_pid), 45, "contractors to be restarted", describe)
    _until(back("store-parts", old_store_pid), 30, "store-parts to be restarted", describe)

    service = _component(data_dir, "contractors")
    assert service["restarts"] == 1
    assert service["last_exit"].startswith("killed by SIGKILL")
    assert not _alive(old_service_pid)
    assert http_ok(f"{service['listens_on']}/healthz")

    store = _component(data_dir, "store-parts")
    assert store["restarts"] == 1
    assert port_open(int(store["listens_on"].rsplit(":", 1)[1].split("/")[0]))
    assert pid_file.read_text().strip() == str(store["pid"])
    log = (data_dir / "logs" / "devstack.log").read_text()
    assert "store-parts: removed stale pid file" in log
    assert "contractors killed by SIGKILL" in log

    # The rest of the stack kept running, untouched.
    for name, row in before.items():
        if name == "contractors":
            continue
        now = _component(data_dir, name)
        assert (now["pid"], now["state"], now["restarts"]) == (row["pid"], "running", 0), name
    assert http_ok(f"{_component(data_dir, 'parts')['listens_on']}/healthz")
    assert {c["name"] for c in (read_status(data_dir) or {})["components"]} == {
        "kafka",
        "smtp",
        "sms",
        "webhooks",
        "store-contractors",
        "store-parts",
        *STACK_SERVICES,
    }

    # `fixloop status` shows it.
    shown = subprocess.run(
        [sys.executable, "-m", "fixloop_cli", "status", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert shown.returncode == 0, shown.stderr
    assert "store-parts" in shown.stdout
    assert "killed by SIGKILL" in shown.stdout

    # SIGTERM: everything stops, nothing is left behind.
    pids = _all_pids(data_dir)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=45) == 0, describe()
    _until(
        lambda: not any(_alive(p) for p in pids),
        10,
        "every child to be gone",
        lambda: f"still alive: {[p for p in pids if _alive(p)]}",
    )
    final = read_status(data_dir)
    assert final is not None
    assert final["supervisor"]["state"] == "stopped"
    assert all(c["state"] == "stopped" for c in final["components"])
