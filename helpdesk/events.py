"""Domain events: the catalogue of names, who reacts to each, and publishing after commit.

A domain event is a `TicketEvent` row (the audit trail doubles as the outbox) sent to Celery as a
small JSON dict of ids once the transaction that wrote it has committed. Subscribers are listed here,
explicitly, so `grep` finds who reacts to what; there are no Django signals in the domain flow.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

if TYPE_CHECKING:
    from tickets.models import TicketEvent

logger = logging.getLogger(__name__)

TICKET_CREATED = "ticket.created"
TICKET_UPDATED = "ticket.updated"
MESSAGE_RECEIVED = "message.received"
MESSAGE_QUEUED = "message.queued"
MESSAGE_SENT = "message.sent"
MESSAGE_FAILED = "message.failed"
NOTE_ADDED = "note.added"

CATALOGUE = frozenset(
    {
        TICKET_CREATED,
        TICKET_UPDATED,
        MESSAGE_RECEIVED,
        MESSAGE_QUEUED,
        MESSAGE_SENT,
        MESSAGE_FAILED,
        NOTE_ADDED,
    }
)

# Every ticket event goes live to the agents who may see it (realtime/fanout.py).
PUSH_LIVE = "realtime.tasks.push_ticket_events"

# Event name -> Celery task paths that consume it. Each task takes a list of event dicts (a batch).
SUBSCRIBERS: dict[str, tuple[str, ...]] = {
    TICKET_CREATED: (PUSH_LIVE,),
    TICKET_UPDATED: (PUSH_LIVE,),
    MESSAGE_RECEIVED: ("tickets.tasks.record_customer_contact", PUSH_LIVE),
    MESSAGE_QUEUED: ("tickets.tasks.deliver_queued_messages", PUSH_LIVE),
    MESSAGE_SENT: (PUSH_LIVE,),
    MESSAGE_FAILED: (PUSH_LIVE,),
    NOTE_ADDED: (PUSH_LIVE,),
}


def as_payload(event: TicketEvent) -> dict[str, Any]:
    """The JSON-serialisable form sent to subscribers: ids only, never rows."""
    return {
        "id": event.pk,
        "name": event.name,
        "ticket_id": event.ticket_id,
        "message_id": event.message_id,
        "actor_id": event.actor_id,
        "occurred_at": event.created_at.isoformat(),
    }


def publish_on_commit(events: Iterable[TicketEvent]) -> None:
    """Publish these events once the current transaction commits (immediately outside one)."""
    payloads = [as_payload(event) for event in events]
    unknown = {payload["name"] for payload in payloads} - CATALOGUE
    if unknown:
        raise ValueError(f"Events missing from the catalogue in helpdesk/events.py: {sorted(unknown)}")
    if payloads:
        transaction.on_commit(lambda: _outbox.add(payloads))


def publish(payloads: list[dict[str, Any]]) -> None:
    """Hand events to their subscribers, one Celery message per subscriber, then mark them published.

    If the broker is down the rows stay unpublished and `republish_unpublished_events` sends them later.
    """
    batches: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for payload in payloads:
        for task_path in SUBSCRIBERS.get(payload["name"], ()):
            batches[task_path].append(payload)
    try:
        for task_path, batch in batches.items():
            send_to_subscriber(task_path, batch)
    except Exception:
        logger.exception("Could not publish %d domain events; the beat sweep will retry", len(payloads))
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tickets_ticketevent SET published_at = %s WHERE id = ANY(%s)",
            [timezone.now(), [payload["id"] for payload in payloads]],
        )


def send_to_subscriber(task_path: str, batch: list[dict[str, Any]]) -> None:
    from helpdesk.celery import app

    # No publish retries: with the broker down the request must not hang; the outbox sweep resends.
    app.send_task(task_path, args=[batch], retry=False)


class _Outbox:
    """Gathers committed events for up to `delay` seconds and publishes them in one go.

    One Celery message per subscriber and one UPDATE per batch instead of per transaction: about a
    third of the cost of ingesting a message before (bench/RESULTS.md). A dedicated daemon
    thread flushes, so it keeps one database connection; events still buffered when a process dies
    are unpublished rows that `republish_unpublished_events` sends a minute later.
    """

    def __init__(self) -> None:
        self._pending: list[dict[str, Any]] = []
        self._wakeup = threading.Condition()
        self._flusher: threading.Thread | None = None
        self._pid = 0

    def add(self, payloads: list[dict[str, Any]]) -> None:
        delay = settings.EVENTS_PUBLISH_DELAY
        if delay <= 0:
            publish(payloads)
            return
        if self._pid != os.getpid():
            # A forked child (Celery prefork) has no flusher thread, and the parent's lock may be held.
            self._pending, self._wakeup, self._flusher = [], threading.Condition(), None
        with self._wakeup:
            self._pending.extend(payloads)
            if self._flusher is None:
                self._pid = os.getpid()
                self._flusher = threading.Thread(target=self._run, args=(delay,), daemon=True)
                self._flusher.start()
                atexit.register(self.flush)
            self._wakeup.notify()

    def flush(self) -> None:
        with self._wakeup:
            payloads, self._pending = self._pending, []
        if payloads:
            publish(payloads)

    def _run(self, delay: float) -> None:
        while True:
            with self._wakeup:
                if not self._pending:
                    # Idle: hold no database connection (busy, it keeps one from batch to batch).
                    connection.close()
                self._wakeup.wait_for(lambda: self._pending)
            time.sleep(delay)
            try:
                self.flush()
            except Exception:
                logger.exception("Publishing domain events failed; the beat sweep will retry")
                connection.close()  # a broken connection would fail every later batch too


_outbox = _Outbox()
