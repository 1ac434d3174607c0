"""The search benchmark (issue 16, item 4): search latency, and what the search indexes cost receive().

    .venv/bin/python bench/seed.py --tickets 1000000 --reset --database-url URL   # once
    bench/run search --database-url URL latency          # search p95 per kind of term, server time
    bench/run search --database-url URL ingest --baseline DIR --baseline-database-url URL2

latency: GET /api/v1/search/ in this process (Django's test client: the whole request as the server
handles it, without the network), signed in as an admin (every ticket) and as an agent of two teams,
for terms the seeded text holds at three frequencies: an order number (one or two tickets), a rare product
(a few hundred tickets) and a topic word found in about a tenth of all tickets. Each term's share of tickets
is measured and printed. A figure is the median over --rounds of each round's p95.

ingest: inbound receive() messages per second, this code against this database and the code before the
search indexes (a `git worktree` at DIR) against a copy of it without them (--make-baseline-database makes
the copy), alternated run by run in one sitting so that the machine's load weighs on both alike.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.measure import (  # noqa: E402 - the repository joins sys.path first when run as a script
    code_state,
    configure_environment,
    dataset_size,
    machine_info,
    percentile,
    save_figures,
    versions,
)

SELECTIVE_P95_TARGET_MS = 100.0
FREQUENT_P95_TARGET_MS = 300.0
INBOUND_TARGET = 300.0
MAX_INGEST_COST = 0.15
# Candidates for each kind of term; the bench measures their share of tickets and keeps the fitting ones.
RARE_WORDS = ["граммофон", "метроном", "телескоп", "gramophone", "metronome", "harmonium"]
TOPIC_WORDS = ["возврат", "refund", "курьер", "courier", "счёт", "invoice", "гарантия", "warranty"]
# What receive() runs; the models changed only by their index declarations (the database's side).
INGEST_CODE = ("tickets/inbound.py", "tickets/rows.py", "tickets/channels.py", "tickets/content.py")
SEARCH_INDEXES = (
    "message_search",
    "ticket_subject_search",
    "customer_name_search",
    "identity_telegram_handle",
)


def ticket_share(term: str) -> float:
    """The share of all tickets whose messages or subject hold `term`."""
    from django.db import connection

    from tickets.models.search import document_sql

    message, subject = "m.search_document", document_sql("t.subject")
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT (SELECT count(*) FROM (
                        SELECT ticket_id FROM tickets_message m
                        WHERE {message} @@ websearch_to_tsquery('russian', %s)
                        UNION
                        SELECT id FROM tickets_ticket t
                        WHERE {subject} @@ websearch_to_tsquery('russian', %s)) hits)::float8
                   / (SELECT count(*) FROM tickets_ticket)
            """,  # noqa: S608 - our own SQL fragments
            [term, term],
        )
        return cursor.fetchone()[0]


def order_numbers(count: int) -> list[str]:
    """Order numbers customers wrote in recent and old messages (each in one or two tickets)."""
    from django.db import connection

    found: list[str] = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM tickets_message")
        low, high = cursor.fetchone()
        for step in range(count * 4):
            message_id = low + (high - low) * step // (count * 4)
            cursor.execute(
                "SELECT substring(body_text from 'A-[0-9]{6}') FROM tickets_message "
                "WHERE id >= %s AND body_text ~ 'A-[0-9]{6}' ORDER BY id LIMIT 1",
                [message_id],
            )
            row = cursor.fetchone()
            if row and row[0] not in found:
                found.append(row[0])
    return found[:count]


def timed_searches(client: Any, terms: list[str], requests: int) -> tuple[list[float], list[int]]:
    timings, rows = [], []
    for index in range(requests):
        term = terms[index % len(terms)]
        started = time.perf_counter()
        response = client.get("/api/v1/search/", {"q": term})
        timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{term!r}: HTTP {response.status_code} {response.content[:300]!r}")
        rows.append(len(response.json()["results"]))
    return timings, rows


