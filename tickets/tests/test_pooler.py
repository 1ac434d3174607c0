"""Safe behind a connection pooler: prepared statements out of step, lost connections, PgBouncer itself.

The PgBouncer tests run Debian's `pgbouncer` (`make test` installs it) on a loopback port of their own,
in transaction mode with a pool of 4 server connections, in front of the test database's server.
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from django.db import DatabaseError, close_old_connections, connection, connections
from django.test.utils import CaptureQueriesContext

from conftest import database_url_for_tests, free_port, inbound_message
from helpdesk import events
from helpdesk.sqlstate import sqlstate
from tickets import inbound
from tickets.models import Channel, EnvelopeStatus, InboundEnvelope, Message, Team, Ticket, TicketEvent
from tickets.rows import Prepared

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


class PgBouncer:
    """One pgbouncer process: transaction pooling, 4 server connections per database and user."""

    def __init__(self, directory: Path, *, host: str, port: str, user: str) -> None:
        self.port = free_port()
        self.log = directory / "pgbouncer.log"
        self.process: subprocess.Popen | None = None
        (directory / "users.txt").write_text(f'"{user}" ""\n')
        settings: dict[str, Any] = {
            "listen_addr": "127.0.0.1",
            "listen_port": self.port,
            "unix_socket_dir": "",
            "auth_type": "trust",
            "auth_file": directory / "users.txt",
            "pool_mode": "transaction",
            "default_pool_size": 4,
            "max_client_conn": 100,
        }
        if os.geteuid() == 0:
            settings["user"] = "postgres"  # pgbouncer will not run as root
            shutil.chown(directory, "postgres")
        self.ini = directory / "pgbouncer.ini"
        self.ini.write_text(
            f"[databases]\n* = host={host or '127.0.0.1'} port={port or 5432}\n[pgbouncer]\n"
            + "".join(f"{name} = {value}\n" for name, value in settings.items())
        )

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([PGBOUNCER, str(self.ini)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            assert self.process.poll() is None, f"pgbouncer exited:\n{self.log.read_text()}"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert time.monotonic() < deadline, f"pgbouncer is not listening:\n{self.log.read_text()}"
                time.sleep(0.01)

    def stop(self) -> None:
        if self.process is None:
            return
        # SIGINT is the safe shutdown systemd's restart sends: transactions in flight finish, then every
        # client connection is closed.
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def pgbouncer(tmp_path) -> Iterator[PgBouncer]:
    # Loud, never a skip: a machine without pgbouncer must not pass this file by leaving it out.
    assert Path(PGBOUNCER).exists(), "pgbouncer is not installed: `make test` installs it (apt-get)"
    tmp_path.chmod(0o755)
    upstream = connection.settings_dict
    pooler = PgBouncer(tmp_path, host=upstream["HOST"], port=upstream["PORT"], user=upstream["USER"])
    pooler.start()
    try:
        yield pooler
    finally:
        pooler.stop()
        print(pooler.log.read_text()[-3000:])


def _through_pooler(pooler: PgBouncer) -> dict[str, Any]:
    """The test database's settings as settings.py makes them for DATABASE_POOL_MODE=transaction."""
    return {
        **connection.settings_dict,
        "HOST": "127.0.0.1",
        "PORT": str(pooler.port),
        "POOL_MODE": "transaction",
        "DISABLE_SERVER_SIDE_CURSORS": True,
    }


