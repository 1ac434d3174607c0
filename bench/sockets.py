"""Idle realtime sockets (bench/serving.py part c): what one realtime process pays to hold them.

One uvicorn process, the production command; agents' sockets opened with a token from the web tier (POST
/api/v1/realtime/token/), in concurrent batches, each reading its hello. Then they idle, as most agents'
sockets do between events: the process's resident memory per socket, the PostgreSQL connections it keeps
(none expected: CONN_MAX_AGE=0 there), the CPU it burns meanwhile, and the sockets it closed by itself.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import resource
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop

from bench.loadgen import cpu_sample, cpu_use
from bench.measure import ROOT, free_port, serve, server

OPEN_FILES = 65536  # sockets are file descriptors, on both ends
REALTIME_COMMAND = (
    "uvicorn helpdesk.asgi:application --host 127.0.0.1 --port {port} --ws-max-size 4096 --no-access-log"
)


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def open_files_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    return 0


def raise_open_files_limit() -> int:
    """As many file descriptors as we may have: OPEN_FILES, or the hard limit if we cannot raise it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(OPEN_FILES, soft), max(OPEN_FILES, hard)))
    except (ValueError, OSError):  # raising the hard limit needs CAP_SYS_RESOURCE
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def realtime_postgres_connections() -> int:
    """Connections the realtime service holds to the bench database (it names them helpdesk-realtime)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = 'helpdesk-realtime' AND datname = current_database()"
        )
        return cursor.fetchone()[0]


def socket_token(env: dict[str, str], api_token: str) -> str:
    """A socket token as a client gets one: from the web tier, with the agent's API token."""
    with server(env, workers=1, threads=2) as web:
        connection = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
        connection.request("POST", "/api/v1/realtime/token/", headers={"Authorization": f"Token {api_token}"})
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"socket token: HTTP {response.status} {body[:300]!r}")
        return json.loads(body)["token"]


async def open_socket(url: str, *, deflate: bool) -> Any:
    """An agent's socket once its hello arrived; a browser offers permessage-deflate, so we do by default."""
    from websockets.asyncio.client import connect

    # No client pings: the server's own keep-alive pings (every 20 s) are what an idle socket costs.
    socket = await connect(
        url,
        ping_interval=None,
        open_timeout=60,
        max_size=2**16,
        compression="deflate" if deflate else None,
    )
    hello = json.loads(await asyncio.wait_for(socket.recv(), 60))
    if hello.get("type") != "hello":
        raise RuntimeError(f"expected hello, got {hello!r}")
    return socket


async def open_sockets(url: str, count: int, batch: int, held: list[Any], *, deflate: bool) -> int:
    """Open `count` more sockets, `batch` at a time, into `held`; returns the failures."""
    failures = 0
    for offset in range(0, count, batch):
        opened = await asyncio.gather(
            *(open_socket(url, deflate=deflate) for _ in range(min(batch, count - offset))),
            return_exceptions=True,
        )
        for result in opened:
            if isinstance(result, BaseException):
                failures += 1
                if failures <= 3:
                    print(f"socket failed: {result!r}", file=sys.stderr)
            else:
                held.append(result)
    return failures


