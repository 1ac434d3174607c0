"""The one way an answer goes out: `send_reply()` queues it, `deliver()` hands it to the channel.

`send_reply` stores an outbound message (queued) and a `message.queued` event; its subscriber task
calls `deliver`, which asks the channel's adapter to send it and records every try as a
`DeliveryAttempt`. Temporary errors retry with backoff; permanent ones fail the message at once
with the reason shown on the ticket.
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from helpdesk import events
from tickets import lifecycle
from tickets.channels import DeliveryError, OutboundAttachment, OutboundMessage, adapter_class_for
from tickets.content import keep_original_html, message_body
from tickets.exceptions import NotAnAgent, StaleReply, UnknownChannel
from tickets.lifecycle import Happening, normalize_tags
from tickets.models import (
    Customer,
    DeliveryAttempt,
    DeliveryStatus,
    Direction,
    Identity,
    Message,
    MessageKind,
    Priority,
    Team,
    Ticket,
    TicketEvent,
    User,
)

logger = logging.getLogger(__name__)

# Seconds to wait before each retry of a temporary delivery failure; after the last, the message fails.
RETRY_BACKOFF = (15, 60, 300, 900, 3600)
# A message left "sending" this long belongs to a worker that died mid-send.
STALE_SENDING = timedelta(minutes=10)


def send_reply(
    ticket: Ticket,
    *,
    actor: User,
    text: str = "",
    html: str = "",
    status: str | None = None,
    seen_message_id: int | None = None,
    confirmed: bool = False,
) -> Message:
    """Queue a public answer to the customer on the ticket's channel; optionally set the status too.

    `seen_message_id` is the newest message the agent had on screen; if the customer wrote since, or
    another agent answered, the reply is refused with `StaleReply` (carrying what arrived) unless `confirmed`.
    """
    with transaction.atomic():
        locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
        if seen_message_id is not None and not confirmed:
            arrived = _arrived_since(locked, seen_message_id, actor=actor)
            if arrived:
                raise StaleReply(arrived=arrived)
        now = timezone.now()
        changes = lifecycle.apply(locked, Happening.AGENT_REPLY, now=now, status=status).changes
        body = message_body(text=text, html=html)
        message = Message.objects.create(
            ticket=locked,
            direction=Direction.OUT,
            kind=MessageKind.MESSAGE,
            channel=locked.channel,
            author=actor,
            body_text=body.text,
            body_html=body.html,
            channel_data={"content_note": body.note} if body.note else {},
            delivery_status=DeliveryStatus.QUEUED,
            created_at=now,
        )
        keep_original_html(message, body)
        if locked.first_response_at is None:
            changes["first_response_at"] = [None, now.isoformat()]
            locked.first_response_at = now
        locked.updated_at = now
        locked.save()
        new_events = [
            TicketEvent(
                ticket=locked, name=events.MESSAGE_QUEUED, actor=actor, message=message, created_at=now
            )
        ]
        if changes:
            new_events.append(
                TicketEvent(
                    ticket=locked, name=events.TICKET_UPDATED, actor=actor, changes=changes, created_at=now
                )
            )
        TicketEvent.objects.bulk_create(new_events)
        events.publish_on_commit(new_events)
    return message


def _arrived_since(ticket: Ticket, seen_message_id: int, *, actor: User) -> list[int]:
    """Expects the ticket locked. Ids of what would change the answer: the customer's messages and other
    agents' replies newer than the one seen (ids grow with time); notes and system lines do not."""
    newer = Message.objects.filter(ticket=ticket, pk__gt=seen_message_id)
    customer = Q(direction=Direction.IN)
    other_agent = Q(direction=Direction.OUT, kind=MessageKind.MESSAGE) & ~Q(author=actor)
    return list(newer.filter(customer | other_agent).order_by("pk").values_list("pk", flat=True))


