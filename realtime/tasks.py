"""Thin Celery tasks of the realtime service's fan-out."""

from __future__ import annotations

from typing import Any

from helpdesk import events
from realtime import fanout


@events.subscriber
def push_ticket_events(batch: list[dict[str, Any]]) -> int:
    """Every domain event: push its id live (a redelivered batch is harmless: sockets send each id once)."""
    return fanout.push_ticket_events(batch)
