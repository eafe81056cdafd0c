"""Sampling the services with py-spy during a phase, and the functions that used the most CPU.

``py-spy record --format raw --nonblocking`` runs against each service process until the phase
ends (then SIGINT makes it write its collapsed stacks); idle samples are left out, so a sample is
a moment the thread was on the CPU. "Own" samples count the leaf frame (the function itself was
running), "inclusive" samples count every function on the stack once.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<name>.*?) \((?P<file>.*?)(?::\d+)?\)$")


def py_spy_binary() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def function_of(frame: str) -> str:
    """``Handle._run (asyncio/events.py:80)`` -> ``Handle._run (asyncio/events.py)``."""
    match = _FRAME.match(frame.strip())
    return f"{match['name']} ({match['file']})" if match else frame.strip()


@dataclass
class Profile:
    """One service's samples, aggregated by function (line numbers dropped)."""

    samples: int = 0
    own: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)

    @classmethod
    def parse(cls, text: str) -> Profile:
        profile = cls()
        for line in text.splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            functions = [function_of(frame) for frame in stack.split(";")]
            profile.samples += count
            profile.own[functions[-1]] += count
            for function in set(functions):
                profile.inclusive[function] += count
        return profile

    def merge(self, other: Profile) -> None:
        self.samples += other.samples
        self.own.update(other.own)
        self.inclusive.update(other.inclusive)

    def summary(self, rate: int, n: int = 10) -> dict[str, Any]:
        def rows(counter: Counter[str]) -> list[dict[str, Any]]:
            return [
                {"function": f, "samples": c, "percent": round(100 * c / self.samples, 1)}
                for f, c in counter.most_common(n)
            ]

        # Frames on (nearly) every stack (module entry, the event loop) say nothing: left out.
        telling = Counter({f: c for f, c in self.inclusive.items() if c < 0.9 * self.samples})
        return {
            "samples": self.samples,
            "rate": rate,
            "top_own": rows(self.own),
            "top_inclusive": rows(telling),
        }


@dataclass
class Sampler:
    """py-spy attached to each of the given processes until :meth:`stop`."""

    pids: Mapping[str, int]
    folder: Path
    rate: int = 50
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        binary = py_spy_binary()
        if binary is None:
            self.errors = dict.fromkeys(self.pids, "py-spy is not installed")
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, pid in self.pids.items():
            self.procs[name] = subprocess.Popen(
                [
                    binary,
                    "record",
                    "--pid",
                    str(pid),
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--rate",
                    str(self.rate),
                    "--output",
                    str(self.folder / f"{name}.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=(self.folder / f"{name}.log").open("wb"),
                stdin=subprocess.DEVNULL,
            )

    def stop(self) -> dict[str, Profile]:
        """Stop sampling; the profile of every service py-spy could sample (errors aside)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        profiles = {}
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            out = self.folder / f"{name}.txt"
            if out.exists() and out.stat().st_size > 0:
                profiles[name] = Profile.parse(out.read_text(errors="replace"))
            else:
                log = (self.folder / f"{name}.log").read_text(errors="replace").strip()
                self.errors[name] = (log.splitlines() or ["no samples written"])[-1][:300]
        return profiles
