"""The benchmark behind bench/run: inbound messages per second and ticket list API latency.

The API is served by the production web command (gunicorn, helpdesk/gunicorn.conf.py), one client at a time;
throughput under concurrent clients is bench/serving.py's.

Runs against the seeded database (bench/seed.py), with production settings (DEBUG off) and the real
Redis broker: events go to a dedicated Celery queue ("bench") that no worker consumes and that is
purged after each run.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/helpdesk_bench"
INBOUND_TARGET = 300.0  # messages per second, one process
API_P95_TARGET_MS = 50.0


def configure_environment(database_url: str, queue: str) -> dict[str, str]:
    """Production-like settings for this process and the server it starts."""
    env = {
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "helpdesk.settings",
        "DEBUG": "false",
        "CELERY_QUEUE": queue,
        "SECURE_SSL_REDIRECT": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-" + "x" * 40)
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    sys.path.insert(0, str(ROOT))
    return env


# Machine and versions.


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram_gib = 0.0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": ram_gib,
        "kernel": platform.release(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def versions() -> dict[str, str]:
    from importlib.metadata import version

    import redis
    from django.db import connection

    found = {"python": platform.python_version()}
    for package in ("Django", "djangorestframework", "django-filter", "psycopg2-binary", "celery", "kombu"):
        with contextlib.suppress(Exception):
            found[package] = version(package)
    for package in ("uvicorn", "gunicorn"):
        with contextlib.suppress(Exception):
            found[package] = version(package)
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        found["postgresql"] = cursor.fetchone()[0].split()[0]
    from django.conf import settings

    found["redis"] = redis.Redis.from_url(settings.CELERY_BROKER_URL).info("server")["redis_version"]
    return found


def code_state() -> str:
    """The commit measured, and the files that shape these figures if they differ from it."""
    watched = ["tickets", "helpdesk", "realtime", "requirements.txt"]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", *watched],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    changed = sorted(line[3:] for line in dirty if line.strip())
    return f"{head}" + (f" + uncommitted changes in {', '.join(changed)}" if changed else " (clean)")


def dataset_size() -> dict[str, int]:
    from django.db import connection

    sizes = {}
    with connection.cursor() as cursor:
        for table in ("tickets_ticket", "tickets_message", "tickets_customer", "tickets_ticketevent"):
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed table names
            sizes[table.removeprefix("tickets_")] = cursor.fetchone()[0]
    return sizes


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = share * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# Inbound: tickets.inbound.receive() in this process.


@dataclass
class InboundRun:
    messages: int
    seconds: float
    per_kind: dict[str, list[float]] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    queued: int = 0
    unpublished: int = 0
    # CPU seconds spent on the run by this process and by its PostgreSQL backend (same machine). Unlike the
    # wall clock, they hardly move when other work shares the cores, so runs on a busy machine still compare.
    client_cpu: float = 0.0
    backend_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def cpu_ms_per_message(self) -> float:
        return (self.client_cpu + self.backend_cpu) * 1000 / self.messages


def backend_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a local process, from /proc (PostgreSQL's backend for our connection)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class InboundMix:
    """Builds the messages of a run: new customers, replies by In-Reply-To, thread-key replies, resends.

    New conversations come from new customers on every channel; replies answer seeded email tickets
    (In-Reply-To), chat messages continue seeded widget conversations (thread key); duplicates resend a
    message this run already sent, or a seeded one (a mail server delivering twice).
    """

    SHARES = (("new", 0.40), ("reply", 0.40), ("thread", 0.05), ("duplicate", 0.15))

    def __init__(self, rng: random.Random) -> None:
        from django.db import connection

        self.rng = rng
        self.tag = f"b{int(time.time()):x}{rng.getrandbits(16):04x}"
        self.counter = 0
        with connection.cursor() as cursor:
            cursor.execute("SELECT min(id), max(id) FROM tickets_message")
            self.min_id, self.max_id = cursor.fetchone()
        self.sent: list[Any] = []

    def _sample_messages(self, channel: str, count: int, *, open_share: float = 0.0) -> list[tuple]:
        """Seeded inbound messages on `channel`: (external id, sender address, subject, thread key).

        `open_share` of them belong to tickets not closed yet (the reply threads into the ticket, reopening
        it if solved); the rest are any message, mostly of closed tickets (the reply opens a follow-up).
        """
        from django.db import connection

        with_open = round(count * open_share)
        rows: list[tuple] = []
        with connection.cursor() as cursor:
            if with_open:
                cursor.execute(
                    """
                    SELECT m.external_id, i.address, t.subject, t.thread_key
                    FROM (SELECT id, subject, thread_key, customer_id FROM tickets_ticket
                          WHERE channel = %s AND status <> 'closed' ORDER BY random() LIMIT %s) t
                    JOIN LATERAL (SELECT external_id FROM tickets_message
                                  WHERE ticket_id = t.id AND direction = 'in' AND external_id IS NOT NULL
                                  ORDER BY created_at DESC LIMIT 1) m ON true
                    JOIN tickets_identity i ON i.customer_id = t.customer_id AND i.channel = %s
                    """,
                    [channel, with_open, channel],
                )
                rows.extend(cursor.fetchall())
            ids = [self.rng.randint(self.min_id, self.max_id) for _ in range((count - with_open) * 6)]
            cursor.execute(
                """
                SELECT m.external_id, i.address, t.subject, t.thread_key
                FROM tickets_message m
                JOIN tickets_ticket t ON t.id = m.ticket_id
                JOIN tickets_identity i ON i.customer_id = m.customer_id AND i.channel = m.channel
                WHERE m.id = ANY(%s) AND m.channel = %s AND m.direction = 'in'
                """,
                [ids, channel],
            )
            rows.extend(cursor.fetchall()[: count - with_open])
        self.rng.shuffle(rows)
        return rows

    def build(self, count: int) -> list[tuple[str, Any]]:
        from tickets.channels import InboundMessage

        rng = self.rng
        kinds = [kind for kind, share in self.SHARES for _ in range(round(share * count))]
        kinds = (kinds + ["new"] * count)[:count]
        rng.shuffle(kinds)
        # Customers answer recent conversations: most replies go to tickets still open or solved.
        replies = iter(self._sample_messages("email", kinds.count("reply"), open_share=0.8))
        threads = iter(self._sample_messages("widget", kinds.count("thread"), open_share=1.0))
        resends = iter(self._sample_messages("email", kinds.count("duplicate")))
        messages: list[tuple[str, Any]] = []
        for kind in kinds:
            self.counter += 1
            number = self.counter
            external_id = f"<{self.tag}.{number}@example.com>"
            if kind == "reply" and (row := next(replies, None)):
                original_id, address, subject = row[0], row[1], row[2]
                messages.append(
                    (
                        "reply",
                        InboundMessage(
                            channel="email",
                            external_id=external_id,
                            sender_address=address,
                            subject=f"Re: {subject}",
                            text="Hello, any news on this? The problem is still there.\n\n> quoted text",
                            html="<p>Hello, any news on this?</p><blockquote>quoted text</blockquote>",
                            in_reply_to=(original_id,),
                        ),
                    )
                )
            elif kind == "thread" and (row := next(threads, None)):
                messages.append(
                    (
                        "thread",
                        InboundMessage(
                            channel="widget",
                            external_id=f"{self.tag}-{number}",
                            sender_address=row[1],
                            text="Are you still there?",
                            thread_key=row[3],
                        ),
                    )
                )
            elif kind == "duplicate" and self.sent and rng.random() < 0.5:
                messages.append(("duplicate", rng.choice(self.sent)))
            elif kind == "duplicate" and (row := next(resends, None)):
                # A mail server delivering a seeded message a second time.
                messages.append(
                    ("duplicate", InboundMessage(channel="email", external_id=row[0], sender_address=row[1]))
                )
            else:
                messages.append(("new", self._new_conversation(number)))
            if kind != "duplicate":
                self.sent.append(messages[-1][1])
        return messages

    def _new_conversation(self, number: int):
        from tickets.channels import InboundMessage
        from tickets.models import MessageKind

        channel = self.rng.choices(("email", "widget", "telegram", "phone"), (45, 25, 20, 10))[0]
        if channel == "email":
            return InboundMessage(
                channel="email",
                external_id=f"<{self.tag}.{number}@example.com>",
                sender_address=f"new.{self.tag}.{number}@example.com",
                sender_name="New Customer",
                subject="Cannot pay the invoice",
                text="Hello,\n\nthe payment page shows an error when I pay invoice 2026-1182.\n\nRegards",
                html="<p>Hello,</p><p>the payment page shows an <b>error</b> when I try to pay.</p>",
                new_conversation=True,
            )
        if channel == "widget":
            return InboundMessage(
                channel="widget",
                external_id=f"{self.tag}-{number}",
                sender_address=f"visitor-{self.tag}-{number}",
                text="Hi! How do I change my delivery address?",
                thread_key=f"conv-{self.tag}-{number}",
            )
        if channel == "telegram":
            user_id = str(7_000_000_000 + int(self.tag[1:9], 16) % 10**8 * 10 + number)
            return InboundMessage(
                channel="telegram",
                external_id=f"{user_id}:{number}",
                sender_address=user_id,
                sender_name="Telegram User",
                text="Здравствуйте, заказ не пришёл",
                thread_key=user_id,
            )
        phone = f"+4420{(int(self.tag[1:9], 16) * 7919 + number) % 10**8:08d}"
        return InboundMessage(
            channel="phone",
            external_id=f"call-{self.tag}-{number}",
            sender_address=phone,
            kind=MessageKind.CALL,
            thread_key=f"call-{self.tag}-{number}",
            channel_data={"duration": 95},
        )


def run_inbound(mix: InboundMix, count: int, queue: str) -> InboundRun:
    import redis
    from django.conf import settings
    from django.db import connection

    from tickets.inbound import receive
    from tickets.models import TicketEvent

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    messages = mix.build(count)
    first_event_id = TicketEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    per_kind: dict[str, list[float]] = {}
    outcomes = {"tickets created": 0, "duplicates": 0, "threaded": 0}
    clock = time.perf_counter
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend_pid,) = cursor.fetchone()
    backend_before, client_before = backend_cpu_seconds(backend_pid), time.process_time()
    started = clock()
    for kind, message in messages:
        before = clock()
        received = receive(message)
        per_kind.setdefault(kind, []).append(clock() - before)
        if received.duplicate:
            outcomes["duplicates"] += 1
        elif received.ticket_created:
            outcomes["tickets created"] += 1
        else:
            outcomes["threaded"] += 1
    seconds = clock() - started
    client_cpu = time.process_time() - client_before
    backend_cpu = backend_cpu_seconds(backend_pid) - backend_before
    if connection.in_atomic_block:
        raise RuntimeError("receive() must run in autocommit mode, each message its own transaction")
    # Events published after commit, possibly batched by a background flush: let the last ones go out
    # (untimed) before counting what reached the broker and purging it.
    run_events = TicketEvent.objects.filter(id__gt=first_event_id, published_at=None)
    deadline = time.monotonic() + 10
    while (unpublished := run_events.count()) and time.monotonic() < deadline:
        time.sleep(0.2)
    queued = broker.llen(queue)
    broker.delete(queue)
    return InboundRun(
        messages=len(messages),
        seconds=seconds,
        per_kind=per_kind,
        outcomes=outcomes,
        queued=queued,
        unpublished=unpublished,
        client_cpu=client_cpu,
        backend_cpu=backend_cpu,
    )


# Ticket list API through a real server.


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


WEB_COMMAND = ["gunicorn", "helpdesk.wsgi:application", "--config", "helpdesk/gunicorn.conf.py"]


@dataclass
class RunningServer:
    port: int
    process: subprocess.Popen


@contextlib.contextmanager
def serve(
    command: list[str],
    port: int,
    env: dict[str, str],
    *,
    name: str,
    log: Path | None = None,
    checkout: Path = ROOT,
) -> Iterator[RunningServer]:
    """Start `command` (listening on `port`) in `checkout` and yield once its GET /healthz answers; stop it
    after. Its output goes to `log` when given (a file kept in bench/out), else to ours.
    """
    output = log.open("ab") if log else None
    process = subprocess.Popen(
        command,
        cwd=checkout,
        env={**os.environ, **env},
        stdout=output,
        stderr=subprocess.STDOUT if log else None,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/healthz")
                response = connection.getresponse()
                body = response.read()
                connection.close()
                # 503 is an answer too: the server is up, but say which check fails (figures may suffer).
                if response.status == 503:
                    print(f"warning: {name} /healthz reports failing checks: {body[:500]!r}")
                if response.status in (200, 503):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{name} did not start")
            time.sleep(0.2)
        yield RunningServer(port, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if output:
            output.close()


def server(
    env: dict[str, str], *, workers: int | None = None, threads: int | None = None
) -> contextlib.AbstractContextManager[RunningServer]:
    """The production web command (gunicorn, helpdesk/gunicorn.conf.py) on a free port.

    Sized like production (a worker per core, 8 threads) unless `workers`/`threads` say otherwise; the
    access log goes to /dev/null so that writing it does not weigh on the figures.
    """
    port = free_port()
    python_bin = Path(sys.executable).parent
    command = [str(python_bin / WEB_COMMAND[0]), *WEB_COMMAND[1:], "--bind", f"127.0.0.1:{port}"]
    sizing = {"WEB_ACCESS_LOG": "/dev/null"}
    if workers:
        sizing["WEB_CONCURRENCY"] = str(workers)
    if threads:
        sizing["WEB_THREADS"] = str(threads)
    return serve(command, port, {**env, **sizing}, name="gunicorn")


@dataclass
class Scenario:
    name: str
    user: str
    query: dict[str, Any] = field(default_factory=dict)
    follow_next: bool = False


def timed_requests(port: int, token: str, scenario: Scenario, count: int, warmup: int) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
    first_path = "/api/v1/tickets/" + ("?" + urllib.parse.urlencode(scenario.query) if scenario.query else "")
    path = first_path
    timings: list[float] = []
    rows: list[int] = []
    clock = time.perf_counter
    for index in range(warmup + count):
        started = clock()
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        elapsed = clock() - started
        if response.status != 200:
            raise RuntimeError(f"{scenario.name}: HTTP {response.status} {body[:300]!r}")
        if index >= warmup:
            timings.append(elapsed * 1000)
        page = json.loads(body)
        rows.append(len(page["results"]))
        if scenario.follow_next:
            next_url = page["next"]
            if index < warmup or not next_url:
                path = first_path  # the warm-up does not eat into the depth
            else:
                parsed = urllib.parse.urlsplit(next_url)
                path = f"{parsed.path}?{parsed.query}"
    connection.close()
    return {
        "requests": len(timings),
        "p50": percentile(timings, 0.50),
        "p95": percentile(timings, 0.95),
        "p99": percentile(timings, 0.99),
        "max": max(timings),
        "rows": round(statistics.mean(rows[warmup:]), 1),
    }


def deep_cursor(visible_to, share: float = 0.9) -> str:
    """A cursor, as the API would hand out, for the page `share` of the way down this user's list."""
    from rest_framework.pagination import Cursor, CursorPagination

    from tickets import selectors

    visible = selectors.tickets_visible_to(visible_to)
    depth = int(visible.count() * share)
    row = visible.order_by("-updated_at").values_list("updated_at", flat=True)[depth]
    paginator = CursorPagination()
    paginator.base_url = "/api/v1/tickets/"
    encoded = paginator.encode_cursor(Cursor(offset=0, reverse=False, position=str(row)))
    return urllib.parse.parse_qs(urllib.parse.urlsplit(encoded).query)["cursor"][0]


