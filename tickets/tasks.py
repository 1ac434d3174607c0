"""Thin Celery tasks: take ids, load rows, call a service. All idempotent (acks_late redelivers)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from helpdesk import events
from tickets import inbound, replies
from tickets.models import Customer, Message, TicketEvent

# Events younger than this are still being published by the process that wrote them.
REPUBLISH_AFTER = timedelta(minutes=1)


@events.subscriber
def record_customer_contact(batch: list[dict[str, Any]]) -> int:
    """message.received: keep each customer's last-contact time (the customer list's "recently active")."""
    occurred_at = {event["message_id"]: event["occurred_at"] for event in batch if event.get("message_id")}
    latest: dict[int, str] = {}
    for message_id, customer_id in Message.objects.filter(pk__in=occurred_at).values_list(
        "id", "customer_id"
    ):
        if customer_id and occurred_at[message_id] > latest.get(customer_id, ""):
            latest[customer_id] = occurred_at[message_id]
    for customer_id, when in latest.items():
        # PostgreSQL's GREATEST ignores NULL: redelivered or out-of-order batches never move the time back.
        Customer.objects.filter(pk=customer_id).update(
            last_contact_at=Greatest(F("last_contact_at"), Value(parse_datetime(when)))
        )
    return len(latest)


@events.subscriber
def deliver_queued_messages(batch: list[dict[str, Any]]) -> None:
    """message.queued: one delivery task per reply, so a slow channel never holds up the others."""
    for event in batch:
        deliver_message.delay(event["message_id"])


@shared_task
def deliver_message(message_id: int) -> str:
    result = replies.deliver(message_id)
    # Lost countdowns are harmless: retry_due_deliveries finds the message by next_attempt_at. Longer waits
    # are left to it alone: Redis would hand a countdown past the visibility timeout to another worker.
    if (
        result.outcome is replies.Outcome.RETRY
        and (result.retry_in or 0) < settings.CELERY_VISIBILITY_TIMEOUT
    ):
        deliver_message.apply_async(args=[message_id], countdown=result.retry_in)
    return result.outcome.value


@shared_task
def retry_due_deliveries() -> int:
    due = replies.due_retries()
    for message_id in due:
        deliver_message.delay(message_id)
    return len(due)


@shared_task
def republish_unpublished_events(limit: int = 1000, budget_seconds: float = 50) -> int:
    """Send events whose publisher died between commit and publish (the outbox sweep).

    Drains in batches until none are left or the time budget (under beat's one-minute period) is spent,
    so recovering from a long broker outage takes minutes, not hours.
    """
    deadline = time.monotonic() + budget_seconds
    sent = 0
    while time.monotonic() < deadline:
        stragglers = list(
            TicketEvent.objects.filter(
                published_at=None, created_at__lt=timezone.now() - REPUBLISH_AFTER
            ).order_by("created_at")[:limit]
        )
        if not stragglers:
            break
        events.publish([events.as_payload(event) for event in stragglers])
        sent += len(stragglers)
        if TicketEvent.objects.filter(pk=stragglers[0].pk, published_at=None).exists():
            break  # the broker is still down: try again at the next beat
    return sent


@shared_task
def resend_stranded_subscriber_batches(limit: int = 500) -> int:
    """Subscriber batches not done long after they were sent: the broker lost them, or their task failed."""
    return events.resend_stranded_batches(limit=limit)


@shared_task
def retry_due_envelopes() -> int:
    """Inbound envelopes to process again: failed ones whose backoff has passed, and ones still pending a
    while after they arrived (their processing died with its process)."""
    retried = len(inbound.retry_due_envelopes())
    stuck = inbound.stuck_envelope_ids(older_than=timedelta(minutes=5))
    return retried + (len(inbound.replay_envelopes(envelope_ids=stuck)) if stuck else 0)
