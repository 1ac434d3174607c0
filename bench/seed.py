"""Bulk-load a realistic helpdesk: N tickets with their messages, customers, identities, teams and agents.

    .venv/bin/python bench/seed.py --tickets 1000000 [--database-url postgres://...] [--reset]

Rows go in with PostgreSQL COPY (psycopg2's copy_expert), streamed from generators, so a million
tickets load in minutes. The database (helpdesk_bench by default, never the development one) is
created and migrated when missing; --reset drops and recreates it first.

`seed(connection, tickets=N)` is the library entry: it takes a Django connection (the test database
in bench/test_seed.py), runs in one transaction and appends to whatever the tables already hold.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/helpdesk_bench"

# Username of the admin the benchmark signs in as; agents are bench-agent-001, -002, ...
ADMIN_USERNAME = "bench-admin"
AGENT_USERNAME = "bench-agent-{:03d}"
SUPERVISOR_USERNAME = "bench-supervisor-{:02d}"

_US = 1_000_000
_DAY = 86_400 * _US
_HOUR = 3_600 * _US
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

TEAMS = {
    # team name: (share of routed tickets, tags used by that team, subjects)
    "Billing": (
        0.24,
        ["invoice", "refund", "payment", "vat", "subscription"],
        [
            "Invoice for {month} is missing",
            "Refund for order {order}",
            "Charged twice",
            "Change billing address",
        ],
    ),
    "Tech support": (
        0.30,
        ["bug", "login", "api", "mobile", "performance"],
        ["Cannot log in", "App crashes on start", "API returns 500", "Sync is very slow", "Password reset"],
    ),
    "Delivery": (
        0.18,
        ["delivery", "tracking", "damaged", "address"],
        [
            "Where is order {order}?",
            "Parcel arrived damaged",
            "Change delivery address",
            "Courier did not come",
        ],
    ),
    "Sales": (
        0.12,
        ["pricing", "quote", "enterprise", "demo"],
        ["Quote for {seats} seats", "Enterprise plan question", "Discount for non-profits", "Book a demo"],
    ),
    "Returns": (
        0.10,
        ["return", "exchange", "warranty"],
        ["Return order {order}", "Exchange for another size", "Warranty repair"],
    ),
    "VIP": (
        0.06,
        ["vip", "escalation", "complaint"],
        ["Urgent: service down", "Complaint about support", "Account manager request"],
    ),
}
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October"]

CHANNEL_WEIGHTS = {"email": 0.45, "widget": 0.25, "telegram": 0.20, "phone": 0.10}
PRIORITY_WEIGHTS = {"low": 0.15, "normal": 0.65, "high": 0.15, "urgent": 0.05}
# How many messages a ticket has; the mean is about 2.5.
MESSAGE_COUNT_WEIGHTS = {1: 0.25, 2: 0.30, 3: 0.25, 4: 0.12, 5: 0.05, 6: 0.03}

FIRST_NAMES_RU = [
    "Иван",
    "Мария",
    "Алексей",
    "Ольга",
    "Дмитрий",
    "Анна",
    "Сергей",
    "Елена",
    "Павел",
    "Наталья",
]
LAST_NAMES_RU = ["Петров", "Иванова", "Смирнов", "Кузнецова", "Попов", "Соколова", "Лебедев", "Козлова"]
FIRST_NAMES_EN = ["John", "Emma", "Oliver", "Sophia", "Liam", "Mia", "Noah", "Ava", "Lucas", "Chloe"]
LAST_NAMES_EN = ["Smith", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Müller", "Schmidt", "García"]
EMAIL_DOMAINS = ["example.com", "example.org", "example.net", "mail.example.ru", "inbox.example.de"]

# Subject lines of chat tickets (the first line of the first message); message texts come from bench.texts.
INBOUND_TEXTS = [
    "Hello,\n\nI still have not received an answer about this. Could you please check?\n\nThanks",
    "Здравствуйте! Подскажите, пожалуйста, когда будет решён мой вопрос?",
    "Hi, the problem is still there after the update. Screenshot attached earlier.",
    "Добрый день. Деньги списали дважды, прошу вернуть одну оплату.",
    "Thanks, that worked! One more question: can I change the plan later?",
    "Good morning, any news on this? It is blocking our team.",
    "Спасибо за ответ, но проблема не решена. Приложение всё так же вылетает.",
]


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text(value: str) -> str:
    """A value in COPY's text format."""
    return value.translate(_COPY_ESCAPES)