def sql_breakdown(scenarios: list[Scenario], users: dict[str, Any]) -> dict[str, dict[str, float]]:
    """In-process: SQL statements and SQL time behind one request of each scenario (the rest is Python)."""
    from django.db import connection
    from rest_framework.test import APIClient

    breakdown = {}
    for scenario in scenarios:
        client = APIClient()
        client.force_authenticate(users[scenario.user])
        client.get("/api/v1/tickets/", scenario.query)  # warm
        samples = []
        for _ in range(20):
            statements: list[float] = []

            def timer(execute, sql, params, many, context, statements=statements):
                started = time.perf_counter()
                try:
                    return execute(sql, params, many, context)
                finally:
                    statements.append((time.perf_counter() - started) * 1000)

            started = time.perf_counter()
            with connection.execute_wrapper(timer):
                response = client.get("/api/v1/tickets/", scenario.query)
            total = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"{scenario.name}: HTTP {response.status_code}")
            samples.append((len(statements), sum(statements), total))
        breakdown[scenario.name] = {
            "queries": samples[-1][0],
            "sql_ms": round(statistics.median(s[1] for s in samples), 2),
            "in_process_ms": round(statistics.median(s[2] for s in samples), 2),
        }
    return breakdown


def api_users() -> dict[str, Any]:
    from rest_framework.authtoken.models import Token

    from bench.seed import ADMIN_USERNAME, AGENT_USERNAME
    from tickets.models import User

    admin = User.objects.get(username=ADMIN_USERNAME)
    agent = User.objects.get(username=AGENT_USERNAME.format(4))  # an agent in two of the six teams
    tokens = {user.username: Token.objects.get_or_create(user=user)[0].key for user in (admin, agent)}
    return {"admin": admin, "agent": agent, "tokens": tokens}