def latency(args: argparse.Namespace) -> dict[str, Any]:
    from rest_framework.test import APIClient

    from bench.measure import api_users

    users = api_users()
    shares = {term: ticket_share(term) for term in RARE_WORDS + TOPIC_WORDS}
    rare = [term for term in RARE_WORDS if 0 < shares[term] < 0.005]
    topic = sorted(TOPIC_WORDS, key=lambda term: abs(shares[term] - 0.10))[:2]
    numbers = order_numbers(4)
    kinds = {
        "order number": (numbers, SELECTIVE_P95_TARGET_MS),
        "rare word": (rare, SELECTIVE_P95_TARGET_MS),
        "topic word (~10% of tickets)": (topic, FREQUENT_P95_TARGET_MS),
    }
    for term in numbers:
        shares[term] = ticket_share(term)
    for kind, (terms, _target) in kinds.items():
        print(f"{kind}: " + ", ".join(f"{term!r} in {shares[term]:.3%} of tickets" for term in terms))
    figures: dict[str, Any] = {"terms": {term: round(shares[term], 5) for term in shares}}
    for role in ("admin", "agent"):
        client = APIClient()
        client.force_authenticate(users[role])
        for kind, (terms, target) in kinds.items():
            timed_searches(client, terms, 10)  # warm-up
            rounds = [timed_searches(client, terms, args.requests) for _ in range(args.rounds)]
            p95s = [percentile(timings, 0.95) for timings, _rows in rounds]
            p50s = [percentile(timings, 0.50) for timings, _rows in rounds]
            result = {
                "p50_ms": round(statistics.median(p50s), 1),
                "p95_ms": round(statistics.median(p95s), 1),
                "p95_each_round": [round(value, 1) for value in p95s],
                "rows": round(statistics.mean(rows for _t, found in rounds for rows in found), 1),
                "target_p95_ms": target,
            }
            figures[f"{role}: {kind}"] = result
            verdict = "ok" if result["p95_ms"] <= target else "MISSED"
            print(
                f"{role}: {kind}: p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms "
                f"(rounds {result['p95_each_round']}), {result['rows']} rows; "
                f"p95 ≤ {target:.0f} ms: {verdict}"
            )
    return figures


_RATE = re.compile(r"inbound run \d+: \d+ messages in [\d.]+ s = (\d+) msg/s")


