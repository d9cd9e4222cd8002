"""Process-tree sampling for the benchmarks: every 0.2 s, each process's CPU seconds (the last sample before
it exited) and peak RSS (the kernel's high-water mark, VmHWM), by role (tap, target, meltano, ...)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

SAMPLE_SECONDS = 0.2
MB = 1024 * 1024


@dataclass
class ProcessFigures:
    """Peak RSS and CPU seconds of one role (meltano, tap, target, ...) over its processes."""

    peak_rss: int = 0
    cpu_seconds: float = 0.0
    first_seen: float = 0.0
    last_seen: float = 0.0


@dataclass
class TreeSampler:
    """Samples a process tree: per pid the peak RSS and the last CPU times seen before it exited."""

    root_pid: int
    root_role: str = "meltano"
    extra: dict[int, str] = field(default_factory=dict)
    samples: dict[int, dict[str, Any]] = field(default_factory=dict)

    def role(self, process: psutil.Process, cmdline: list[str]) -> str:
        """What a process is, from its command line."""
        if process.pid in self.extra:
            return self.extra[process.pid]
        if process.pid == self.root_pid:
            return self.root_role
        names = " ".join(Path(part).name for part in cmdline)
        if "target-duckdb" in names:
            return "target-duckdb"
        if "tap-kaon-insights" in names:
            return "tap (discovery)" if "--discover" in cmdline else "tap-kaon-insights"
        return f"other: {names[:40]}"

    def sample(self) -> None:
        """One look at every process of the tree."""
        try:
            root = psutil.Process(self.root_pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            processes = []
        processes += [psutil.Process(pid) for pid in self.extra if psutil.pid_exists(pid)]
        now = time.monotonic()
        for process in processes:
            try:
                with process.oneshot():
                    cmdline, rss, cpu = process.cmdline(), peak_rss(process), process.cpu_times()
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied, FileNotFoundError):
                continue
            seen = self.samples.setdefault(process.pid, {"role": self.role(process, cmdline), "peak": 0, "first": now})
            seen.update(peak=max(seen["peak"], rss), cpu=cpu.user + cpu.system, last=now)
            seen.setdefault("cpu_start", cpu.user + cpu.system)

    def by_role(self) -> dict[str, ProcessFigures]:
        """Figures per role; an extra (already running) process counts only CPU used while sampled."""
        roles: dict[str, ProcessFigures] = {}
        for pid, seen in self.samples.items():
            figures = roles.setdefault(seen["role"], ProcessFigures(first_seen=seen["first"]))
            figures.peak_rss = max(figures.peak_rss, seen["peak"])
            figures.cpu_seconds += seen["cpu"] - (seen["cpu_start"] if pid in self.extra else 0.0)
            figures.first_seen = min(figures.first_seen, seen["first"])
            figures.last_seen = max(figures.last_seen, seen["last"])
        return roles


def peak_rss(process: psutil.Process) -> int:
    """The kernel's high-water mark of the process's RSS (VmHWM), so no short peak between samples is missed."""
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return process.memory_info().rss
