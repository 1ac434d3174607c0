"""Domain events: the catalogue of names, who reacts to each, and publishing after commit.

A domain event is a `TicketEvent` row (the audit trail doubles as the outbox) sent to Celery as a
small JSON dict of ids once the transaction that wrote it has committed. Subscribers are listed here,
explicitly, so `grep` finds who reacts to what; there are no Django signals in the domain flow.

Nothing a subscriber should do is lost with a process. An event left unsent when its publisher died is
republished by a sweep (`published_at` is null). Once sent, each subscriber's batch is tracked by a
`SubscriberBatch` row until that subscriber's task has run: a worker killed mid-task gets the batch back from
the broker after its visibility timeout, and a batch the broker lost, or whose task kept failing, is sent
again by a second sweep. Tracking the delivery rather than re-deriving each effect keeps this true for every
subscriber, including ones whose effect cannot be recomputed (a trigger's reply, a live push).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

if TYPE_CHECKING:
    from celery import Task

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

# Event name -> Celery task paths that consume it. Each is an @subscriber task taking a list of event dicts.
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

    Each subscriber's batch is recorded before it is sent, so its task always finds the row to delete once it
    ran. If the broker is down the rows stay unpublished and `republish_unpublished_events` sends them later.
    """
    from tickets.models import SubscriberBatch

    by_subscriber: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for payload in payloads:
        for task_path in SUBSCRIBERS.get(payload["name"], ()):
            by_subscriber[task_path].append(payload)
    resend_at = timezone.now() + timedelta(seconds=settings.EVENTS_RESEND_AFTER)
    recorded = SubscriberBatch.objects.bulk_create(
        SubscriberBatch(subscriber=task_path, event_ids=[e["id"] for e in batch], resend_at=resend_at)
        for task_path, batch in by_subscriber.items()
    )
    unsent = {row.pk for row in recorded}
    try:
        for row, batch in zip(recorded, by_subscriber.values(), strict=True):
            send_to_subscriber(row.subscriber, batch, batch_id=row.pk)
            unsent.discard(row.pk)
    except Exception:
        logger.exception("Could not publish %d domain events; the beat sweep will retry", len(payloads))
        # Republishing records new batches for the whole event; these would only be sent a second time (as
        # they are, later, if the database is gone too: a duplicate, never a loss).
        with contextlib.suppress(DatabaseError):
            SubscriberBatch.objects.filter(pk__in=unsent).delete()
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tickets_ticketevent SET published_at = %s WHERE id = ANY(%s)",
            [timezone.now(), [payload["id"] for payload in payloads]],
        )


def send_to_subscriber(task_path: str, batch: list[dict[str, Any]], *, batch_id: int) -> None:
    from helpdesk.celery import app

    # No publish retries: with the broker down the request must not hang; the outbox sweep resends.
    app.send_task(task_path, args=[batch], kwargs={"batch_id": batch_id}, retry=False)


def subscriber(handle: Callable[[list[dict[str, Any]]], Any]) -> Task:
    """Make `handle(batch)` the Celery task of a subscriber: once it has run, its batch is done.

    The task deletes its `SubscriberBatch` row after `handle` returns, so a batch stays tracked until its
    effect is applied; until then it comes back (redelivered, retried, or resent by the sweep), so `handle`
    must be idempotent. A transient error retries it (helpdesk.celery.RecoverableTask).
    """

    @functools.wraps(handle)
    def run(batch: list[dict[str, Any]], batch_id: int | None = None) -> Any:
        from tickets.models import SubscriberBatch

        result = handle(batch)
        if batch_id is not None:  # None: a batch sent before batches were tracked
            SubscriberBatch.objects.filter(pk=batch_id).delete()
        return result

    return shared_task(run)


def resend_stranded_batches(*, limit: int = 500) -> int:
    """Send again the subscriber batches still not done at their `resend_at`; returns how many went out.

    Claimed with one conditional UPDATE that also moves `resend_at` on (twice as far each time, at most 32
    times EVENTS_RESEND_AFTER), so overlapping sweeps never send a batch twice and one that always fails
    does not come back every minute.
    """
    from tickets.models import SubscriberBatch, TicketEvent

    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE tickets_subscriberbatch
               SET sends = sends + 1,
                   resend_at = %(now)s + make_interval(secs => %(after)s * power(2, least(sends, 5)))
             WHERE id IN (SELECT id FROM tickets_subscriberbatch WHERE resend_at <= %(now)s
                          ORDER BY resend_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
         RETURNING id, subscriber, event_ids, sends
            """,
            {"now": now, "after": settings.EVENTS_RESEND_AFTER, "limit": limit},
        )
        claimed = cursor.fetchall()
    event_ids = {event_id for _batch_id, _path, ids, _sends in claimed for event_id in ids}
    payloads = {event.pk: as_payload(event) for event in TicketEvent.objects.filter(pk__in=event_ids)}
    subscribed = {path for paths in SUBSCRIBERS.values() for path in paths}
    sent = 0
    for position, (batch_id, task_path, ids, sends) in enumerate(claimed):
        batch = [payloads[event_id] for event_id in ids if event_id in payloads]
        if not batch or task_path not in subscribed:  # its events went with their ticket, or its subscriber
            SubscriberBatch.objects.filter(pk=batch_id).delete()
            continue
        logger.warning(
            "Sending %d events to %s again (send %d): its task has not run", len(batch), task_path, sends
        )
        try:
            send_to_subscriber(task_path, batch, batch_id=batch_id)
        except Exception:
            logger.exception("Could not resend subscriber batches; the next sweep will retry")
            SubscriberBatch.objects.filter(pk__in=[row[0] for row in claimed[position:]]).update(
                resend_at=now
            )
            break
        sent += 1
    return sent


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