def one_inbound_run(code: Path, database_url: str, messages: int) -> float:
    """One `bench/run --skip-api --runs 1` of the code at `code` against `database_url`: msg/s."""
    python = str(ROOT / ".venv" / "bin" / "python")
    command = [python, "-m", "bench.measure", "--skip-api", "--runs", "1", "--messages", str(messages)]
    output = subprocess.run(
        [*command, "--database-url", database_url],
        cwd=code,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = _RATE.search(output)
    if match is None:
        raise RuntimeError(f"no inbound rate in the output of {code}:\n{output[-2000:]}")
    return float(match[1])


def inbound_mix(text_chars: int) -> Any:
    """bench.measure's mix of inbound messages; with `text_chars`, its texts (a line or two) replaced by
    seeded message text of that many characters, taken from the current database."""
    import dataclasses
    import random

    from django.db import connection

    from bench.measure import InboundMix

    if not text_chars:
        return InboundMix(random.Random(7))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT string_agg(body_text, E'\\n\\n') FROM (SELECT body_text FROM tickets_message "
            "WHERE id % 997 = 3 LIMIT 2000) s"
        )
        corpus = cursor.fetchone()[0]
    rng = random.Random(11)

    class LongTextMix(InboundMix):
        def build(self, count: int) -> list[tuple[str, Any]]:
            built = []
            for kind, message in super().build(count):
                if kind != "duplicate" and message.text:
                    start = rng.randrange(len(corpus) - text_chars)
                    message = dataclasses.replace(message, text=corpus[start : start + text_chars], html="")
                built.append((kind, message))
            return built

    return LongTextMix(random.Random(7))


def interleaved_ingest(args: argparse.Namespace) -> dict[str, Any]:
    """receive() in this process, batch by batch on one database then the other (same code: checked), so
    both meet the same moment of the machine's load; the cost is the median of the paired ratios."""
    from django.db import connection

    from bench.measure import run_inbound

    names = {
        "with": args.database_url.rsplit("/", 1)[1],
        "without": args.baseline_database_url.rsplit("/", 1)[1],
    }

    def use(label: str) -> None:
        connection.close()
        connection.settings_dict["NAME"] = names[label]

    mixes = {}
    for label in names:
        use(label)
        mixes[label] = inbound_mix(args.text_chars)
    rates: dict[str, list[float]] = {label: [] for label in names}
    # CPU per message (this process and its PostgreSQL backend) hardly moves when other work shares the cores.
    cpu: dict[str, list[float]] = {label: [] for label in names}
    for number in range(args.rounds):
        for label in ("with", "without") if number % 2 == 0 else ("without", "with"):
            use(label)
            run_inbound(mixes[label], 20, "bench")  # untimed: the new connection prepares its statements
            run = run_inbound(mixes[label], args.messages, "bench")
            rates[label].append(run.rate)
            cpu[label].append(run.cpu_ms_per_message)
        print(
            f"pair {number + 1}: with the search indexes {rates['with'][-1]:.0f} msg/s "
            f"({cpu['with'][-1]:.2f} ms CPU a message), without {rates['without'][-1]:.0f} msg/s "
            f"({cpu['without'][-1]:.2f} ms)"
        )
    ratios = [new / old for new, old in zip(rates["with"], rates["without"], strict=True)]
    cost = 1 - statistics.median(ratios)
    cpu_with, cpu_without = statistics.median(cpu["with"]), statistics.median(cpu["without"])
    cpu_cost = 1 - cpu_without / cpu_with
    new, old = statistics.median(rates["with"]), statistics.median(rates["without"])
    verdict = "ok" if cpu_cost <= MAX_INGEST_COST else "MISSED"
    print(
        f"receive(), {args.text_chars or 'bench.measure'}-character texts, {args.rounds} pairs of "
        f"{args.messages}: {new:.0f} msg/s with the search indexes, {old:.0f} without; cost (median of the "
        f"pairs' ratios) {cost:.1%}. CPU a message {cpu_with:.2f} ms with, {cpu_without:.2f} ms without: "
        f"throughput cost {cpu_cost:.1%} (≤ {MAX_INGEST_COST:.0%}: {verdict})"
    )
    return {
        "with_index": rates["with"],
        "without_index": rates["without"],
        "cost": round(cost, 4),
        "cpu_ms_with": cpu["with"],
        "cpu_ms_without": cpu["without"],
        "cpu_cost": round(cpu_cost, 4),
    }


def make_baseline_database(source_url: str, baseline_url: str) -> None:
    """A copy of the seeded database (CREATE DATABASE … TEMPLATE) without the search indexes and without
    the stored message document (dropped: no longer computed on insert; its bytes stay in old rows)."""
    import psycopg2
    from psycopg2 import sql

    source, baseline = source_url.rsplit("/", 1)[1], baseline_url.rsplit("/", 1)[1]
    maintenance = psycopg2.connect(source_url.rsplit("/", 1)[0] + "/postgres")
    maintenance.autocommit = True
    with maintenance.cursor() as cursor:
        cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(baseline)))
        cursor.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(baseline), sql.Identifier(source))
        )
    maintenance.close()
    copy = psycopg2.connect(baseline_url)
    copy.autocommit = True
    with copy.cursor() as cursor:
        for index in SEARCH_INDEXES:
            cursor.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(index)))
        cursor.execute("ALTER TABLE tickets_message DROP COLUMN IF EXISTS search_document")
        cursor.execute("DELETE FROM django_migrations WHERE app = 'tickets' AND name = '0007_ticket_search'")
    copy.close()


