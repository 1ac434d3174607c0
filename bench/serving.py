"""Serving benchmark (issue 14): the production web and realtime commands under load, at 1M tickets.

    bench/run serving            # = .venv/bin/python -m bench.serving; --help; ~10 min with the defaults

a. GET /api/v1/tickets/ requests/s with 1, 4 and 16 clients (wrk, bench/wrk/tickets.lua) against one gunicorn
   deployment sized as production on this machine, with the CPU each level keeps busy; p50/p95/p99 at 16.
b. POST /api/v1/inbound/messages/ messages/s with 16 clients (bench/wrk/inbound.lua), for several gunicorn
   sizings; the database is counted afterwards to check that every 202 stored exactly one message.
c. Idle authenticated sockets held by one realtime process (uvicorn): memory per socket, connect rate, and
   the PostgreSQL connections it holds while they idle (bench/sockets.py).

receive() in one process is bench/run --skip-api. Events go to a Celery queue no worker consumes ("bench"),
purged after each run, as in bench/measure.py.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.loadgen import DISTURBED_CORES, describe_cpu, median_run, run_wrk, summarize_stacks
from bench.measure import (
    DEFAULT_DATABASE_URL,
    ROOT,
    api_users,
    code_state,
    dataset_size,
    machine_info,
    save_figures,
    server,
    start,
    versions,
)

INBOUND_HTTP_TARGET = 400.0  # messages per second over HTTP, every process on this machine
CLIENT_LEVELS = (1, 4, 16)
# helpdesk/gunicorn.conf.py's defaults: a worker per core, 8 threads each.
PRODUCTION_SIZING = (os.cpu_count() or 2, 8)


# a. Ticket list throughput.


def api_throughput(env: dict[str, str], users: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Requests/s per role and client count; rounds alternate the levels, so drift hits them alike."""
    workers, threads = args.web_sizing
    runs: dict[str, list] = {
        f"{role} {clients}": [] for role in ("agent", "admin") for clients in CLIENT_LEVELS
    }
    with server(env, workers=workers, threads=threads) as web:
        url = f"http://127.0.0.1:{web.port}"
        tokens = {role: users["tokens"][users[role].username] for role in ("agent", "admin")}
        # Warm every thread's connection and caches before timing anything.
        for token in tokens.values():
            run_wrk("tickets.lua", url, [token], clients=16, seconds=4, server_pid=web.process.pid)
        for _ in range(args.runs):
            for level in runs:
                role, clients = level.split()
                runs[level].append(
                    run_wrk(
                        "tickets.lua",
                        url,
                        [tokens[role]],
                        clients=int(clients),
                        seconds=args.duration,
                        server_pid=web.process.pid,
                    )
                )
    levels = {level: median_run(level_runs) for level, level_runs in runs.items()}
    for name, level in levels.items():
        # gthread workers accept whatever connects; keep-alive clients stay where they landed.
        level["runs_on_one_worker"] = sum(len(clients) == 1 for clients in level["connections_per_worker"])
        print(
            f"GET /api/v1/tickets/ {name:>8} clients: {level['rate']:.0f} req/s (runs {level['rates']}), "
            f"p50 {level['latency_ms']['p50']:.1f} ms, p95 {level['latency_ms']['p95']:.1f} ms, "
            f"p99 {level['latency_ms']['p99']:.1f} ms; CPU {describe_cpu(level['cpu'])}; per worker: cores "
            f"{level['worker_cores']}, clients {level['connections_per_worker']}; "
            f"non-2xx {level['non_2xx']}; disturbed runs {level['disturbed_runs']}"
        )
    return {"sizing": {"workers": workers, "threads": threads}, "levels": levels}


# b. Inbound messages over HTTP.


def high_water_marks() -> dict[str, int]:
    from django.db import connection

    marks = {}
    with connection.cursor() as cursor:
        for table in ("inboundenvelope", "message", "ticket", "ticketevent"):
            cursor.execute(f"SELECT coalesce(max(id), 0) FROM tickets_{table}")  # noqa: S608 - fixed names
            marks[table] = cursor.fetchone()[0]
    return marks


