"""The realtime service as production runs it: uvicorn serving helpdesk/asgi.py, real sockets over TCP."""

from __future__ import annotations

import asyncio
import http.client
import json
import uuid
from collections.abc import Iterator

import pytest
from django.db import connection
from websockets.asyncio.client import connect
from websockets.sync.client import connect as connect_sync

from conftest import free_port, inbound_message, realtime_command, running_server, server_environment
from helpdesk.events import as_payload
from realtime import fanout, tokens
from tickets import inbound
from tickets.models import Channel, TicketEvent

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

IDLE_SOCKETS = 500


class RealtimeServer:
    def __init__(self, port: int, application_name: str) -> None:
        self.port = port
        self.application_name = application_name

    def stream_url(self, token: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/events/?token={token}"

    def get(self, path: str, headers: dict[str, str] | None = None) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("GET", path, headers=headers or {})
        status = conn.getresponse().status
        conn.close()
        return status


@pytest.fixture
def realtime_server() -> Iterator[RealtimeServer]:
    port = free_port()
    name = f"helpdesk-realtime-test-{uuid.uuid4().hex[:8]}"
    # No CONN_MAX_AGE here: the entry point itself must keep idle sockets off the database.
    env = server_environment(DATABASE_APPLICATION_NAME=name)
    env.pop("CONN_MAX_AGE", None)
    with running_server(realtime_command(port), port=port, env=env):
        yield RealtimeServer(port, name)


def database_connections(application_name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [application_name]
        )
        return cursor.fetchone()[0]


async def open_idle_sockets(url: str, count: int, event_ids: list[int]) -> list[dict]:
    """Open `count` sockets, read their hello, let them idle; then return what each hears next."""
    sockets = []
    for start in range(0, count, 50):
        batch = await asyncio.gather(
            *(connect(url, open_timeout=60) for _ in range(start, min(start + 50, count)))
        )
        sockets.extend(batch)
    hellos = [json.loads(await ws.recv()) for ws in sockets]
    assert {hello["type"] for hello in hellos} == {"hello"}
    event_ids.append(len(sockets))  # tells the caller every socket is open and idle
    while len(event_ids) == 1:
        await asyncio.sleep(0.05)
    heard = [json.loads(await asyncio.wait_for(ws.recv(), 30)) for ws in sockets]
    await asyncio.gather(*(ws.close() for ws in sockets))
    return heard


def test_idle_sockets_hold_no_database_connection_and_still_hear_events(realtime_server, alice, billing):
    ticket = inbound.receive(inbound_message(channel=Channel.TELEGRAM, sender_address="5005")).ticket
    url = realtime_server.stream_url(tokens.issue(alice))
    signals: list[int] = []

    async def scenario() -> list[dict]:
        sockets = asyncio.ensure_future(open_idle_sockets(url, IDLE_SOCKETS, signals))
        while not signals and not sockets.done():
            await asyncio.sleep(0.05)
        assert signals == [IDLE_SOCKETS], "every socket opened"
        # All sockets open and idle: the realtime process holds no PostgreSQL connection.
        assert await asyncio.to_thread(counted_in_thread, realtime_server.application_name) == 0
        pushed = await asyncio.to_thread(push_latest_event)
        signals.append(pushed)
        return await sockets

    def counted_in_thread(application_name: str) -> int:
        try:
            return database_connections(application_name)
        finally:
            connection.close()  # this helper thread's own connection

    def push_latest_event() -> int:
        latest = TicketEvent.objects.filter(ticket=ticket).order_by("-id").first()
        fanout.push_ticket_events([as_payload(latest)])
        connection.close()  # this helper thread's own connection
        return latest.pk

    heard = asyncio.run(scenario())

    assert len(heard) == IDLE_SOCKETS
    assert {(message["type"], message["id"]) for message in heard} == {("event", signals[1])}
    assert database_connections(realtime_server.application_name) == 0


def test_an_inbound_message_reaches_an_agents_socket_through_the_worker(
    realtime_server, celery_worker, alice
):
    with connect_sync(realtime_server.stream_url(tokens.issue(alice)), open_timeout=30) as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "hello"

        received = inbound.receive(inbound_message(sender_address="live@customer.test"))

        heard = [json.loads(ws.recv(timeout=60)) for _ in range(2)]
    assert [(event["name"], event["ticket_id"]) for event in heard] == [
        ("ticket.created", received.ticket.pk),
        ("message.received", received.ticket.pk),
    ]


def test_the_realtime_service_answers_its_health_check_and_nothing_else_over_http(realtime_server):
    assert realtime_server.get("/healthz") == 200
    assert realtime_server.get("/healthz", {"X-Forwarded-For": "203.0.113.9"}) == 404
    assert realtime_server.get("/api/v1/tickets/") == 404
    assert realtime_server.get("/admin/") == 404