MESSAGES = 400
SENDERS = 40
THREADS = 8


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_messages_through_a_restarting_transaction_pooler_are_stored_exactly_once(
    pgbouncer, api_client, dave, captured_events
):
    # The integration's view of it: 8 threads post 400 messages of 40 customers to the inbound API (the
    # envelope, then receive()) through the pooler, which restarts a quarter of the way in. An answer
    # that is not a 202 is sent again, as integrations do; a stored envelope must never end failed.
    settings_dict = _through_pooler(pgbouncer)
    pending = collections.deque(range(MESSAGES))
    answered: list[int] = []
    resends: list[str] = []

    def post(number: int) -> None:
        sender = number % SENDERS
        message = {
            "id": f"crm-{number}",
            "customer": {"id": f"crm-customer-{sender}", "name": f"Customer {sender}"},
            "text": f"message {number}",
            "thread_key": f"order-{sender}" if sender % 2 else "",
        }
        client = api_client(dave)
        client.raise_request_exception = False  # a 500, as a real server answers
        for _ in range(10):
            # What a server does at each request's start; Django's test client leaves it out.
            close_old_connections()
            response = client.post("/api/v1/inbound/messages/", message, format="json")
            if response.status_code == 202:
                assert response.json()["status"] == EnvelopeStatus.PROCESSED, response.json()
                return
            resends.append(f"{response.status_code} for {message['id']}")
            time.sleep(0.1)
        raise AssertionError(f"{message['id']} was never accepted: {resends[-3:]}")

    def integration() -> None:
        # Each thread's own connection goes through the pooler; Django checks it at each request.
        connections["default"] = connections["default"].__class__(settings_dict, "default")
        try:
            while pending:
                try:
                    number = pending.popleft()
                except IndexError:
                    return
                post(number)
                answered.append(number)
        finally:
            connection.close()

    threads = [threading.Thread(target=integration) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    while len(answered) < MESSAGES // 4 and any(thread.is_alive() for thread in threads):
        time.sleep(0.005)
    pgbouncer.restart()
    answered_before_restart = len(answered)
    for thread in threads:
        thread.join(timeout=120)

    assert answered_before_restart < MESSAGES, "the pooler restarted after the run, not during it"
    assert sorted(answered) == list(range(MESSAGES))
    envelopes = collections.Counter(InboundEnvelope.objects.values_list("status", flat=True))
    assert envelopes == {EnvelopeStatus.PROCESSED: MESSAGES}
    stored = collections.Counter(Message.objects.filter(direction="in").values_list("external_id", flat=True))
    assert stored == {f"crm-{number}": 1 for number in range(MESSAGES)}
    assert TicketEvent.objects.filter(name=events.MESSAGE_RECEIVED).count() == MESSAGES
    assert Ticket.objects.count() == SENDERS  # each customer's messages threaded into one ticket
    published = collections.Counter(
        event["message_id"] for event in captured_events.published if event["name"] == events.MESSAGE_RECEIVED
    )
    assert set(published.values()) == {1}  # a rerun publishes only what its own commit wrote
    print(f"{len(resends)} answers were not 202 and were sent again: {resends[:5]}")


@pytest.mark.django_db(transaction=True)
def test_nothing_is_prepared_behind_a_transaction_pooler(pgbouncer, ivan):
    connections["default"] = connections["default"].__class__(_through_pooler(pgbouncer), "default")
    try:
        with CaptureQueriesContext(connection) as queries:
            first = inbound.receive(inbound_message())
            reply = inbound.receive(inbound_message(in_reply_to=(first.message.external_id,)))
            again = inbound.receive(inbound_message(external_id=reply.message.external_id))
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_prepared_statements")
            (held,) = cursor.fetchone()
    finally:
        connection.close()
        del connections["default"]

    assert reply.ticket.pk == first.ticket.pk and again.duplicate
    assert not [q["sql"] for q in queries.captured_queries if q["sql"].startswith(("PREPARE", "EXECUTE"))]
    assert held == 0
    assert Message.objects.filter(ticket=first.ticket).count() == 2


@pytest.mark.django_db(transaction=True)
def test_receive_runs_again_when_the_session_already_holds_a_statement_it_meant_to_prepare(ivan):
    inbound.store_envelope(Channel.API, "crm-1", b"{}")  # this connection has read what its session holds
    with connection.cursor() as cursor:
        # Then another client of a pooler prepares the lookup on the same server connection.
        cursor.execute(inbound._LOOK_UP._prepare)

    received = inbound.receive(inbound_message())

    assert Message.objects.get(external_id=received.message.external_id).ticket == received.ticket


@pytest.mark.django_db(transaction=True)
def test_receive_runs_again_when_the_session_lost_the_statements_it_had_prepared(ivan):
    first = inbound.receive(inbound_message())
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # what a pooler's reset (DISCARD ALL) does to a session

    reply = inbound.receive(inbound_message(in_reply_to=(first.message.external_id,)))

    assert reply.ticket.pk == first.ticket.pk
    assert Message.objects.filter(ticket=first.ticket).count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_statement_outside_a_transaction_is_prepared_again_when_the_session_lost_it():
    team = Team.objects.create(name="Billing")
    by_id = Prepared("SELECT name FROM tickets_team WHERE id = %s")
    with connection.cursor() as cursor:
        by_id.execute(cursor, [team.pk])
        cursor.execute("DEALLOCATE ALL")

        by_id.execute(cursor, [team.pk])  # autocommit: nothing to roll back, so it goes again at once
        assert cursor.fetchone() == ("Billing",)


@pytest.mark.django_db(transaction=True)
def test_receive_runs_again_on_a_new_connection_when_its_own_was_lost(ivan):
    first = inbound.receive(inbound_message())
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (lost_pid,) = cursor.fetchone()
    # The server (or a pooler) ends our idle connection, as a restart does.
    with psycopg2.connect(database_url_for_tests()) as other, other.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [lost_pid])

    reply = inbound.receive(inbound_message(in_reply_to=(first.message.external_id,)))

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != lost_pid
    assert reply.ticket.pk == first.ticket.pk
    assert Message.objects.filter(ticket=first.ticket).count() == 2


@pytest.mark.django_db
def test_sqlstate_is_read_from_the_driver_error_django_wraps():
    with pytest.raises(DatabaseError) as raised, connection.cursor() as cursor:
        cursor.execute("EXECUTE helpdesk_no_such_statement")

    assert sqlstate(raised.value) == "26000"
    assert sqlstate(raised.value.__cause__) == "26000"

    class Psycopg3Error(Exception):
        sqlstate = "42P05"

    wrapped = DatabaseError("wrapped")
    wrapped.__cause__ = Psycopg3Error()
    assert sqlstate(wrapped) == "42P05"
    assert sqlstate(DatabaseError("a connection that broke")) is None