def stored_since(marks: dict[str, int], run_tag: str) -> dict[str, int]:
    """What a run stored: its envelopes (by id prefix), their messages, the tickets they opened."""
    from django.db import connection

    prefix = run_tag + "-%"
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*), count(*) FILTER (WHERE status = 'processed'), count(DISTINCT message_id)
            FROM tickets_inboundenvelope WHERE id > %s AND channel = 'api' AND external_id LIKE %s
            """,
            [marks["inboundenvelope"], prefix],
        )
        envelopes, processed, envelope_messages = cursor.fetchone()
        cursor.execute(
            """
            SELECT count(*), count(DISTINCT external_id) FROM tickets_message
            WHERE id > %s AND channel = 'api' AND direction = 'in' AND external_id LIKE %s
            """,
            [marks["message"], prefix],
        )
        messages, distinct_ids = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FROM tickets_ticket WHERE id > %s AND channel = 'api'", [marks["ticket"]]
        )
        tickets = cursor.fetchone()[0]
    return {
        "envelopes": envelopes,
        "processed": processed,
        "envelope_messages": envelope_messages,
        "messages": messages,
        "distinct_message_ids": distinct_ids,
        "tickets": tickets,
    }


def settle_events(marks: dict[str, int], queue: str) -> dict[str, int]:
    """Wait (untimed) for the run's events to reach the broker, count them, and purge the queue."""
    import redis
    from django.conf import settings

    from tickets.models import TicketEvent

    run_events = TicketEvent.objects.filter(id__gt=marks["ticketevent"])
    deadline = time.monotonic() + 20
    while (unpublished := run_events.filter(published_at=None).count()) and time.monotonic() < deadline:
        time.sleep(0.2)
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queued = broker.llen(queue)
    broker.delete(queue)
    return {"events": run_events.count(), "queued": queued, "unpublished": unpublished}


def inbound_run(url: str, token: str, server_pid: int, args: argparse.Namespace) -> dict[str, Any]:
    run_tag = f"bench{int(time.time()):x}{random.getrandbits(16):04x}"
    marks = high_water_marks()
    run = run_wrk(
        "inbound.lua",
        url,
        [token, run_tag, str(args.reply_share)],
        clients=args.inbound_clients,
        seconds=args.duration,
        server_pid=server_pid,
    )
    time.sleep(1)  # requests wrk abandoned at its deadline finish on the server
    stored = stored_since(marks, run_tag)
    accepted = run.statuses.get("202", 0)
    in_flight = stored["envelopes"] - accepted  # sent before wrk stopped, answered after
    exact = (
        stored["envelopes"] == stored["processed"] == stored["envelope_messages"] == stored["messages"]
        and stored["messages"] == stored["distinct_message_ids"]
        and 0 <= in_flight <= args.inbound_clients
    )
    return {
        "rate": accepted / run.seconds,
        "accepted": accepted,
        "non_2xx": sum(run.statuses.values()) - run.count("2"),
        "statuses": run.statuses,
        "socket_errors": run.socket_errors,
        "latency_ms": run.latency_ms,
        "cpu": run.cpu,
        "worker_cores": run.worker_cores,
        "connections_per_worker": run.connections,
        "stored": stored,
        "in_flight_at_stop": in_flight,
        "one_message_per_202": exact,
        "disturbed": run.cpu["other_cores"] > DISTURBED_CORES,
        **settle_events(marks, args.queue),
    }


