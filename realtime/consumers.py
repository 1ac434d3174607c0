"""/ws/events/: the ticket events an agent may see, pushed as ids. The message format is in README.

Push only: a client sends nothing but its socket URL; replies, notes and field changes are HTTP requests to
the web tier. Database work happens at connect (who is this, what may they see, what did they miss), each
time on a connection closed when done (CONN_MAX_AGE=0 here), so an idle socket holds none.
"""

from __future__ import annotations

import asyncio
import random
from collections import OrderedDict
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from helpdesk.events import TICKET_UPDATED, as_payload
from realtime.access import StreamRequest, Subscription, still_visible, subscribe
from realtime.catchup import catch_up

# Close codes the client acts on (README): reconnect at once, resuming from the last event id.
RECONNECT = 4000
# Sockets joining or leaving their groups at once (a reconnect storm, a restart) wait their turn rather than
# overflow the channel layer's Redis connection pool.
_GROUP_CHANGES = asyncio.Semaphore(32)


class RecentEventIds:
    """The last ids sent on one socket: an event reaching it through two groups is sent once."""

    def __init__(self, size: int = 256) -> None:
        self._ids: OrderedDict[int, None] = OrderedDict()
        self._size = size

    def add(self, event_id: int) -> bool:
        """True if the id is new (and now remembered)."""
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)
        return True


class TicketEventStream(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        request = StreamRequest.from_query_string(self.scope.get("query_string", b""))
        subscription = await database_sync_to_async(subscribe)(self.scope, request) if request else None
        if subscription is None:
            await self.close()  # before accept: the handshake is refused with 403
            return
        self.sent = RecentEventIds()
        self.subscription = subscription
        # Join first, then read the backlog: an event committed in between arrives both ways, sent once.
        self.joined = subscription.groups
        async with _GROUP_CHANGES:
            for group in self.joined:
                await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self._catch_up(subscription, request.last_event_id)
        # Reconnecting now and then re-checks access (teams, role, password); spread so they don't coincide.
        max_age = settings.REALTIME_SOCKET_MAX_AGE * random.uniform(0.9, 1.0)  # noqa: S311
        self.expiry = asyncio.get_running_loop().call_later(
            max_age, lambda: asyncio.ensure_future(self.close(code=RECONNECT))
        )

    async def _catch_up(self, subscription: Subscription, after: int | None) -> None:
        caught_up = await database_sync_to_async(catch_up)(subscription, after)
        await self.send_json({"type": "hello", "last_event_id": caught_up.last_event_id})
        if not caught_up.complete:
            await self.send_json({"type": "resync", "last_event_id": caught_up.last_event_id})
            return
        for event in caught_up.events:
            await self._send_event(as_payload(event))
        if after is not None:
            await self.send_json({"type": "caught_up", "last_event_id": caught_up.last_event_id})

    async def ticket_events(self, message: dict[str, Any]) -> None:
        """A batch from the fan-out (realtime.fanout) to one of this socket's groups."""
        for event in message["events"]:
            await self._send_event(event)
        # A one-ticket stream hears its ticket whoever it moves to: after a change, check access again.
        one_ticket = self.subscription.ticket_id is not None
        if one_ticket and any(event["name"] == TICKET_UPDATED for event in message["events"]):
            if not await database_sync_to_async(still_visible)(self.subscription):
                await self.close(code=RECONNECT)

    async def _send_event(self, event: dict[str, Any]) -> None:
        if self.sent.add(event["id"]):
            await self.send_json({"type": "event", **event})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Push only: what a client sends is ignored (actions are HTTP requests to the web tier)."""

    async def disconnect(self, code: int) -> None:
        expiry = getattr(self, "expiry", None)
        if expiry is not None:
            expiry.cancel()
        async with _GROUP_CHANGES:
            for group in getattr(self, "joined", ()):
                await self.channel_layer.group_discard(group, self.channel_name)


class NoSuchStream(AsyncJsonWebsocketConsumer):
    """Any other socket path: refused at the handshake, like a 404."""

    async def connect(self) -> None:
        await self.close()