def add_note(ticket: Ticket, *, actor: User, text: str = "", html: str = "") -> Message:
    """An internal note: visible to agents only, never delivered."""
    with transaction.atomic():
        locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
        now = timezone.now()
        body = message_body(text=text, html=html)
        message = Message.objects.create(
            ticket=locked,
            direction=Direction.OUT,
            kind=MessageKind.INTERNAL_NOTE,
            channel=locked.channel,
            author=actor,
            body_text=body.text,
            body_html=body.html,
            channel_data={"content_note": body.note} if body.note else {},
            created_at=now,
        )
        keep_original_html(message, body)
        locked.updated_at = now
        locked.save(update_fields=["updated_at"])
        event = TicketEvent.objects.create(
            ticket=locked, name=events.NOTE_ADDED, actor=actor, message=message, created_at=now
        )
        events.publish_on_commit([event])
    return message


class Outcome(enum.Enum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    outcome: Outcome
    retry_in: float | None = None


def deliver(message_id: int) -> DeliveryResult:
    """One try at sending a queued message. Safe to call twice: a sent message is skipped."""
    outbound = _claim(message_id)
    if outbound is None:
        return DeliveryResult(Outcome.SKIPPED)
    started = time.monotonic()
    external_id, failure = "", None
    try:
        adapter = adapter_class_for(outbound.channel).for_message(outbound)
        external_id = adapter.deliver(outbound)
    except DeliveryError as error:
        failure = error
    except UnknownChannel as error:
        failure = DeliveryError(str(error), permanent=True)
    except Exception as error:  # an adapter bug or a network error: temporary until proven otherwise
        logger.exception("Delivery of message %s raised", message_id)
        failure = DeliveryError(f"{type(error).__name__}: {error}")
    duration_ms = int((time.monotonic() - started) * 1000)
    return _record(message_id, external_id=external_id, failure=failure, duration_ms=duration_ms)


def _claim(message_id: int) -> OutboundMessage | None:
    with transaction.atomic():
        message = (
            Message.objects.select_for_update(of=("self",))
            .select_related("ticket", "ticket__customer")
            .filter(pk=message_id)
            .first()
        )
        if message is None or not _deliverable(message):
            return None
        message.delivery_status = DeliveryStatus.SENDING
        message.sent_at = timezone.now()  # when this try started; overwritten on success
        message.save(update_fields=["delivery_status", "sent_at"])
        return _outbound(message)


def _deliverable(message: Message) -> bool:
    if message.delivery_status == DeliveryStatus.QUEUED:
        # A second trigger (a republished event, a duplicate countdown) must not skip the backoff.
        return message.next_attempt_at is None or message.next_attempt_at <= timezone.now()
    return (
        message.delivery_status == DeliveryStatus.SENDING
        and message.sent_at is not None
        and message.sent_at < timezone.now() - STALE_SENDING
    )


def _outbound(message: Message) -> OutboundMessage:
    ticket = message.ticket
    identity = (
        Identity.objects.filter(customer_id=ticket.customer_id, channel=ticket.channel).order_by("id").first()
    )
    # The newest 50 ids, oldest first (an email's References); the message answered is the last.
    earlier = Message.objects.filter(ticket=ticket, external_id__gt="").exclude(pk=message.pk)
    references = tuple(reversed(earlier.order_by("-created_at").values_list("external_id", flat=True)[:50]))
    latest_inbound = (
        Message.objects.filter(ticket=ticket, direction=Direction.IN)
        .order_by("-created_at")
        .only("channel_data")
    ).first()
    return OutboundMessage(
        message_id=message.pk,
        ticket_id=ticket.pk,
        ticket_number=ticket.number,
        channel=ticket.channel,
        recipient_address=identity.address if identity else "",
        recipient_name=ticket.customer.name,
        subject=ticket.subject,
        text=message.body_text,
        html=message.body_html,
        thread_key=ticket.thread_key,
        in_reply_to=references,
        attachments=tuple(
            OutboundAttachment(filename=a.filename, content_type=a.content_type, storage_name=a.file.name)
            for a in message.attachments.all()
        ),
        channel_data=latest_inbound.channel_data if latest_inbound else {},
    )


def _record(
    message_id: int, *, external_id: str, failure: DeliveryError | None, duration_ms: int
) -> DeliveryResult:
    with transaction.atomic():
        message = Message.objects.select_for_update().get(pk=message_id)
        attempt = DeliveryAttempt.objects.create(
            message=message,
            duration_ms=duration_ms,
            succeeded=failure is None,
            external_id=external_id[:255],
            error=failure.reason[:4000] if failure else "",
            permanent=bool(failure and failure.permanent),
        )
        tries = message.delivery_attempts.count()
        now = timezone.now()
        if failure is None:
            message.delivery_status = DeliveryStatus.SENT
            message.delivery_error = ""
            message.external_id = external_id or None
            message.sent_at = now
            message.next_attempt_at = None
            result = DeliveryResult(Outcome.SENT)
            name = events.MESSAGE_SENT
        elif failure.permanent or tries > len(RETRY_BACKOFF):
            message.delivery_status = DeliveryStatus.FAILED
            message.delivery_error = failure.reason
            result = DeliveryResult(Outcome.FAILED)
            name = events.MESSAGE_FAILED
        else:
            message.delivery_status = DeliveryStatus.QUEUED
            message.delivery_error = failure.reason
            delay = max(RETRY_BACKOFF[tries - 1], failure.retry_after or 0)
            message.sent_at = None
            message.next_attempt_at = now + timedelta(seconds=delay)
            result = DeliveryResult(Outcome.RETRY, retry_in=delay)
            name = None
        message.save(
            update_fields=["delivery_status", "delivery_error", "external_id", "sent_at", "next_attempt_at"]
        )
        if name:
            new_events = [
                TicketEvent.objects.create(
                    ticket_id=message.ticket_id,
                    name=name,
                    message=message,
                    changes={"delivery_status": [DeliveryStatus.SENDING, message.delivery_status]}
                    | ({"error": [None, failure.reason]} if failure else {}),
                    created_at=now,
                )
            ]
            if result.outcome is Outcome.FAILED:
                new_events.extend(_reopen_after_failed_delivery(message.ticket_id, now=now))
            events.publish_on_commit(new_events)
    logger.info("Delivery of message %s: %s (attempt %s)", message_id, result.outcome.value, attempt.pk)
    return result


def _reopen_after_failed_delivery(ticket_id: int, *, now: datetime) -> list[TicketEvent]:
    """Expects to run in _record's transaction. The customer never got the answer, so a ticket that
    waited on them (or was solved by that answer) waits on an agent again."""
    ticket = Ticket.objects.select_for_update().get(pk=ticket_id)
    changes = lifecycle.apply(ticket, Happening.DELIVERY_FAILED, now=now).changes
    if not changes:
        return []
    ticket.updated_at = now
    ticket.save(update_fields=["status", "solved_at", "updated_at"])
    return [
        TicketEvent.objects.create(ticket=ticket, name=events.TICKET_UPDATED, changes=changes, created_at=now)
    ]


def due_retries(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Messages to try again: retry time passed (countdown task lost), never started, or stuck sending."""
    now = now or timezone.now()
    grace = now - timedelta(minutes=1)
    due = Message.objects.filter(
        Q(delivery_status=DeliveryStatus.QUEUED, next_attempt_at__lte=grace)
        | Q(delivery_status=DeliveryStatus.QUEUED, next_attempt_at=None, created_at__lt=grace)
        | Q(delivery_status=DeliveryStatus.SENDING, sent_at__lt=now - STALE_SENDING)
    )
    return list(due.order_by("created_at").values_list("id", flat=True)[:limit])


def open_ticket(
    customer: Customer,
    *,
    actor: User,
    channel: str,
    subject: str,
    text: str = "",
    html: str = "",
    priority: str = Priority.NORMAL,
    team: Team | None = None,
    assignee: User | None = None,
    tags: list[str] | None = None,
) -> Ticket:
    """An agent starts a conversation: a new ticket whose first message is their answer to the customer."""
    if assignee is not None and not assignee.is_agent:
        raise NotAnAgent(f"{assignee} cannot be assigned tickets")
    with transaction.atomic():
        ticket = Ticket.objects.create(
            subject=subject[:255],
            channel=channel,
            customer=customer,
            priority=priority,
            team=team,
            assignee=assignee,
            tags=normalize_tags(tags or []),
        )
        event = TicketEvent.objects.create(
            ticket=ticket,
            name=events.TICKET_CREATED,
            actor=actor,
            changes={"status": [None, ticket.status], "channel": [None, channel]},
            created_at=ticket.created_at,
        )
        events.publish_on_commit([event])
        send_reply(ticket, actor=actor, text=text, html=html)
    ticket.refresh_from_db()
    return ticket
