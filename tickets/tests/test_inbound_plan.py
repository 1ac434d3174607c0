"""The inbound lookup's plan: each threading step starts from its own index, whatever the customer's size.

A prepared statement runs a generic plan (receive() forces it), which cannot see who the sender is; a plan
that walks the customer's tickets costs nothing for an ordinary customer and hundreds of milliseconds for
one with 300,000 (bench/big_customer.py measures it). This asserts the plan's shape, not its timing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection

from tickets import inbound

pytestmark = pytest.mark.django_db

ORDINARY_CUSTOMERS = 2_000
BIG_CUSTOMER_TICKETS = 10_000

# A database shaped like production's: many customers with a ticket or two, then one (a monitoring
# system mailing alerts) with thousands on email and Telegram, each with its message.
_CUSTOMERS_SQL = f"""
INSERT INTO tickets_customer (name, locale, timezone, notes, created_at)
SELECT 'customer ' || n, '', '', '', now() FROM generate_series(1, {ORDINARY_CUSTOMERS}) n;
INSERT INTO tickets_customer (name, locale, timezone, notes, created_at) VALUES ('Alerts', '', '', '', now());
INSERT INTO tickets_identity (customer_id, channel, address, display_name, created_at)
SELECT id, 'email', 'customer' || id || '@example.test', '', now()
FROM tickets_customer WHERE name <> 'Alerts';
INSERT INTO tickets_identity (customer_id, channel, address, display_name, created_at)
SELECT id, channel, address, '', now() FROM tickets_customer,
       (VALUES ('email', 'alerts@big.test'), ('telegram', '999000999')) AS identity (channel, address)
WHERE name = 'Alerts';
INSERT INTO tickets_ticket (subject, status, priority, channel, customer_id, tags, custom_fields,
                            thread_key, created_at, updated_at)
SELECT 'question', 'open', 'normal', 'email', id, '{{}}', '{{}}', '', now(), now()
FROM tickets_customer, generate_series(1, 2) WHERE name <> 'Alerts';
INSERT INTO tickets_ticket (subject, status, priority, channel, customer_id, tags, custom_fields,
                            thread_key, created_at, updated_at)
SELECT 'alert ' || n, CASE WHEN n % 10 = 0 THEN 'open' ELSE 'closed' END, 'normal',
       CASE WHEN n % 2 = 0 THEN 'email' ELSE 'telegram' END,
       (SELECT id FROM tickets_customer WHERE name = 'Alerts'), '{{}}', '{{}}',
       CASE WHEN n % 2 = 0 THEN '' ELSE 'tg-' || n END,
       now() - n * interval '1 minute', now() - n * interval '1 minute'
FROM generate_series(1, {BIG_CUSTOMER_TICKETS}) n;
INSERT INTO tickets_message (ticket_id, direction, kind, channel, customer_id, body_text, body_html,
                             external_id, channel_data, delivery_status, delivery_error, created_at)
SELECT id, 'in', 'message', channel, customer_id, subject, '', '<' || id || '@example.test>', '{{}}', '', '',
       created_at
FROM tickets_ticket;
ANALYZE tickets_customer, tickets_identity, tickets_ticket, tickets_message;
"""  # noqa: S608 (the values in it are the constants above)


# Where each threading step may start: the duplicate and In-Reply-To steps from the message's channel id,
# the sender from its address, the conversation key from the key, a ticket by its id.
STEP_INDEXES = {"message_unique_external_id", "identity_unique_address", "ticket_thread_key"}
BY_ID = {"tickets_ticket_pkey"}


@pytest.fixture
def big_customer(db) -> dict[str, str]:
    """Two thousand ordinary customers, then one with 10,000 tickets; references to its messages."""
    with connection.cursor() as cursor:
        cursor.execute(_CUSTOMERS_SQL)
        cursor.execute(
            "SELECT max(m.external_id) FROM tickets_message m JOIN tickets_identity i"
            " ON i.customer_id = m.customer_id AND i.address = 'alerts@big.test' WHERE m.channel = 'email'"
        )
        (alert,) = cursor.fetchone()
        cursor.execute("SELECT max(thread_key) FROM tickets_ticket WHERE thread_key LIKE 'tg-%%'")
        (chat,) = cursor.fetchone()
    return {"alert": alert, "chat": chat}


def _lookup(channel: str, address: str, **fields: Any) -> dict[str, Any]:
    params = {"external_id": "<new@big.test>", "in_reply_to": [], "thread_key": "", "join_latest": False}
    return {"channel": channel, "address": address, **params, **fields}


def _scans_of_tickets(plan: dict[str, Any], *, unless: str) -> list[dict[str, Any]]:
    """Every node reading tickets or messages, except those under a One-Time Filter on `unless`."""
    if plan.get("One-Time Filter") == unless:
        return []
    found = [plan] if plan.get("Relation Name") in ("tickets_ticket", "tickets_message") else []
    for child in plan.get("Plans", ()):
        found += _scans_of_tickets(child, unless=unless)
    return found


def _starts_from_its_own_index(scan: dict[str, Any]) -> bool:
    return (
        scan["Node Type"] in ("Index Scan", "Index Only Scan")
        and scan["Index Name"] in STEP_INDEXES | BY_ID
        and "customer_id" not in scan.get("Index Cond", "")
    )


def test_the_generic_lookup_plan_starts_each_threading_step_from_its_own_index(big_customer, monkeypatch):
    # A generic plan is one plan for every message: the customer's latest ticket (the one step that reads
    # the customer's tickets, by design) sits under a One-Time Filter on join_latest, which is false for
    # a message with a reference, a key or the new flag. Everything else starts from a step's index.
    monkeypatch.setitem(connection.settings_dict, "POOL_MODE", "session")  # prepared, as without a pooler
    join_latest = f"${inbound._LOOK_UP.names.index('join_latest') + 1}"
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        plan = inbound._LOOK_UP.explain(
            cursor, _lookup("email", "alerts@big.test", in_reply_to=[big_customer["alert"]])
        )

    scans = _scans_of_tickets(plan, unless=join_latest)
    assert [scan for scan in scans if not _starts_from_its_own_index(scan)] == [], json.dumps(plan, indent=1)
    assert {"message_unique_external_id", "ticket_thread_key"} <= {scan.get("Index Name") for scan in scans}


@pytest.mark.parametrize(
    "message",
    [
        pytest.param({"channel": "email", "address": "alerts@big.test", "in_reply_to": "alert"}, id="reply"),
        pytest.param({"channel": "telegram", "address": "999000999", "thread_key": "chat"}, id="chat"),
        pytest.param({"channel": "email", "address": "alerts@big.test"}, id="new conversation"),
    ],
)
def test_unprepared_lookups_behind_a_transaction_pooler_do_not_scan_the_customers_tickets(
    big_customer, monkeypatch, message
):
    # Behind a transaction pooler the lookup goes unprepared: each message gets a custom plan.
    monkeypatch.setitem(connection.settings_dict, "POOL_MODE", "transaction")
    fields = {}
    if "in_reply_to" in message:
        fields["in_reply_to"] = [big_customer[message["in_reply_to"]]]
    if "thread_key" in message:
        fields["thread_key"] = big_customer[message["thread_key"]]
    with connection.cursor() as cursor:
        plan = inbound._LOOK_UP.explain(cursor, _lookup(message["channel"], message["address"], **fields))

    scans = _scans_of_tickets(plan, unless="")
    assert [scan for scan in scans if not _starts_from_its_own_index(scan)] == [], json.dumps(plan, indent=1)
