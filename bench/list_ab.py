"""Ticket list latency of two checkouts, side by side in one sitting: both servers run at once and the
requests alternate between them (ABBA order), so drift on a shared machine falls on both alike. Sequential
runs of `bench/run` moved the p95 by up to 40% between rounds of the same commit; this does not.

    git worktree add --detach ../before <commit>    # with its own .venv (a symlink to this one will do)
    .venv/bin/python -m bench.list_ab ../before --requests 1500

Each checkout serves with its own code (its gunicorn.conf.py, one worker) against `helpdesk_bench`.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import sys
import time
import urllib.parse
from pathlib import Path

from bench.measure import (
    ROOT,
    WEB_COMMAND,
    api_users,
    build_scenarios,
    configure_environment,
    free_port,
    percentile,
    serve,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path, help="the other checkout (the commit to compare against)")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/helpdesk_bench")
    parser.add_argument("--requests", type=int, default=1000, help="timed requests per scenario and side")
    args = parser.parse_args(argv)
    env = configure_environment(args.database_url, "bench")
    import django

    django.setup()
    users = api_users()
    tokens = {role: users["tokens"][users[role].username] for role in ("admin", "agent")}
    scenarios = [scenario for scenario in build_scenarios(users) if not scenario.follow_next]
    sides = {"before": args.before.resolve(), "this": ROOT}
    with contextlib.ExitStack() as stack:
        ports = {}
        for side, checkout in sides.items():
            port = free_port()
            command = [str(checkout / ".venv/bin/gunicorn"), *WEB_COMMAND[1:], "--bind", f"127.0.0.1:{port}"]
            serving_env = {**env, "WEB_ACCESS_LOG": "/dev/null", "WEB_CONCURRENCY": "1"}
            stack.enter_context(serve(command, port, serving_env, name=side, checkout=checkout))
            ports[side] = port
        connections = {
            side: http.client.HTTPConnection("127.0.0.1", port, timeout=30) for side, port in ports.items()
        }
        print("| scenario | before p50 / p95 | this p50 / p95 | p95 this ÷ before |")
        print("|---|---|---|---|")
        for scenario in scenarios:
            path = "/api/v1/tickets/" + (
                "?" + urllib.parse.urlencode(scenario.query) if scenario.query else ""
            )
            headers = {"Authorization": f"Token {tokens[scenario.user]}", "Accept": "application/json"}
            timings: dict[str, list[float]] = {side: [] for side in sides}
            for index in range(30 + args.requests):
                order = ("before", "this") if index % 4 < 2 else ("this", "before")
                for side in order:
                    started = time.perf_counter()
                    connections[side].request("GET", path, headers=headers)
                    response = connections[side].getresponse()
                    response.read()
                    if response.status != 200:
                        raise SystemExit(f"{side} {scenario.name}: HTTP {response.status}")
                    if index >= 30:  # warm-up
                        timings[side].append((time.perf_counter() - started) * 1000)
            before, this = (
                (percentile(timings[side], 0.50), percentile(timings[side], 0.95))
                for side in ("before", "this")
            )
            print(
                f"| {scenario.name} | {before[0]:.1f} / {before[1]:.1f} ms "
                f"| {this[0]:.1f} / {this[1]:.1f} ms | {this[1] / before[1]:.2f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