class PlannedTicket(NamedTuple):
    """One ticket as planned before the COPY (times are epoch microseconds)."""

    ticket_id: int
    owner: int
    channel: str
    status: str
    priority: str
    team_index: int | None
    assignee: int | None
    tags: list[str]
    created_at: int
    updated: int
    first_response: int | None
    solved: int | None
    closed: int | None
    follow_up_of: int | None
    times: list[int]


@dataclass
class SeedStats:
    customers: int = 0
    identities: int = 0
    tickets: int = 0
    messages: int = 0
    events: int = 0
    teams: int = 0
    agents: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)


class _ChunkReader:
    """A file-like object over an iterator of text chunks, for copy_expert: the rows are never all in memory.

    psycopg2 sends whatever read() returns, so a chunk may be longer than the size it asked for.
    """

    def __init__(self, chunks: Iterator[str]) -> None:
        self._chunks = chunks

    def read(self, size: int = -1) -> str:
        return next(self._chunks, "")


def _chunked(lines: Iterable[str], rows_per_chunk: int = 2000) -> Iterator[str]:
    batch: list[str] = []
    append = batch.append
    for line in lines:
        append(line)
        if len(batch) >= rows_per_chunk:
            yield "".join(batch)
            batch.clear()
    if batch:
        yield "".join(batch)


_DAY_TEXT: dict[int, str] = {}


def _ts(microseconds: int | None) -> str:
    """A UTC timestamp in COPY's text format, from microseconds since the epoch (several million calls)."""
    if microseconds is None:
        return "\\N"
    days, rest = divmod(microseconds, _DAY)
    day = _DAY_TEXT.get(days)
    if day is None:
        day = _DAY_TEXT[days] = (_EPOCH + timedelta(days=days)).date().isoformat()
    seconds, micro = divmod(rest, _US)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{day} {hour:02d}:{minute:02d}:{second:02d}.{micro:06d}+00"


def _weighted(rng: random.Random, weights: dict) -> Callable[[], object]:
    """A fast sampler over a fixed distribution (cumulative table + bisect)."""
    keys = list(weights)
    cumulative = list(itertools.accumulate(weights[key] for key in keys))
    total = cumulative[-1]
    rand = rng.random

    def pick():
        return keys[bisect.bisect(cumulative, rand() * total)]

    return pick


def _lognormal_us(rng: random.Random, median_hours: float, sigma: float) -> int:
    return int(rng.lognormvariate(math.log(median_hours), sigma) * _HOUR)


def _copy(cursor, table: str, columns: list[str], lines: Iterable[str]) -> None:
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    cursor.copy_expert(sql, _ChunkReader(_chunked(lines)), 1 << 18)


def _max_id(cursor, table: str) -> int:
    cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")  # noqa: S608 - table names are ours
    return cursor.fetchone()[0]


def _sync_id_sequence(cursor, table: str) -> None:
    """Explicit ids went in with COPY: move the identity sequence past them."""
    cursor.execute(
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), GREATEST((SELECT MAX(id) FROM {table}), 1))"  # noqa: S608
    )


_LOADED_TABLES = (
    "tickets_customer",
    "tickets_identity",
    "tickets_ticket",
    "tickets_message",
    "tickets_ticketevent",
)