def build_scenarios(users: dict[str, Any]) -> list[Scenario]:
    from tickets.models import Team

    admin, agent = users["admin"], users["agent"]
    agent_teams = list(agent.teams.order_by("id").values_list("id", "name"))
    other_team = Team.objects.exclude(id__in=[team_id for team_id, _ in agent_teams]).order_by("id").first()
    busiest = Team.objects.get(name="Tech support")
    return [
        Scenario("admin: all", "admin"),
        Scenario("admin: status=open", "admin", {"status": "open"}),
        Scenario(f"admin: team={busiest.name}", "admin", {"team": busiest.pk}),
        Scenario(
            f"admin: team={other_team.name}&status=open", "admin", {"team": other_team.pk, "status": "open"}
        ),
        Scenario("admin: deep page (90% down)", "admin", {"cursor": deep_cursor(admin)}),
        Scenario("admin: paging (next links)", "admin", follow_next=True),
        Scenario("agent: all", "agent"),
        Scenario("agent: status=open", "agent", {"status": "open"}),
        Scenario(f"agent: team={agent_teams[0][1]}", "agent", {"team": agent_teams[0][0]}),
        Scenario("agent: deep page (90% down)", "agent", {"cursor": deep_cursor(agent)}),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Helpdesk benchmark: inbound msg/s and ticket list API latency",
        epilog="Serving under load (API requests/s, inbound over HTTP, idle realtime sockets): "
        "bench/run serving --help, i.e. .venv/bin/python -m bench.serving.",
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--queue", default="bench", help="Celery queue the events go to (purged after)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--messages", type=int, default=2000, help="messages per inbound run")
    parser.add_argument("--requests", type=int, default=300, help="timed requests per API scenario")
    parser.add_argument("--skip-inbound", action="store_true")
    parser.add_argument("--notes", default="", help="free text saved with the figures")
    parser.add_argument("--skip-api", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    return start(parser, args, report)


def start(parser: argparse.ArgumentParser, args: argparse.Namespace, report: Callable[..., int]) -> int:
    """Refuse a queue a worker consumes, set up production-like Django, then run `report(args, env)`."""
    if args.queue in ("helpdesk", "celery"):
        parser.error("use a queue no worker consumes: the benchmark purges it")
    env = configure_environment(args.database_url, args.queue)
    import django

    django.setup()
    return report(args, env)


def report(args, env: dict[str, str]) -> int:
    from django.conf import settings

    results: dict[str, Any] = {
        "machine": machine_info(),
        "versions": versions(),
        "dataset": dataset_size(),
        "load_before": os.getloadavg(),
        "settings": {"DEBUG": settings.DEBUG, "queue": settings.CELERY_TASK_DEFAULT_QUEUE},
        "command": " ".join(["bench/run", *sys.argv[1:]]),
        "code": code_state(),
        "notes": args.notes,
    }
    machine = results["machine"]
    print(
        f"machine:  {machine['cpu']}, {machine['cores']} cores, {machine['ram_gib']} GiB RAM, "
        f"{machine['date']}"
    )
    print("versions: " + ", ".join(f"{name} {value}" for name, value in results["versions"].items()))
    print("dataset:  " + ", ".join(f"{count:,} {name}" for name, count in results["dataset"].items()))
    print(f"code:     {results['code']}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in results['load_before'])}")
    print(f"DEBUG={settings.DEBUG}, broker {settings.CELERY_BROKER_URL}, queue {args.queue!r}")
    print()
    rows: list[tuple[str, str, str]] = []

    if not args.skip_inbound:
        mix = InboundMix(random.Random(args.seed))
        run_inbound(mix, 200, args.queue)  # warm-up: imports, connections, caches
        runs = []
        for number in range(1, args.runs + 1):
            run = run_inbound(mix, args.messages, args.queue)
            runs.append(run)
            per_kind = ", ".join(
                f"{kind} {len(times)}×{statistics.median(times) * 1000:.2f} ms"
                for kind, times in sorted(run.per_kind.items())
            )
            print(
                f"inbound run {number}: {run.messages} messages in {run.seconds:.2f} s = "
                f"{run.rate:.0f} msg/s; CPU {run.cpu_ms_per_message:.2f} ms/msg "
                f"(this process {run.client_cpu * 1000 / run.messages:.2f}, PostgreSQL "
                f"{run.backend_cpu * 1000 / run.messages:.2f}) ({per_kind}); outcomes {run.outcomes}; "
                f"{run.queued} Celery messages queued, "
                f"{run.unpublished} events unpublished"
            )
        rates = [run.rate for run in runs]
        median_rate = statistics.median(rates)
        results["inbound"] = {
            "runs": [
                {
                    "messages": r.messages,
                    "seconds": round(r.seconds, 3),
                    "rate": round(r.rate, 1),
                    "outcomes": r.outcomes,
                    "queued": r.queued,
                    "unpublished": r.unpublished,
                    "cpu_ms_per_message": round(r.cpu_ms_per_message, 3),
                    "median_ms_by_kind": {
                        k: round(statistics.median(v) * 1000, 2) for k, v in r.per_kind.items()
                    },
                }
                for r in runs
            ],
            "median_rate": round(median_rate, 1),
            "median_cpu_ms_per_message": round(statistics.median(r.cpu_ms_per_message for r in runs), 3),
        }
        verdict = "ok" if median_rate >= INBOUND_TARGET else "MISSED"
        rows.append(
            (
                f"inbound receive(), 1 process, median of {len(runs)}×{args.messages} msgs",
                f"{median_rate:.0f} msg/s (min {min(rates):.0f}, max {max(rates):.0f})",
                f"≥ {INBOUND_TARGET:.0f} msg/s: {verdict}",
            )
        )
        cpu = sorted(run.cpu_ms_per_message for run in runs)
        rows.append(
            (
                "inbound receive(), CPU per message (this process + its PostgreSQL backend), median",
                f"{statistics.median(cpu):.2f} ms (min {cpu[0]:.2f}, max {cpu[-1]:.2f}): "
                f"{1000 / statistics.median(cpu):.0f} msg/s if nothing else used the CPUs",
                f"≤ {1000 / INBOUND_TARGET:.2f} ms",
            )
        )
        print()

    if not args.skip_api:
        users = api_users()
        scenarios = build_scenarios(users)
        # One client, keep-alive, one request at a time: latency, not throughput (bench/serving.py).
        api: dict[str, Any] = {"gunicorn": {}}
        with server(env) as web:
            for scenario in scenarios:
                token = users["tokens"][users[scenario.user].username]
                measured = timed_requests(web.port, token, scenario, args.requests, warmup=20)
                api["gunicorn"][scenario.name] = measured
                verdict = "ok" if measured["p95"] <= API_P95_TARGET_MS else "MISSED"
                rows.append(
                    (
                        f"GET /api/v1/tickets/ {scenario.name} (gunicorn)",
                        f"p50 {measured['p50']:.1f} ms, p95 {measured['p95']:.1f} ms, "
                        f"p99 {measured['p99']:.1f} ms "
                        f"({measured['requests']} req, {measured['rows']:.0f} rows)",
                        f"p95 ≤ {API_P95_TARGET_MS:.0f} ms: {verdict}",
                    )
                )
                print(f"gunicorn {scenario.name}: {measured}")
        results["api"] = api
        results["api_sql"] = sql_breakdown(scenarios, users)
        print()
        print("in-process breakdown (median of 20): SQL statements, SQL ms, whole request ms")
        for name, figures in results["api_sql"].items():
            print(
                f"  {name:<40} {figures['queries']:>2} queries {figures['sql_ms']:>7.2f} ms SQL"
                f" {figures['in_process_ms']:>7.2f} ms total"
            )
        print()

    results["load_after"] = os.getloadavg()
    print("| measure | result | target |\n|---|---|---|")
    for row in rows:
        print(f"| {' | '.join(row)} |")
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in results['load_after'])}")
    save_figures(results, "results")
    return 0


def save_figures(results: dict[str, Any], kind: str) -> Path:
    """Write the figures as JSON to bench/out/KIND-<UTC time>.json (not committed) and say where."""
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    path = out / f"{kind}-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    print(f"figures saved to {path.relative_to(ROOT)}")
    return path


if __name__ == "__main__":
    raise SystemExit(main())