def ingest(args: argparse.Namespace) -> dict[str, Any]:
    baseline = Path(args.baseline).resolve()
    if not (baseline / "bench" / "measure.py").exists():
        raise SystemExit(f"{baseline} is not a checkout of this repository")
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=baseline, capture_output=True, text=True, check=True
    ).stdout.strip()
    if args.interleaved:
        changed = subprocess.run(
            ["git", "diff", "--stat", "HEAD", head, "--", *INGEST_CODE],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        if changed:
            raise SystemExit(
                f"--interleaved runs this code on both databases, but the ingest code changed:\n{changed}"
            )
        print(f"ingest code ({', '.join(INGEST_CODE)}) the same at {head} and here: this code runs on both")
    if args.make_baseline_database:
        make_baseline_database(args.database_url, args.baseline_database_url)
    if args.interleaved:
        return {"baseline": head, "interleaved": True, **interleaved_ingest(args)}
    with_index: list[float] = []
    without: list[float] = []
    for number in range(1, args.rounds + 1):
        # Alternate which goes first, so neither always runs on the warmer machine.
        order = [("with", ROOT, args.database_url), ("without", baseline, args.baseline_database_url)]
        if number % 2 == 0:
            order.reverse()
        for label, code, url in order:
            rate = one_inbound_run(code, url, args.messages)
            (with_index if label == "with" else without).append(rate)
            print(f"round {number}: {label} the search indexes: {rate:.0f} msg/s")
    new, old = statistics.median(with_index), statistics.median(without)
    cost = 1 - new / old
    print(
        f"receive(): {new:.0f} msg/s with the search indexes, {old:.0f} msg/s without (baseline {head}), "
        f"medians of {args.rounds}: cost {cost:.1%} (≤ {MAX_INGEST_COST:.0%}: "
        f"{'ok' if cost <= MAX_INGEST_COST else 'MISSED'}; ≥ {INBOUND_TARGET:.0f} msg/s: "
        f"{'ok' if new >= INBOUND_TARGET else 'MISSED'})"
    )
    return {
        "baseline": head,
        "with_index": with_index,
        "without_index": without,
        "median_with": new,
        "median_without": old,
        "cost": round(cost, 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="a database bench/seed.py loaded")
    commands = parser.add_subparsers(dest="command", required=True)
    timing = commands.add_parser("latency", help="search p95 per kind of term")
    timing.add_argument("--requests", type=int, default=100, help="timed searches per round")
    timing.add_argument("--rounds", type=int, default=3)
    costs = commands.add_parser("ingest", help="receive() with and without the search indexes")
    costs.add_argument("--baseline", required=True, help="a worktree at the commit before the indexes")
    costs.add_argument("--baseline-database-url", required=True)
    costs.add_argument("--make-baseline-database", action="store_true", help="copy --database-url first")
    costs.add_argument("--rounds", type=int, default=5)
    costs.add_argument("--messages", type=int, default=2000, help="messages per inbound run")
    costs.add_argument(
        "--interleaved", action="store_true", help="this code, batches alternating between the databases"
    )
    costs.add_argument("--text-chars", type=int, default=0, help="with --interleaved: texts this long")
    args = parser.parse_args(argv)
    env = configure_environment(args.database_url, "bench")
    import django

    django.setup()
    results: dict[str, Any] = {
        "machine": machine_info(),
        "versions": versions(),
        "dataset": dataset_size(),
        "code": code_state(),
        "command": " ".join(["bench/run search", *sys.argv[1:]]),
        "settings": {"DEBUG": env["DEBUG"]},
    }
    machine = results["machine"]
    print(f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['ram_gib']} GiB, {machine['date']}")
    print("dataset: " + ", ".join(f"{count:,} {name}" for name, count in results["dataset"].items()))
    print(f"code:    {results['code']}")
    if args.command == "latency":
        results["search"] = latency(args)
    else:
        from django.db import connections

        connections.close_all()  # the template copy needs the source database without sessions
        results["ingest"] = ingest(args)
    save_figures(results, f"search-{args.command}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