def inbound_http(env: dict[str, str], token: str, args: argparse.Namespace) -> dict[str, Any]:
    """Messages/s per gunicorn sizing. Rounds alternate the sizings (a fresh server each run, warmed
    first), so that this VM's drift weighs on them alike."""
    runs: dict[tuple[int, int], list[dict[str, Any]]] = {size: [] for size in args.sizings}
    warm_up = argparse.Namespace(**{**vars(args), "duration": 4})
    results: dict[str, Any] = {}
    for _ in range(args.runs):
        for workers, threads in args.sizings:
            with server(env, workers=workers, threads=threads) as web:
                url = f"http://127.0.0.1:{web.port}"
                inbound_run(url, token, web.process.pid, warm_up)
                run = inbound_run(url, token, web.process.pid, args)
                runs[(workers, threads)].append(run)
                print(
                    f"inbound {workers}x{threads}: {run['rate']:.0f} msg/s, {run['accepted']} × 202, "
                    f"non-2xx {run['non_2xx']}, socket errors {run['socket_errors']}, "
                    f"p95 {run['latency_ms']['p95']:.0f} ms; stored {run['stored']}, "
                    f"{run['in_flight_at_stop']} in flight at stop, exact {run['one_message_per_202']}; "
                    f"events {run['events']}, queued {run['queued']}; CPU {describe_cpu(run['cpu'])}, "
                    f"per worker: cores {run['worker_cores']}, clients {run['connections_per_worker']}"
                    + (" DISTURBED (other processes busy)" if run["disturbed"] else "")
                )
                if args.profile and "profile" not in results:
                    results["profile"] = profile_workers(url, token, web.process.pid, args)
    for (workers, threads), sized in runs.items():
        results[f"{workers}x{threads}"] = {
            "workers": workers,
            "threads": threads,
            "rate": round(statistics.median(run["rate"] for run in sized), 1),
            "rates": [round(run["rate"], 1) for run in sized],
            "p95_ms": round(statistics.median(run["latency_ms"]["p95"] for run in sized), 1),
            "cpu": {
                key: round(statistics.median(run["cpu"][key] for run in sized), 2) for key in sized[0]["cpu"]
            },
            "non_2xx": sum(run["non_2xx"] for run in sized),
            "socket_errors": sum(run["socket_errors"] for run in sized),
            "all_exact": all(run["one_message_per_202"] for run in sized),
            "disturbed_runs": sum(run["disturbed"] for run in sized),
            "runs_detail": sized,
        }
    return results


