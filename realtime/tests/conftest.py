"""Sockets on the real realtime ASGI application with the real Redis channel layer, in the test process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.test import Client

from helpdesk.events import as_payload
from realtime import fanout, tokens
from realtime.routing import application
from tickets.models import TicketEvent, User

ORIGIN = "https://testserver"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def database_like_the_realtime_service(monkeypatch) -> None:
    # As in the realtime process: each database call from a socket closes its connection when done.
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)


def session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


@asynccontextmanager
async def socket(
    path: str = "/ws/events/", *, headers: list[tuple[bytes, bytes]] | None = None
) -> AsyncIterator[tuple[bool, WebsocketCommunicator]]:
    communicator = WebsocketCommunicator(application, path, headers=headers or [])
    connected, _ = await communicator.connect(timeout=10)
    try:
        yield connected, communicator
    finally:
        if connected:  # a refused socket is closed already
            await communicator.disconnect()


@asynccontextmanager
async def agent_socket(
    user: User, query: str = "", *, hello: bool = True
) -> AsyncIterator[WebsocketCommunicator]:
    """An open socket of `user` (with a token), its hello already read unless `hello` is False."""
    token = await database_sync_to_async(tokens.issue)(user)
    async with socket(f"/ws/events/?token={token}" + (f"&{query}" if query else "")) as (connected, ws):
        assert connected, "the socket was refused"
        if hello:
            assert (await ws.receive_json_from(timeout=10))["type"] == "hello"
        yield ws


def browser_headers(user: User, *, origin: str = ORIGIN) -> list[tuple[bytes, bytes]]:
    return [(b"cookie", f"sessionid={session_cookie(user)}".encode()), (b"origin", origin.encode())]


@pytest.fixture
def push_new_events() -> Iterator[Callable[[], Any]]:
    """Fan out every event committed since the last call, as the worker's subscriber task would."""
    pushed = {"last": TicketEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0}

    def push() -> list[int]:
        new = list(TicketEvent.objects.filter(id__gt=pushed["last"]).order_by("id"))
        if new:
            pushed["last"] = new[-1].pk
            fanout.push_ticket_events([as_payload(event) for event in new])
        return [event.pk for event in new]

    yield database_sync_to_async(push)


async def events_until(ws: WebsocketCommunicator, last_id: int) -> list[dict[str, Any]]:
    """The events a socket is sent, read until the one with `last_id`.

    Fan-outs reach a socket in the order they were made, so whatever an earlier fan-out sent it has arrived
    by then: a test pushes what must not arrive first and a marker it may see last.
    """
    events = []
    while True:
        message = await ws.receive_json_from(timeout=10)
        assert message["type"] == "event", message
        events.append(message)
        if message["id"] == last_id:
            return events