async def hold_sockets(
    url: str, pid: int, counts: list[int], batch: int, idle_seconds: int, *, deflate: bool
) -> tuple[int, list[dict[str, Any]]]:
    from websockets.protocol import State

    held: list[Any] = []
    await asyncio.sleep(2)  # the process settles after its health check
    baseline = resident_kib(pid)
    levels: list[dict[str, Any]] = []
    try:
        for target in counts:
            already = len(held)
            before, started = cpu_sample(), time.perf_counter()
            failures = await open_sockets(url, target - already, batch, held, deflate=deflate)
            seconds, connect_cpu = time.perf_counter() - started, cpu_use(before, cpu_sample(), pid)[0]
            new = len(held) - already
            await asyncio.sleep(idle_seconds)  # idle: nothing but the server's pings
            before = cpu_sample()
            await asyncio.sleep(idle_seconds)
            idle_cpu = cpu_use(before, cpu_sample(), pid)[0]
            closed = Counter(str(socket.close_code) for socket in held if socket.state is not State.OPEN)
            open_now = len(held) - sum(closed.values())
            rss = resident_kib(pid)
            level = {
                "sockets": open_now,
                "failures": failures,
                "closed_by_server": dict(closed),
                "rss_mib": round(rss / 1024, 1),
                "kib_per_socket": round((rss - baseline) / max(open_now, 1), 1),
                "connect_seconds": round(seconds, 2),
                "connect_rate": round(new / seconds, 1),
                # Per connect: realtime process and PostgreSQL (a fresh connection per database call).
                "server_cpu_ms_per_connect": round(
                    connect_cpu["server_cores"] * seconds / max(new, 1) * 1000, 2
                ),
                "postgres_cpu_ms_per_connect": round(
                    connect_cpu["postgres_cores"] * seconds / max(new, 1) * 1000, 2
                ),
                "connect_cpu": connect_cpu,
                "idle_server_cpu_pct": round(idle_cpu["server_cores"] * 100, 1),
                "postgres_connections": await asyncio.to_thread(realtime_postgres_connections),
            }
            levels.append(level)
            server_ms, postgres_ms = level["server_cpu_ms_per_connect"], level["postgres_cpu_ms_per_connect"]
            print(
                f"realtime: {open_now:,} idle sockets open ({failures} failed, closed by server "
                f"{dict(closed)}), RSS {level['rss_mib']} MiB (+{level['kib_per_socket']} KiB/socket); "
                f"{new} opened in {seconds:.1f} s = {level['connect_rate']:.0f}/s, CPU per connect: server "
                f"{server_ms} ms, PostgreSQL {postgres_ms} ms, machine {connect_cpu['busy_pct']:.0f}% busy; "
                f"idle server CPU {level['idle_server_cpu_pct']}%; "
                f"PostgreSQL connections held {level['postgres_connections']}"
            )
            if failures:
                break  # the next level would only stack failures
    finally:
        for offset in range(0, len(held), 500):
            await asyncio.gather(
                *(socket.close() for socket in held[offset : offset + 500]), return_exceptions=True
            )
    return baseline, levels


def idle_sockets(
    env: dict[str, str],
    users: dict[str, Any],
    counts: list[int],
    batch: int,
    idle_seconds: int,
    *,
    deflate: bool = True,
) -> dict[str, Any]:
    """Hold `counts` idle sockets (cumulative levels) on one realtime process; figures per level."""
    client_limit = raise_open_files_limit()
    token = socket_token(env, users["tokens"][users["agent"].username])
    port = free_port()
    uvicorn = f"{Path(sys.executable).parent}/{REALTIME_COMMAND.format(port=port)}"
    # The server needs a high limit too (ulimit as high as allowed); a token lives long enough to open every
    # socket with it; a channel layer prefix of its own keeps other processes' events off these sockets.
    raise_limit = f'ulimit -n {OPEN_FILES} 2>/dev/null || ulimit -S -n "$(ulimit -H -n)"'
    command = ["sh", "-c", f"{raise_limit}; exec {uvicorn}"]
    realtime_env = {**env, "REALTIME_TOKEN_MAX_AGE": "3600", "CHANNEL_LAYER_PREFIX": "bench-realtime"}
    url = f"ws://127.0.0.1:{port}/ws/events/?token={token}"
    log = ROOT / "bench" / "out" / f"realtime-{datetime.now(UTC):%Y%m%d-%H%M%S}.log"
    log.parent.mkdir(exist_ok=True)
    with serve(command, port, realtime_env, name="uvicorn (realtime)", log=log) as realtime:
        server_limit = open_files_limit(realtime.process.pid)
        # uvloop, as uvicorn uses: the client shares the two cores and should take as little as it can.
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            baseline, levels = runner.run(
                hold_sockets(url, realtime.process.pid, counts, batch, idle_seconds, deflate=deflate)
            )
    errors = log.read_text(errors="replace")
    return {
        "baseline_rss_mib": round(baseline / 1024, 1),
        "levels": levels,
        "open_files_limit": {"client": client_limit, "server": server_limit},
        "deflate": deflate,
        "agent": users["agent"].username,
        "batch": batch,
        "server_log": str(log.relative_to(ROOT)),
        "server_errors": {
            "Exception in ASGI application": errors.count("Exception in ASGI application"),
            "redis TimeoutError": errors.count("redis.exceptions.TimeoutError"),
        },
    }
