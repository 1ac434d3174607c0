"""Does receive()'s lookup stay fast for a customer with 300,000 tickets, whatever plan PostgreSQL picks?

A prepared statement switches to a generic plan after five runs; a plan that walks the customer's
tickets would cost milliseconds per message for ordinary customers and hundreds for big ones (a
monitoring system mailing alerts). This copies the seeded database (bench/seed.py), adds one such
customer on email and Telegram, times the lookup under each plan mode and drops the copy again.

    .venv/bin/python -m bench.big_customer
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from bench.measure import ROOT, configure_environment

SOURCE = "helpdesk_bench"
COPY = "helpdesk_bench_big_customer"
TICKETS = 300_000

_BIG_CUSTOMER_SQL = f"""
INSERT INTO tickets_customer (name, locale, timezone, notes, created_at) VALUES ('Alerts', '', '', '', now());
INSERT INTO tickets_identity (customer_id, channel, address, display_name, created_at)
SELECT max(id), channel, address, '', now() FROM tickets_customer,
       (VALUES ('email', 'alerts@big.test'), ('telegram', '999000999')) AS identity (channel, address)
GROUP BY channel, address;
INSERT INTO tickets_ticket (subject, status, priority, channel, customer_id, tags, custom_fields,
                            thread_key, created_at, updated_at)
SELECT 'alert ' || n, CASE WHEN n % 10 = 0 THEN 'open' ELSE 'closed' END, 'normal',
       CASE WHEN n % 2 = 0 THEN 'email' ELSE 'telegram' END, (SELECT max(id) FROM tickets_customer), '{{}}',
       '{{}}', CASE WHEN n % 2 = 0 THEN '' ELSE 'tg-' || n END,
       now() - n * interval '1 minute', now() - n * interval '1 minute'
FROM generate_series(1, {TICKETS}) n;
INSERT INTO tickets_message (ticket_id, direction, kind, channel, customer_id, body_text, body_html,
                             external_id, channel_data, delivery_status, delivery_error, created_at)
SELECT id, 'in', 'message', channel, customer_id, 'disk full', '', '<alert-' || id || '@big.test>', '{{}}',
       '', '', created_at
FROM tickets_ticket WHERE customer_id = (SELECT max(id) FROM tickets_customer);
ANALYZE;
"""  # noqa: S608 (the one value in it is the constant above)


def psql(*args: str, database: str = "postgres") -> str:
    command = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-qAt", database, *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def main() -> int:
    psql("-c", f"DROP DATABASE IF EXISTS {COPY}")
    psql("-c", f"CREATE DATABASE {COPY} TEMPLATE {SOURCE}")
    try:
        psql("-c", _BIG_CUSTOMER_SQL, database=COPY)
        configure_environment(f"postgres://postgres@127.0.0.1:5432/{COPY}", "bench")
        import django

        django.setup()
        report()
    finally:
        from django.db import connections

        connections.close_all()
        psql("-c", f"DROP DATABASE IF EXISTS {COPY}")
    return 0


def report() -> None:
    from django.db import connection, transaction

    from tickets import inbound

    def lookup(channel: str, address: str, **fields) -> dict:
        params = {"external_id": "<new@big.test>", "in_reply_to": [], "thread_key": "", "join_latest": False}
        return {"channel": channel, "address": address, **params, **fields}

    with connection.cursor() as cursor:
        cursor.execute("SELECT max(external_id) FROM tickets_message WHERE external_id LIKE '<alert-%%'")
        alert = cursor.fetchone()[0]
        cursor.execute("SELECT max(thread_key) FROM tickets_ticket WHERE thread_key LIKE 'tg-%%'")
        chat = cursor.fetchone()[0]
        cursor.execute(
            """SELECT i.address, m.external_id FROM tickets_message m
               JOIN tickets_identity i ON i.customer_id = m.customer_id AND i.channel = 'email'
               WHERE m.channel = 'email' AND m.direction = 'in' AND m.id % 997 = 0 LIMIT 40"""
        )
        ordinary = [
            lookup("email", address, in_reply_to=[reference]) for address, reference in cursor.fetchall()
        ]
    big = {
        "reply (In-Reply-To)": lookup("email", "alerts@big.test", in_reply_to=[alert]),
        "chat (thread key)": lookup("telegram", "999000999", thread_key=chat),
        "new conversation": lookup("email", "alerts@big.test"),
        "no key: latest ticket": lookup("email", "alerts@big.test", join_latest=True),
    }

    def timed(params: dict) -> float:
        with transaction.atomic(), connection.cursor() as cursor:
            started = time.perf_counter()
            # The lock as receive() takes it, without its plan mode: that is what is varied here.
            inbound._LOOK_UP.execute(
                cursor, params, before=inbound.SENDER_LOCK_SQL, before_params=("bench-lock",)
            )
            cursor.fetchone()
            return (time.perf_counter() - started) * 1000

    print(f"lookup times in ms, one customer with {TICKETS:,} tickets added to {SOURCE} (min of 5)")
    print("| plan mode | ordinary customers, median | " + " | ".join(big) + " |")
    print("|---" * (len(big) + 2) + "|")
    for mode in ("auto", "force_custom_plan", "force_generic_plan"):
        with connection.cursor() as cursor:
            cursor.execute(f"SET plan_cache_mode = {mode}")
        for params in ordinary[:8]:  # past the five custom plans PostgreSQL tries first
            timed(params)
        usual = statistics.median(timed(params) for params in ordinary)
        figures = [min(timed(params) for _ in range(5)) for params in big.values()]
        print(f"| {mode} | {usual:.2f} | " + " | ".join(f"{figure:.1f}" for figure in figures) + " |")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