def _deferrable_structures(cursor) -> list[tuple[str, str, str]]:
    """What makes COPY slow and can be rebuilt in one pass after it, as pg_restore does.

    (table, name, definition) for the loaded tables' unique and foreign-key constraints and for their
    indexes that back no constraint. Primary keys stay: the ids go in ascending, so they cost little.
    """
    cursor.execute(
        """
        SELECT tc.relname, c.conname, pg_get_constraintdef(c.oid), c.contype
        FROM pg_constraint c JOIN pg_class tc ON tc.oid = c.conrelid
        WHERE tc.relname = ANY(%s) AND tc.relnamespace = 'public'::regnamespace AND c.contype IN ('u', 'f')
        ORDER BY c.contype DESC, tc.relname, c.conname
        """,
        [list(_LOADED_TABLES)],
    )
    constraints = [
        (table, name, f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        for table, name, definition, _kind in cursor.fetchall()
    ]
    cursor.execute(
        """
        SELECT tc.relname, ic.relname, pg_get_indexdef(i.indexrelid)
        FROM pg_index i
        JOIN pg_class ic ON ic.oid = i.indexrelid
        JOIN pg_class tc ON tc.oid = i.indrelid
        WHERE tc.relname = ANY(%s) AND tc.relnamespace = 'public'::regnamespace
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        ORDER BY tc.relname, ic.relname
        """,
        [list(_LOADED_TABLES)],
    )
    # Unique constraints (their indexes) first, then plain indexes, then foreign keys, which use them.
    unique = [item for item in constraints if "FOREIGN KEY" not in item[2]]
    foreign = [item for item in constraints if "FOREIGN KEY" in item[2]]
    return unique + list(cursor.fetchall()) + foreign


def seed(
    connection=None,
    *,
    tickets: int,
    random_seed: int = 1,
    agents: int = 40,
    defer_indexes: bool = False,
    log: Callable[[str], None] = lambda text: None,
) -> SeedStats:
    """Load `tickets` tickets (and about tickets/3 customers, 2.5 messages a ticket) in one transaction.

    `connection` is a Django connection (default: django.db.connection). With `defer_indexes`, the
    loaded tables' unique and foreign-key constraints and secondary indexes are dropped first and
    recreated from their own definitions after the load, in the same transaction: re-adding a
    constraint checks every row, so the data is held to the same rules as with them in place.
    """
    from django.db import connection as default_connection
    from django.db import transaction

    connection = connection or default_connection
    stats = SeedStats()
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        # Django's foreign keys are DEFERRABLE INITIALLY DEFERRED: checked at commit they would queue an
        # event per row (and forbid CREATE INDEX). Checked per statement they cost the same, in order.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        _Loader(connection, cursor, tickets=tickets, random_seed=random_seed, agents=agents, log=log).load(
            stats, defer_indexes=defer_indexes
        )
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    return stats


