"""The web tier as production runs it: gunicorn with threaded workers (helpdesk/gunicorn.conf.py).

Each test starts the real server against this run's test database and talks HTTP to it.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg2
import pytest
from django.db import connection
from rest_framework.authtoken.models import Token

from conftest import (
    database_url_for_tests,
    free_port,
    gunicorn_command,
    inbound_message,
    running_server,
    server_environment,
)
from helpdesk.health import CHECKS
from tickets import inbound
from tickets.models import Priority, Ticket

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class WebServer:
    def __init__(self, port: int, application_name: str) -> None:
        self.port = port
        self.application_name = application_name

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str = "",
        body: dict | None = None,
        headers: dict | None = None,
    ) -> tuple[int, dict | str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        sent_headers = {"Host": "localhost", "Accept": "application/json", **(headers or {})}
        if token:
            sent_headers["Authorization"] = f"Token {token}"
        payload = None
        if body is not None:
            payload = json.dumps(body)
            sent_headers["Content-Type"] = "application/json"
        conn.request(method, path, body=payload, headers=sent_headers)
        response = conn.getresponse()
        raw = response.read().decode()
        conn.close()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw


@pytest.fixture
def web_server() -> Callable[..., WebServer]:
    """Starts gunicorn (one process, four threads) with extra environment; stopped after the test."""
    servers: list = []

    def start(**env: str) -> WebServer:
        port = free_port()
        # A name of its own in pg_stat_activity, so this server's connections can be told apart.
        name = f"helpdesk-web-test-{uuid.uuid4().hex[:8]}"
        context = running_server(
            gunicorn_command(port), port=port, env=server_environment(DATABASE_APPLICATION_NAME=name, **env)
        )
        context.__enter__()
        servers.append(context)
        return WebServer(port, name)

    yield start
    for context in servers:
        context.__exit__(None, None, None)


@pytest.fixture
def agent_token(alice) -> str:
    return Token.objects.create(user=alice).key


@pytest.fixture
def billing_ticket(billing) -> Ticket:
    ticket = inbound.receive(inbound_message()).ticket
    Ticket.objects.filter(pk=ticket.pk).update(team=billing)
    return ticket


@contextmanager
def row_locked(ticket: Ticket) -> Iterator[None]:
    """Hold the ticket's row lock from a connection of the test's own until the block ends."""
    holder = psycopg2.connect(database_url_for_tests())
    try:
        with holder.cursor() as cursor:
            cursor.execute("SELECT 1 FROM tickets_ticket WHERE id = %s FOR UPDATE", [ticket.pk])
            yield
    finally:
        holder.rollback()
        holder.close()


def backends_waiting_on_a_lock(application_name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'",
            [application_name],
        )
        return cursor.fetchone()[0]


def backend_pids(application_name: str) -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [application_name])
        return {row[0] for row in cursor.fetchall()}


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def in_background(call: Callable[[], tuple[int, dict | str]]) -> tuple[threading.Thread, list]:
    result: list = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    return thread, result


def test_a_request_waiting_on_a_lock_does_not_hold_up_the_next_one(web_server, agent_token, billing_ticket):
    server = web_server()
    with row_locked(billing_ticket):
        first, first_result = in_background(
            lambda: server.request(
                "PATCH",
                f"/api/v1/tickets/{billing_ticket.pk}/",
                token=agent_token,
                body={"priority": "urgent"},
            )
        )
        wait_until(lambda: backends_waiting_on_a_lock(server.application_name) == 1, "the PATCH waits")

        status, page = server.request("GET", "/api/v1/tickets/", token=agent_token)

        assert status == 200
        assert [row["id"] for row in page["results"]] == [billing_ticket.pk]
        assert first.is_alive() and first_result == [], "the first request is still waiting on the lock"
    first.join(timeout=30)
    assert first_result[0][0] == 200
    assert Ticket.objects.get(pk=billing_ticket.pk).priority == Priority.URGENT


def test_a_statement_past_the_time_limit_answers_503_and_frees_the_thread(
    web_server, agent_token, billing_ticket
):
    server = web_server(DATABASE_STATEMENT_TIMEOUT="500ms")
    with row_locked(billing_ticket):
        status, body = server.request(
            "PATCH", f"/api/v1/tickets/{billing_ticket.pk}/", token=agent_token, body={"priority": "urgent"}
        )

    assert status == 503
    assert body["code"] == "timeout"
    assert Ticket.objects.get(pk=billing_ticket.pk).priority == Priority.NORMAL
    # The same threads serve again, on their same connections.
    status, _ = server.request(
        "PATCH", f"/api/v1/tickets/{billing_ticket.pk}/", token=agent_token, body={"priority": "urgent"}
    )
    assert status == 200


def test_requests_reuse_each_threads_database_connection(web_server, agent_token, billing_ticket):
    server = web_server()
    for _ in range(8):
        assert server.request("GET", "/api/v1/tickets/", token=agent_token)[0] == 200
    connections_before = backend_pids(server.application_name)

    callers = [
        in_background(lambda: server.request("GET", "/api/v1/tickets/", token=agent_token)) for _ in range(40)
    ]
    for thread, _ in callers:
        thread.join(timeout=60)

    assert all(result[0][0] == 200 for _, result in callers)
    connections_after = backend_pids(server.application_name)
    assert 1 <= len(connections_after) <= 4, "one connection per thread at most"
    assert connections_before <= connections_after, "no connection was closed and reopened"


def test_healthz_answers_over_plain_http_with_any_host(web_server):
    # Production settings: HTTPS redirect on, and the health check's Host is not an allowed one.
    server = web_server(SECURE_SSL_REDIRECT="true")

    status, body = server.request("GET", "/healthz", headers={"Host": "10.0.0.7:8000"})
    assert status == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == set(CHECKS)

    # Everything else still redirects to HTTPS, and the health check is not served through the proxy.
    assert server.request("GET", "/api/v1/tickets/")[0] == 301
    proxied = {"Host": "localhost", "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    assert server.request("GET", "/healthz", headers=proxied)[0] == 404