def profile_workers(url: str, token: str, server_pid: int, args: argparse.Namespace) -> dict[str, Any]:
    """py-spy on every web worker during one more (untimed) inbound run: where the Python time goes.

    Only samples holding the GIL (--gil): a worker's threads run Python one at a time, so that is the time
    that limits a worker; waits on PostgreSQL or the network release the GIL and are left out.
    """
    workers = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    out = ROOT / "bench" / "out" / f"py-spy-inbound-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    out.parent.mkdir(exist_ok=True)
    py_spy = str(Path(sys.executable).parent / "py-spy")
    spies = [
        subprocess.Popen(
            [py_spy, "record", "--pid", pid, "--gil", "--format", "raw", "--output", f"{out}-{pid}.txt"]
            + ["--duration", str(max(args.duration - 2, 2))],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in workers
    ]
    run = inbound_run(url, token, server_pid, args)
    for spy in spies:
        spy.wait(timeout=60)
    collapsed = "\n".join(Path(f"{out}-{pid}.txt").read_text() for pid in workers)
    return {
        "files": [f"bench/out/{out.name}-{pid}.txt" for pid in workers],
        "rate_while_sampled": round(run["rate"], 1),
        **summarize_stacks(collapsed),
    }


# Command line and report.


def sizing(text: str) -> tuple[int, int]:
    workers, _, threads = text.partition("x")
    return int(workers), int(threads)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--queue", default="bench", help="Celery queue the events go to (purged after)")
    parser.add_argument(
        "--parts", default="api,inbound,realtime", help="comma-separated: api,inbound,realtime"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per figure; rates are their median")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument(
        "--web-sizing",
        type=sizing,
        default=PRODUCTION_SIZING,
        help="WORKERSxTHREADS for the API part (default: production's on this machine)",
    )
    parser.add_argument(
        "--sizings",
        type=lambda text: [sizing(item) for item in text.split(",")],
        default=[(2, 8), (3, 8), (2, 4), (3, 4)],
        help="gunicorn WORKERSxTHREADS variants for the inbound part",
    )
    parser.add_argument("--inbound-clients", type=int, default=16)
    parser.add_argument("--reply-share", type=float, default=0.2, help="inbound messages continuing a thread")
    parser.add_argument("--profile", action="store_true", help="py-spy the workers, first sizing (untimed)")
    parser.add_argument("--sockets", default="1000,5000,10000", help="idle sockets held, cumulative levels")
    parser.add_argument("--batch", type=int, default=100, help="sockets opened concurrently")
    parser.add_argument(
        "--idle-seconds", type=int, default=10, help="idle time before the figures (and again for idle CPU)"
    )
    parser.add_argument("--no-deflate", action="store_true", help="sockets without permessage-deflate")
    parser.add_argument("--notes", default="", help="free text saved with the figures")
    args = parser.parse_args(argv)
    return start(parser, args, report)


def report(args: argparse.Namespace, env: dict[str, str]) -> int:
    from bench import sockets

    parts = set(args.parts.split(","))
    results: dict[str, Any] = {
        "machine": machine_info(),
        "versions": versions(),
        "dataset": dataset_size(),
        "code": code_state(),
        "command": " ".join([".venv/bin/python -m bench.serving", *sys.argv[1:]]),
        "load_before": os.getloadavg(),
        "notes": args.notes,
    }
    machine = results["machine"]
    print(f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['ram_gib']} GiB RAM, ", end="")
    print(machine["date"])
    print("dataset: " + ", ".join(f"{count:,} {name}" for name, count in results["dataset"].items()))
    print(f"code:    {results['code']}\n")
    users = api_users()
    rows: list[tuple[str, str]] = []
    if "api" in parts:
        results["api"] = api_throughput(env, users, args)
        workers, threads = args.web_sizing
        for name, level in results["api"]["levels"].items():
            rows.append(
                (
                    f"GET /api/v1/tickets/ {name} clients, gunicorn {workers}x{threads}",
                    f"{level['rate']:.0f} req/s, p95 {level['latency_ms']['p95']:.1f} ms, "
                    f"CPU {level['cpu']['busy_pct']:.0f}% busy",
                )
            )
    if "inbound" in parts:
        results["inbound_http"] = inbound_http(env, users["tokens"][users["admin"].username], args)
        for name, variant in results["inbound_http"].items():
            if name == "profile":
                continue
            verdict = "met" if variant["rate"] >= INBOUND_HTTP_TARGET else "MISSED"
            rows.append(
                (
                    f"POST /api/v1/inbound/messages/, {args.inbound_clients} clients, gunicorn {name}",
                    f"{variant['rate']:.0f} msg/s (runs {variant['rates']}), "
                    f"CPU {variant['cpu']['busy_pct']:.0f}%, exact {variant['all_exact']}, "
                    f"non-2xx {variant['non_2xx']}: ≥ 400 {verdict}",
                )
            )
        if profile := results["inbound_http"].get("profile"):
            print(f"py-spy --gil, every worker, {profile['samples']} samples; self time by package (%):")
            print("  " + ", ".join(f"{name} {share}" for name, share in profile["self_by_package"].items()))
            print("  on the stack (% of samples):")
            for frame, share in profile["inclusive"].items():
                print(f"  {share:5.1f}  {frame}")
    if "realtime" in parts:
        counts = [int(count) for count in args.sockets.split(",")]
        results["realtime"] = sockets.idle_sockets(
            env, users, counts, args.batch, args.idle_seconds, deflate=not args.no_deflate
        )
        realtime = results["realtime"]
        print(f"realtime server log: {realtime['server_errors']} ({realtime['server_log']})")
        for level in results["realtime"]["levels"]:
            rows.append(
                (
                    f"realtime: {level['sockets']:,} idle sockets, one uvicorn process",
                    f"{level['kib_per_socket']:.1f} KiB/socket (RSS {level['rss_mib']:.0f} MiB), "
                    f"{level['connect_rate']:.0f} sockets/s, "
                    f"{level['postgres_connections']} PostgreSQL connections",
                )
            )
    results["load_after"] = os.getloadavg()
    # Servers start from the working tree: a commit or edit during the run would mix two versions' figures.
    results["code_after"] = code_state()
    if results["code_after"] != results["code"]:
        print(f"\nWARNING: the code changed during the run: {results['code']} → {results['code_after']}")
    print("\n| measure | result |\n|---|---|")
    for row in rows:
        print(f"| {' | '.join(row)} |")
    print()
    save_figures(results, "serving")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
