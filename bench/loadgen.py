"""Load generation for bench/serving.py: wrk runs, the CPU they keep busy (from /proc), py-spy summaries.

Pure parsing (wrk's report line, py-spy's collapsed stacks) is tested in bench/test_serving.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.measure import ROOT

WRK = shutil.which("wrk") or "/usr/bin/wrk"
WRK_SCRIPTS = ROOT / "bench" / "wrk"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# More CPU than this outside the server, PostgreSQL, wrk and Redis: something else ran (tests, a build).
DISTURBED_CORES = 0.25


# CPU: where the machine's time goes during a run, from /proc (user + system time, all cores).


@dataclass
class CpuSample:
    at: float
    busy: int  # machine-wide ticks not idle
    total: int
    processes: dict[int, tuple[str, int, int]]  # pid: (command name, parent pid, user+system ticks)


def cpu_sample() -> CpuSample:
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    total = sum(fields)
    busy = total - fields[3] - fields[4]  # idle, iowait
    processes = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        rest = stat[stat.rindex(")") + 2 :].split()
        processes[int(entry.name)] = (name, int(rest[1]), int(rest[11]) + int(rest[12]))
    return CpuSample(time.monotonic(), busy, total, processes)


def cpu_use(before: CpuSample, after: CpuSample, server_pid: int) -> tuple[dict[str, float], list[float]]:
    """Machine busy % (100 = every core busy) and cores used by each part: server, PostgreSQL, wrk, Redis;
    then the cores each server worker process used, busiest first (one process runs Python on one core)."""
    seconds = after.at - before.at
    parts = {"server": 0.0, "postgres": 0.0, "wrk": 0.0, "redis": 0.0}
    workers = []
    for pid, (name, parent, ticks) in after.processes.items():
        spent = ticks - before.processes.get(pid, (name, parent, 0))[2]
        if parent == server_pid:
            workers.append(round(spent / CLOCK_TICKS / seconds, 2))
        if pid == server_pid or parent == server_pid:
            part = "server"
        elif name in ("postgres", "wrk") or name.startswith("redis"):
            part = "redis" if name.startswith("redis") else name
        else:
            continue
        parts[part] += spent / CLOCK_TICKS / seconds
    busy = (after.busy - before.busy) / max(after.total - before.total, 1) * 100
    cores = busy / 100 * (os.cpu_count() or 1)
    parts["other"] = max(cores - sum(parts.values()), 0.0)
    figures = {
        "busy_pct": round(busy, 1),
        **{f"{part}_cores": round(value, 2) for part, value in parts.items()},
    }
    return figures, sorted(workers, reverse=True)


def connections_by_process(port: int) -> list[int]:
    """Established connections to `port` per server process, most first: how the workers shared clients."""
    listing = subprocess.run(
        ["ss", "-Htnp", "state", "established", f"( sport = :{port} )"], capture_output=True, text=True
    ).stdout
    counts: dict[str, int] = {}
    for found in re.finditer(r"pid=(\d+)", listing):
        counts[found[1]] = counts.get(found[1], 0) + 1
    return sorted(counts.values(), reverse=True)


# wrk.


@dataclass
class WrkRun:
    requests: int
    seconds: float
    statuses: dict[str, int]
    socket_errors: int
    latency_ms: dict[str, float]
    cpu: dict[str, float]
    worker_cores: list[float]
    connections: list[int]  # clients per server process

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def count(self, status_class: str) -> int:
        """Responses whose status starts with `status_class` ("2" for 2xx)."""
        return sum(count for status, count in self.statuses.items() if status.startswith(status_class))


def parse_wrk_output(output: str) -> dict[str, Any]:
    """The figures report.lua prints after a run: its `WRK_JSON {...}` line, latencies in ms."""
    for line in output.splitlines():
        if line.startswith("WRK_JSON "):
            figures = json.loads(line.removeprefix("WRK_JSON "))
            break
    else:
        raise ValueError("no WRK_JSON line in wrk's output (did the script's done() run?)")
    latency = figures["latency_us"]
    figures["latency_ms"] = {
        **{f"p{name.removesuffix('.0')}": value / 1000 for name, value in latency["percentiles"].items()},
        "mean": latency["mean"] / 1000,
        "max": latency["max"] / 1000,
    }
    figures["socket_errors"] = sum(
        count for kind, count in figures["errors"].items() if kind != "status"
    )  # "status" counts HTTP errors, which `statuses` has already
    return figures


def run_wrk(
    script: str, url: str, script_args: list[str], *, clients: int, seconds: int, server_pid: int
) -> WrkRun:
    """One wrk run; CPU is sampled inside it, leaving out the first and last second (ramp up, stop)."""
    if not Path(WRK).exists():
        raise RuntimeError("wrk is not installed: apt-get install -y wrk")
    command = [WRK, "-t", str(min(clients, 2)), "-c", str(clients), "-d", f"{seconds}s", "--timeout", "10s"]
    command += ["-s", str(WRK_SCRIPTS / script), url, "--", *script_args]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(1)
    before = cpu_sample()
    connections = connections_by_process(int(url.rsplit(":", 1)[1].split("/")[0]))
    time.sleep(max(seconds - 2, 1))
    after = cpu_sample()
    cpu, worker_cores = cpu_use(before, after, server_pid)
    output, _ = process.communicate(timeout=seconds + 30)
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}): {output[-2000:]}")
    figures = parse_wrk_output(output)
    return WrkRun(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        statuses=figures["statuses"],
        socket_errors=figures["socket_errors"],
        latency_ms=figures["latency_ms"],
        cpu=cpu,
        worker_cores=worker_cores,
        connections=connections,
    )


def median_run(runs: list[WrkRun]) -> dict[str, Any]:
    """Medians over runs of the rate, latency percentiles and CPU figures; totals of the failures."""
    return {
        "runs": len(runs),
        "rate": round(statistics.median(run.rate for run in runs), 1),
        "rates": [round(run.rate, 1) for run in runs],
        "latency_ms": {
            name: round(statistics.median(run.latency_ms[name] for run in runs), 2)
            for name in ("p50", "p95", "p99", "max")
        },
        "cpu": {name: round(statistics.median(run.cpu[name] for run in runs), 2) for name in runs[0].cpu},
        "worker_cores": [run.worker_cores for run in runs],
        "connections_per_worker": [run.connections for run in runs],
        "non_2xx": sum(sum(run.statuses.values()) - run.count("2") for run in runs),
        "socket_errors": sum(run.socket_errors for run in runs),
        "disturbed_runs": sum(run.cpu.get("other_cores", 0) > DISTURBED_CORES for run in runs),
    }


def describe_cpu(cpu: dict[str, float]) -> str:
    parts = ", ".join(
        f"{name.removesuffix('_cores')} {value:.2f}" for name, value in cpu.items() if name.endswith("_cores")
    )
    return f"{cpu['busy_pct']:.0f}% busy (cores: {parts})"


# py-spy.


def summarize_stacks(collapsed: str, top: int = 20) -> dict[str, Any]:
    """Where sampled time went, from py-spy's collapsed stacks ("outer;...;inner count" lines).

    Self time by package (the innermost frame's), and the functions most often on the stack (inclusive),
    leaving out those on nearly every stack (thread bootstrap, the worker loop, the middleware chain).
    """
    self_time: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        total += int(count)
        frames = [frame_name(frame) for frame in stack.split(";")]
        leaf_package = package_of(frames[-1])
        self_time[leaf_package] = self_time.get(leaf_package, 0) + int(count)
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + int(count)
    share = {frame: count / max(total, 1) * 100 for frame, count in inclusive.items()}
    return {
        "samples": total,
        "self_by_package": {
            package: round(count / max(total, 1) * 100, 1)
            for package, count in sorted(self_time.items(), key=lambda item: -item[1])[:top]
        },
        "inclusive": dict(
            [
                (frame, round(value, 1))
                for frame, value in sorted(share.items(), key=lambda item: -item[1])
                if 2 <= value <= 90
            ][: top * 2]
        ),
    }


def frame_name(frame: str) -> str:
    """'execute (django/db/backends/utils.py:79)' → 'execute (django/db/backends/utils.py)'."""
    return frame.rsplit(":", 1)[0] + ")" if frame.endswith(")") and ":" in frame else frame


def package_of(frame: str) -> str:
    """The package of a frame, from py-spy's shortened path: 'django/db', 'rest_framework', 'tickets'…"""
    path = frame[frame.rfind("(") + 1 :].rstrip(")")
    parts = path.split("/")
    if parts[0] == "django" and len(parts) > 2:
        return "/".join(parts[:2])  # django/db, django/core…: which layer of Django
    return parts[0].removesuffix(".py") or "unknown"