class _Loader:
    def __init__(self, connection, cursor, *, tickets: int, random_seed: int, agents: int, log) -> None:
        self.connection = connection
        self.cursor = cursor
        self.n_tickets = tickets
        self.n_customers = max(1, tickets // 3)
        self.n_agents = max(2, agents)
        self.rng = random.Random(random_seed)
        self.log = log
        # Wall-clock now, to the microsecond: the data spreads over the year before it.
        self.now = int((datetime.now(UTC) - _EPOCH).total_seconds() * _US)
        # Short tag that keeps channel ids unique when seeding into a database that already has data.
        self.tag = f"s{self.rng.getrandbits(32):08x}"

    def _step(self, stats: SeedStats, name: str, started: float) -> None:
        stats.seconds[name] = round(time.perf_counter() - started, 2)
        self.log(f"  {name:<22} {stats.seconds[name]:>7.1f} s")

    def load(self, stats: SeedStats, *, defer_indexes: bool) -> None:
        cursor = self.cursor
        started = time.perf_counter()
        self._people(stats)
        self._step(stats, "teams and agents", started)

        deferred: list[tuple[str, str, str]] = []
        if defer_indexes:
            deferred = _deferrable_structures(cursor)
            for table, name, definition in reversed(deferred):
                if definition.startswith("ALTER TABLE"):
                    cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
                else:
                    cursor.execute(f'DROP INDEX "{name}"')

        self.customer_base = _max_id(cursor, "tickets_customer")
        self.identity_base = _max_id(cursor, "tickets_identity")
        self.ticket_base = _max_id(cursor, "tickets_ticket")
        self.message_base = _max_id(cursor, "tickets_message")
        self.event_base = _max_id(cursor, "tickets_ticketevent")

        started = time.perf_counter()
        self._plan_customers()
        self._plan_tickets(stats)
        self._step(stats, "plan", started)

        started = time.perf_counter()
        stats.customers = self._copy_customers()
        stats.identities = self._copy_identities()
        self._step(stats, "customers, identities", started)
        started = time.perf_counter()
        stats.tickets = self._copy_tickets()
        self._step(stats, "tickets", started)
        started = time.perf_counter()
        stats.messages = self._copy_messages()
        self._step(stats, "messages", started)
        started = time.perf_counter()
        stats.events = self._copy_events()
        self._step(stats, "events", started)

        for table in _LOADED_TABLES:
            _sync_id_sequence(cursor, table)
        if deferred:
            started = time.perf_counter()
            for _table, _name, definition in deferred:
                cursor.execute(definition)
            self._step(stats, f"{len(deferred)} constraints, indexes", started)
        started = time.perf_counter()
        cursor.execute("ANALYZE " + ", ".join(_LOADED_TABLES + ("tickets_user", "tickets_team")))
        self._step(stats, "analyze", started)

    # People: a handful of rows, through the ORM.

    def _people(self, stats: SeedStats) -> None:
        from django.contrib.auth.hashers import make_password

        from tickets.models import Role, Team, User

        alias = self.connection.alias
        password = make_password("bench")
        self.teams: list[int] = []
        self.team_weights: list[float] = []
        self.team_tags: list[list[str]] = []
        self.team_subjects: list[list[str]] = []
        for name, (share, tags, subjects) in TEAMS.items():
            team, _ = Team.objects.using(alias).get_or_create(name=name)
            self.teams.append(team.pk)
            self.team_weights.append(share)
            self.team_tags.append(tags)
            self.team_subjects.append(subjects)

        def user(username: str, **fields) -> User:
            found = User.objects.using(alias).filter(username=username).first()
            if found is not None:
                return found
            return User.objects.using(alias).create(username=username, password=password, **fields)

        user(ADMIN_USERNAME, role=Role.ADMIN, is_staff=True, first_name="Bench", last_name="Admin")
        for number in range(1, 3):
            user(SUPERVISOR_USERNAME.format(number), role=Role.SUPERVISOR, first_name=f"Supervisor {number}")
        # Agents by team index; every agent is in one team, a quarter of them in a second one too.
        self.team_agents: list[list[int]] = [[] for _ in self.teams]
        memberships = Team.members.through
        rows = []
        for number in range(1, self.n_agents + 1):
            first = self.rng.choice(FIRST_NAMES_EN + FIRST_NAMES_RU)
            last = self.rng.choice(LAST_NAMES_EN + LAST_NAMES_RU)
            agent = user(AGENT_USERNAME.format(number), role=Role.AGENT, first_name=first, last_name=last)
            home = (number - 1) % len(self.teams)
            team_indexes = {home}
            if number % 4 == 0:
                team_indexes.add((home + 1) % len(self.teams))
            for index in sorted(team_indexes):
                self.team_agents[index].append(agent.pk)
                rows.append(memberships(team_id=self.teams[index], user_id=agent.pk))
        memberships.objects.using(alias).bulk_create(rows, ignore_conflicts=True)
        self.all_agents = sorted({pk for agents in self.team_agents for pk in agents})
        stats.teams = len(self.teams)
        stats.agents = len(self.all_agents)

    # Customers and their identities.

    def _plan_customers(self) -> None:
        rng = self.rng
        pick_channel = _weighted(rng, CHANNEL_WEIGHTS)
        others = list(CHANNEL_WEIGHTS)
        # Per customer: (channels in order of use, Russian-speaking?)
        self.customer_channels: list[tuple[str, ...]] = []
        self.customer_ru: list[bool] = []
        for _ in range(self.n_customers):
            first = pick_channel()
            channels = [first]
            extra = rng.random()
            if extra < 0.25:
                channels.append(rng.choice([c for c in others if c != first]))
                if extra < 0.05:
                    channels.append(rng.choice([c for c in others if c not in channels]))
            self.customer_channels.append(tuple(channels))
            self.customer_ru.append(rng.random() < 0.6)
        self.customer_first_contact = [0] * self.n_customers
        self.customer_last_contact = [0] * self.n_customers

    def _address(self, channel: str, customer_id: int, name: str) -> str:
        """A normalized address (what tickets.identities.normalize_address stores), unique per customer id."""
        if channel == "email":
            local = "".join(ch for ch in name.lower() if "a" <= ch <= "z") or "client"
            return f"{local}.{customer_id}@{EMAIL_DOMAINS[customer_id % len(EMAIL_DOMAINS)]}"
        if channel == "telegram":
            return str(100_000_000 + customer_id)
        if channel == "phone":
            # Russian mobile numbers in E.164; 37 is coprime with 10**9, so ids map to distinct numbers.
            return f"+79{(customer_id * 37) % 1_000_000_000:09d}"
        return f"visitor-{customer_id:010d}-{self.tag}"

    def _customer_name(self, index: int) -> str:
        rng = self.rng
        if self.customer_ru[index]:
            return f"{rng.choice(FIRST_NAMES_RU)} {rng.choice(LAST_NAMES_RU)}"
        return f"{rng.choice(FIRST_NAMES_EN)} {rng.choice(LAST_NAMES_EN)}"

    def _copy_customers(self) -> int:
        rng = self.rng
        self.customer_names: list[str] = []

        def lines() -> Iterator[str]:
            for index in range(self.n_customers):
                name = self._customer_name(index)
                self.customer_names.append(name)
                first_contact = self.customer_first_contact[index] or self.now
                created = first_contact - rng.randrange(1, 600) * _US
                last = self.customer_last_contact[index] or None
                locale = "ru" if self.customer_ru[index] else "en"
                timezone = "Europe/Moscow" if self.customer_ru[index] else ""
                yield (
                    f"{self.customer_base + index + 1}\t{name}\t{locale}\t{timezone}\t\t"
                    f"{_ts(created)}\t{_ts(last)}\n"
                )

        _copy(
            self.cursor,
            "tickets_customer",
            ["id", "name", "locale", "timezone", "notes", "created_at", "last_contact_at"],
            lines(),
        )
        return self.n_customers

    def _copy_identities(self) -> int:
        count = 0

        def lines() -> Iterator[str]:
            nonlocal count
            for index in range(self.n_customers):
                customer_id = self.customer_base + index + 1
                name = self.customer_names[index]
                created = _ts(self.customer_first_contact[index] or self.now)
                for channel in self.customer_channels[index]:
                    count += 1
                    address = self._address(channel, customer_id, name)
                    yield (
                        f"{self.identity_base + count}\t{customer_id}\t{channel}\t{address}\t{name}\t"
                        f"{created}\n"
                    )

        _copy(
            self.cursor,
            "tickets_identity",
            ["id", "customer_id", "channel", "address", "display_name", "created_at"],
            lines(),
        )
        return count

    # Tickets, planned in memory first (customers need their first and last contact times).

    def _plan_tickets(self, stats: SeedStats) -> None:
        rng = self.rng
        n = self.n_tickets
        year_ago = self.now - 365 * _DAY
        # Created times over the last year, a little denser recently (a growing business), in order, so
        # ids and numbers grow with time as they would in production.
        created = sorted(year_ago + int((365 * _DAY) * (rng.random() ** 0.85)) for _ in range(n))
        # Every customer has at least one ticket; some have many (a skewed, long-tailed pick).
        owners = list(range(self.n_customers)) + [
            int(self.n_customers * rng.random() ** 1.6) for _ in range(n - self.n_customers)
        ]
        rng.shuffle(owners)
        pick_team = _weighted(rng, dict(enumerate(self.team_weights)))
        pick_priority = _weighted(rng, PRIORITY_WEIGHTS)
        pick_count = _weighted(rng, MESSAGE_COUNT_WEIGHTS)
        used_updated: set[int] = set()
        last_ticket_of: dict[int, tuple[int, str, int]] = {}  # customer -> (ticket id, status, closed_at)
        statuses: dict[str, int] = {}
        self.plan: list[PlannedTicket] = []
        for index in range(n):
            ticket_id = self.ticket_base + index + 1
            created_at = created[index]
            owner = owners[index]
            channels = self.customer_channels[owner]
            channel = channels[0] if rng.random() < 0.8 else rng.choice(channels)
            team = pick_team()
            first_response = created_at + _lognormal_us(rng, 1.5, 1.2)
            solved = first_response + _lognormal_us(rng, 20, 1.3)
            closed = solved + 4 * _DAY  # solved tickets close automatically after four days
            roll = rng.random()
            if closed < self.now and roll > 0.015:
                status = "closed"
            elif solved < self.now and roll > 0.015:
                status, closed = "solved", None
            elif first_response > self.now:
                status, first_response, solved, closed = "new", None, None, None
            else:
                # Still in the works, or a stale backlog ticket nobody finished (1.5% of old ones).
                status = rng.choice(("open", "open", "open", "pending", "pending", "on_hold"))
                solved, closed = None, None
            count = pick_count()
            if status == "new":
                count = 1  # nobody answered yet
            # Message times: the first at creation, the rest spread until the last activity.
            last_activity = closed or solved or first_response or created_at
            if status in ("open", "pending", "on_hold"):
                last_activity = min(self.now - 1, max(last_activity, created_at + rng.randrange(_DAY)))
            times = [created_at]
            if count > 1:
                start = first_response or created_at + 1
                end = solved or last_activity
                step = max(1, (end - start) // (count - 1))
                times.extend(start + k * step + rng.randrange(step // 4 + 1) for k in range(count - 1))
            updated = max(last_activity, times[-1]) + rng.randrange(1000)
            while updated in used_updated:  # distinct, so cursor pagination never leans on ties
                updated += 1
            used_updated.add(updated)
            unrouted = rng.random() < (0.4 if status == "new" else 0.02)
            team_index = None if unrouted else team
            if status == "new":
                assignee = None
            elif rng.random() < 0.92:
                pool = self.team_agents[team_index] if team_index is not None else self.all_agents
                assignee = rng.choice(pool or self.all_agents)
            else:
                assignee = None
            follow_up_of = None
            previous = last_ticket_of.get(owner)
            if previous and previous[1] == "closed" and previous[2] < created_at and rng.random() < 0.3:
                follow_up_of = previous[0]
            last_ticket_of[owner] = (ticket_id, status, closed or 0)
            tags = []
            if team_index is not None and rng.random() < 0.7:
                tags = rng.sample(self.team_tags[team_index], k=rng.choice((1, 1, 2)))
            if rng.random() < 0.03:
                tags.append("angry")
            self.plan.append(
                PlannedTicket(
                    ticket_id,
                    owner,
                    channel,
                    status,
                    pick_priority(),
                    team_index,
                    assignee,
                    tags,
                    created_at,
                    updated,
                    first_response,
                    solved,
                    closed,
                    follow_up_of,
                    times,
                )
            )
            statuses[status] = statuses.get(status, 0) + 1
            inbound_times = times[::2]  # customer and agent take turns, the customer first
            if not self.customer_first_contact[owner] or created_at < self.customer_first_contact[owner]:
                self.customer_first_contact[owner] = created_at
            if inbound_times[-1] > self.customer_last_contact[owner]:
                self.customer_last_contact[owner] = inbound_times[-1]
        stats.statuses = statuses

    def _subject(self, team_index: int | None, channel: str, customer_id: int) -> str:
        rng = self.rng
        if channel == "phone":
            return f"Call from {self._address('phone', customer_id, '')}"
        if channel in ("telegram", "widget") and rng.random() < 0.5:
            return rng.choice(INBOUND_TEXTS).split("\n")[0][:80]
        subjects = self.team_subjects[team_index if team_index is not None else 1]
        return rng.choice(subjects).format(
            month=rng.choice(_MONTHS), order=f"A-{rng.randrange(10**6):06d}", seats=rng.randrange(5, 500)
        )

    def _thread_key(self, channel: str, ticket_id: int, customer_id: int) -> str:
        if channel == "widget":
            return f"conv-{self.tag}-{ticket_id}"
        if channel == "telegram":
            return str(100_000_000 + customer_id)  # a private chat's id is the user's id
        if channel == "phone":
            return f"call-{self.tag}-{ticket_id}"
        return ""  # email threads by Message-ID references

    def _copy_tickets(self) -> int:
        rng = self.rng

        def lines() -> Iterator[str]:
            for (
                ticket_id,
                owner,
                channel,
                status,
                priority,
                team_index,
                assignee,
                tags,
                created_at,
                updated,
                first_response,
                solved,
                closed,
                follow_up_of,
                _times,
            ) in self.plan:
                customer_id = self.customer_base + owner + 1
                custom_fields = "{}"
                if rng.random() < 0.1:
                    custom_fields = json.dumps({"order_id": f"A-{rng.randrange(10**6):06d}"})
                yield (
                    "\t".join(
                        (
                            str(ticket_id),
                            self._subject(team_index, channel, customer_id),
                            status,
                            priority,
                            channel,
                            str(customer_id),
                            str(assignee) if assignee else "\\N",
                            str(self.teams[team_index]) if team_index is not None else "\\N",
                            "{" + ",".join(tags) + "}",
                            custom_fields,
                            self._thread_key(channel, ticket_id, customer_id),
                            str(follow_up_of) if follow_up_of else "\\N",
                            _ts(created_at),
                            _ts(updated),
                            _ts(first_response),
                            _ts(solved),
                            _ts(closed),
                        )
                    )
                    + "\n"
                )

        # `number` is left out: its default, nextval('tickets_ticket_number_seq'), numbers them in order.
        _copy(
            self.cursor,
            "tickets_ticket",
            [
                "id",
                "subject",
                "status",
                "priority",
                "channel",
                "customer_id",
                "assignee_id",
                "team_id",
                "tags",
                "custom_fields",
                "thread_key",
                "follow_up_of_id",
                "created_at",
                "updated_at",
                "first_response_at",
                "solved_at",
                "closed_at",
            ],
            lines(),
        )
        return len(self.plan)

    def _external_id(self, channel: str, message_id: int, customer_id: int, inbound: bool) -> str:
        if channel == "email":
            host = EMAIL_DOMAINS[customer_id % len(EMAIL_DOMAINS)] if inbound else "support.helpdesk.test"
            return f"<{self.tag}.{message_id}@{host}>"
        if channel == "telegram":
            return f"{100_000_000 + customer_id}:{self.tag}{message_id}"
        if channel == "phone":
            return f"call-{self.tag}-{message_id}"
        return f"{self.tag}-{message_id:012x}"

    def _copy_messages(self) -> int:
        from bench.texts import MessageTexts  # run as a script, the repository joins sys.path in main()

        rng = self.rng
        texts = MessageTexts(rng)
        count = 0

        def lines() -> Iterator[str]:
            nonlocal count
            for ticket in self.plan:
                ticket_id, owner, channel, assignee, times = (
                    ticket.ticket_id,
                    ticket.owner,
                    ticket.channel,
                    ticket.assignee,
                    ticket.times,
                )
                customer_id = self.customer_base + owner + 1
                language = "ru" if self.customer_ru[owner] else "en"
                note_at = rng.randrange(len(times)) if rng.random() < 0.08 else -1
                for position, created_at in enumerate(times):
                    count += 1
                    message_id = self.message_base + count
                    inbound = position % 2 == 0
                    external_id = self._external_id(channel, message_id, customer_id, inbound)
                    if inbound:
                        kind = "call" if channel == "phone" and position == 0 else "message"
                        written = texts.customer(language)
                        text = _text(written)
                        # Texts hold no markup characters: each paragraph is a <p> as written.
                        html = "".join(f"<p>{part}</p>" for part in written.split("\n\n"))
                        html = _text(html) if channel == "email" else ""
                        channel_data = f'{{"duration": {rng.randrange(20, 900)}}}' if kind == "call" else "{}"
                        yield (
                            f"{message_id}\t{ticket_id}\tin\t{kind}\t{channel}\t\\N\t{customer_id}\t"
                            f"{text}\t{html}\t{external_id}\t{channel_data}\t\t\t"
                            f"{_ts(created_at)}\t{_ts(created_at - 2 * _US)}\n"
                        )
                    else:
                        author = assignee or rng.choice(self.all_agents)
                        text = _text(texts.agent(language))
                        yield (
                            f"{message_id}\t{ticket_id}\tout\tmessage\t{channel}\t{author}\t\\N\t"
                            f"{text}\t\t{external_id}\t{{}}\tsent\t\t"
                            f"{_ts(created_at)}\t{_ts(created_at + _US)}\n"
                        )
                    if position == note_at:
                        count += 1
                        author = assignee or rng.choice(self.all_agents)
                        note = _text(texts.note())
                        yield (
                            f"{self.message_base + count}\t{ticket_id}\tout\tinternal_note\t{channel}\t"
                            f"{author}\t\\N\t{note}\t\t\\N\t{{}}\t\t\t{_ts(created_at + 60 * _US)}\t\\N\n"
                        )

        _copy(
            self.cursor,
            "tickets_message",
            [
                "id",
                "ticket_id",
                "direction",
                "kind",
                "channel",
                "author_id",
                "customer_id",
                "body_text",
                "body_html",
                "external_id",
                "channel_data",
                "delivery_status",
                "delivery_error",
                "created_at",
                "sent_at",
            ],
            lines(),
        )
        return count

    def _copy_events(self) -> int:
        """One published ticket.created per ticket, as receive() and the outbox would have left it."""
        rng = self.rng

        def lines() -> Iterator[str]:
            for index, ticket in enumerate(self.plan, start=1):
                ticket_id, channel, created_at = ticket.ticket_id, ticket.channel, ticket.created_at
                changes = f'{{"status": [null, "new"], "channel": [null, "{channel}"]'
                if ticket.follow_up_of:
                    changes += f', "follow_up_of": [null, {ticket.follow_up_of}]'
                yield (
                    f"{self.event_base + index}\t{ticket_id}\tticket.created\t{changes}}}\t"
                    f"{_ts(created_at)}\t{_ts(created_at + rng.randrange(2000, 900_000))}\n"
                )

        _copy(
            self.cursor,
            "tickets_ticketevent",
            ["id", "ticket_id", "name", "changes", "created_at", "published_at"],
            lines(),
        )
        return len(self.plan)


# Command line: create/migrate the bench database, then seed it.


def _database_name(url: str) -> str:
    from urllib.parse import urlparse

    return urlparse(url).path.lstrip("/")


def _ensure_database(url: str, *, reset: bool) -> bool:
    """Create the database (drop it first with reset). Returns True when it was created."""
    import psycopg2
    from psycopg2 import sql

    name = _database_name(url)
    if not name or name in ("postgres", "template0", "template1"):
        raise SystemExit(f"refusing to seed the {name!r} database")
    maintenance = psycopg2.connect(url.rsplit("/", 1)[0] + "/postgres")
    maintenance.autocommit = True
    try:
        with maintenance.cursor() as cursor:
            if reset:
                cursor.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cursor.fetchone():
                return False
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    finally:
        maintenance.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--database-url", help=f"the database to seed (default: {DEFAULT_DATABASE_URL})")
    parser.add_argument("--reset", action="store_true", help="drop and recreate the database first")
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    parser.add_argument("--agents", type=int, default=40)
    parser.add_argument("--keep-indexes", action="store_true", help="load with every index in place")
    args = parser.parse_args(argv)
    if args.database_url is None:
        # DATABASE_URL is each engineer's own database; seeding (with --reset: dropping) the shared default
        # instead of it would be a surprise, so say which one.
        if os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL) != DEFAULT_DATABASE_URL:
            parser.error(f"DATABASE_URL is set: pass --database-url (it would seed {DEFAULT_DATABASE_URL})")
        args.database_url = DEFAULT_DATABASE_URL

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")
    os.environ.setdefault("DEBUG", "true")

    started = time.perf_counter()
    created = _ensure_database(args.database_url, reset=args.reset)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", interactive=False, verbosity=0)
    print(f"database {_database_name(args.database_url)}: {'created and ' if created else ''}migrated")
    print(f"seeding {args.tickets:,} tickets")
    load_started = time.perf_counter()
    stats = seed(
        connection,
        tickets=args.tickets,
        random_seed=args.seed,
        agents=args.agents,
        defer_indexes=not args.keep_indexes,
        log=lambda text: print(text, flush=True),
    )
    loaded = time.perf_counter() - load_started
    # Outside the load's transaction: VACUUM sets hint bits and the visibility map, as autovacuum would
    # have on a live database, so the first benchmark queries do not pay for the bulk load.
    vacuum_started = time.perf_counter()
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) " + ", ".join(_LOADED_TABLES))
    vacuumed = time.perf_counter() - vacuum_started
    total = time.perf_counter() - started
    print(
        f"loaded {stats.tickets:,} tickets, {stats.messages:,} messages, {stats.events:,} events, "
        f"{stats.customers:,} customers, {stats.identities:,} identities, {stats.teams} teams, "
        f"{stats.agents} agents"
    )
    print("statuses: " + ", ".join(f"{name} {count:,}" for name, count in sorted(stats.statuses.items())))
    print(f"load (one transaction) {loaded:.1f} s, vacuum {vacuumed:.1f} s, total with migrate {total:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
