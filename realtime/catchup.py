"""Catching up: a client that reconnects names the last event id it saw and is sent what it missed."""

from __future__ import annotations

from dataclasses import dataclass

from realtime.access import Subscription
from tickets import selectors
from tickets.models import TicketEvent

# Catching up: how far back a reconnecting client is replayed before it is told to reload instead.
MISSED_EVENTS_LIMIT = 500
MISSED_EVENTS_WINDOW = 20_000  # event ids scanned at most


@dataclass(frozen=True)
class CatchUp:
    events: list[TicketEvent]
    complete: bool  # False: more was missed than is replayed; the client reloads what it shows
    last_event_id: int


def catch_up(subscription: Subscription, after: int | None) -> CatchUp:
    """The events after `after` the agent may see (none when `after` is None), and the newest event id."""
    last_event_id = TicketEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    if after is None or after >= last_event_id:
        return CatchUp([], True, last_event_id)
    if last_event_id - after > MISSED_EVENTS_WINDOW:
        return CatchUp([], False, last_event_id)
    missed = selectors.ticket_events_visible_to(subscription.agent).filter(id__gt=after)
    if subscription.ticket_id is not None:
        missed = missed.filter(ticket_id=subscription.ticket_id)
    events = list(missed.order_by("id")[: MISSED_EVENTS_LIMIT + 1])
    if len(events) > MISSED_EVENTS_LIMIT:
        return CatchUp([], False, last_event_id)
    return CatchUp(events, True, last_event_id)
