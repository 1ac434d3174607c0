"""Live fan-out: committed ticket events go, as ids, to the channel-layer groups of the agents who see them.

Runs in the Celery worker (realtime.tasks), subscribed to every event in helpdesk/events.py. One batch costs
two queries and one channel-layer send per group it reaches, whatever its size.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from helpdesk.events import TICKET_UPDATED
from realtime.audience import groups_for_event
from tickets.models import Ticket, TicketEvent


def push_ticket_events(batch: list[dict[str, Any]]) -> int:
    """Send each event of the batch to its groups; returns how many events went out."""
    ticket_ids = {event["ticket_id"] for event in batch}
    routing = {
        ticket_id: (team_id, assignee_id)
        for ticket_id, team_id, assignee_id in Ticket.objects.filter(pk__in=ticket_ids).values_list(
            "id", "team_id", "assignee_id"
        )
    }
    # A ticket moved between teams or agents is news to both sides: the changes hold the one before.
    moves = dict(
        TicketEvent.objects.filter(
            pk__in=[event["id"] for event in batch if event["name"] == TICKET_UPDATED]
        ).values_list("id", "changes")
    )
    by_group: dict[str, list[dict[str, Any]]] = defaultdict(list)
    pushed = 0
    for event in batch:
        if event["ticket_id"] not in routing:
            continue  # the ticket is gone (deleted by an admin): nobody can fetch it
        team_id, assignee_id = routing[event["ticket_id"]]
        changes = moves.get(event["id"]) or {}
        team_ids = {team_id, *changes.get("team", [])}
        assignee_ids = {assignee_id, *changes.get("assignee", [])}
        for group in groups_for_event(event["ticket_id"], team_ids=team_ids, assignee_ids=assignee_ids):
            by_group[group].append(event)
        pushed += 1
    if by_group:
        async_to_sync(_send_to_groups)(by_group)
    return pushed


# Group sends in flight at once: overlapping round trips, within the layer's Redis connection pool (100).
SENDS_AT_ONCE = 16


async def _send_to_groups(by_group: dict[str, list[dict[str, Any]]]) -> None:
    layer = get_channel_layer()
    slots = asyncio.Semaphore(SENDS_AT_ONCE)

    async def send(group: str, events: list[dict[str, Any]]) -> None:
        async with slots:
            await layer.group_send(group, {"type": "ticket.events", "events": events})

    await asyncio.gather(*(send(group, events) for group, events in by_group.items()))
