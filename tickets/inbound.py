"""The one way a customer's message gets in: `receive(InboundMessage)`.

Channel views and pollers first store the raw payload with `store_envelope()`, then call
`process_envelope()`, which parses it with the channel's parser and calls `receive()`. A failure
leaves the envelope `failed` with its error, to be replayed with `manage.py replay_envelopes`.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from helpdesk import events
from tickets.channels import InboundMessage, parser_for
from tickets.content import (
    attachment_too_large,
    sanitize_html,
    store_attachment,
    subject_from_text,
    text_from_html,
)
from tickets.identities import normalize_address
from tickets.models import (
    Customer,
    Direction,
    EnvelopeStatus,
    Identity,
    InboundEnvelope,
    Message,
    MessageKind,
    Status,
    Ticket,
    TicketEvent,
)

logger = logging.getLogger(__name__)

# A customer's message moves a ticket waiting on them (or solved) back to open.
_STATUS_AFTER_CUSTOMER_MESSAGE = {
    Status.PENDING: Status.OPEN,
    Status.ON_HOLD: Status.OPEN,
    Status.SOLVED: Status.OPEN,
}


@dataclass(frozen=True, slots=True)
class Received:
    message: Message
    ticket: Ticket
    duplicate: bool = False
    ticket_created: bool = False


def receive(inbound: InboundMessage) -> Received:
    """Store one inbound message on the right ticket, idempotently, and publish its events on commit.

    The same (channel, external_id) twice gives back the first message and changes nothing.
    """
    existing = _existing_message(inbound)
    if existing is not None:
        return Received(message=existing, ticket=existing.ticket, duplicate=True)
    try:
        with transaction.atomic():
            received, new_events = _receive_locked(inbound)
            events.publish_on_commit(new_events)
    except IntegrityError:
        # A concurrent receive() stored the same message first.
        existing = _existing_message(inbound)
        if existing is None:
            raise
        return Received(message=existing, ticket=existing.ticket, duplicate=True)
    return received


def _existing_message(inbound: InboundMessage) -> Message | None:
    return (
        Message.objects.select_related("ticket")
        .filter(channel=inbound.channel, external_id=inbound.external_id)
        .first()
    )


def _receive_locked(inbound: InboundMessage) -> tuple[Received, list[TicketEvent]]:
    """Runs inside receive()'s transaction; locks the ticket it threads into."""
    now = timezone.now()
    customer = customer_for_sender(
        inbound.channel, inbound.sender_address, name=inbound.sender_name, locale=inbound.sender_locale
    )
    ticket = _thread_into(inbound, customer)
    new_events: list[TicketEvent] = []
    ticket_created = ticket is None or ticket.status == Status.CLOSED
    if ticket_created:
        ticket = _open_ticket(inbound, customer, follow_up_of=ticket, now=now)
    html = sanitize_html(inbound.html)
    rejected = [
        {"filename": item.filename, "size": len(item.content), "reason": "too large"}
        for item in inbound.attachments
        if attachment_too_large(len(item.content))
    ]
    channel_data = dict(inbound.channel_data)
    if rejected:
        channel_data["rejected_attachments"] = rejected
    message = Message.objects.create(
        ticket=ticket,
        direction=Direction.IN,
        kind=inbound.kind,
        channel=inbound.channel,
        customer=customer,
        body_text=inbound.text or text_from_html(html),
        body_html=html,
        external_id=inbound.external_id,
        channel_data=channel_data,
        created_at=now,
        sent_at=inbound.sent_at,
    )
    for item in inbound.attachments:
        if not attachment_too_large(len(item.content)):
            store_attachment(
                message,
                filename=item.filename,
                content_type=item.content_type,
                content=item.content,
                content_id=item.content_id,
            )
    if ticket_created:
        created_changes: dict[str, Any] = {"status": [None, ticket.status], "channel": [None, ticket.channel]}
        if ticket.follow_up_of_id:
            created_changes["follow_up_of"] = [None, ticket.follow_up_of_id]
        new_events.append(
            TicketEvent(ticket=ticket, name=events.TICKET_CREATED, changes=created_changes, created_at=now)
        )
    else:
        new_events.extend(_apply_customer_message(ticket, now=now))
    new_events.append(
        TicketEvent(ticket=ticket, name=events.MESSAGE_RECEIVED, message=message, created_at=now)
    )
    TicketEvent.objects.bulk_create(new_events)
    return Received(message=message, ticket=ticket, ticket_created=ticket_created), new_events


def customer_for_sender(channel: str, address: str, *, name: str = "", locale: str = "") -> Customer:
    """The customer behind this address on this channel, created with its identity on first contact."""
    address = normalize_address(channel, address)
    identity = Identity.objects.select_related("customer").filter(channel=channel, address=address).first()
    if identity is not None:
        return identity.customer
    try:
        with transaction.atomic():
            customer = Customer.objects.create(name=name[:200], locale=locale[:8])
            Identity.objects.create(
                customer=customer, channel=channel, address=address, display_name=name[:200]
            )
            return customer
    except IntegrityError:
        return Identity.objects.select_related("customer").get(channel=channel, address=address).customer


def _thread_into(inbound: InboundMessage, customer: Customer) -> Ticket | None:
    """The ticket this message continues, locked; a closed one means a follow-up; None means a new ticket.

    Order: a reference to an earlier message (email In-Reply-To/References), then the channel's
    conversation key; only a message with neither (and not flagged as a new conversation) joins the
    customer's latest ticket on this channel.
    """
    ticket_id = None
    if inbound.in_reply_to:
        ticket_id = (
            Message.objects.filter(channel=inbound.channel, external_id__in=inbound.in_reply_to)
            .order_by("-created_at")
            .values_list("ticket_id", flat=True)
            .first()
        )
    if ticket_id is None and inbound.thread_key:
        ticket_id = (
            Ticket.objects.filter(channel=inbound.channel, thread_key=inbound.thread_key, customer=customer)
            .order_by("-id")
            .values_list("id", flat=True)
            .first()
        )
    explicit = inbound.in_reply_to or inbound.thread_key or inbound.new_conversation
    if ticket_id is None and not explicit:
        ticket_id = (
            Ticket.objects.filter(customer=customer, channel=inbound.channel)
            .order_by("-updated_at")
            .values_list("id", flat=True)
            .first()
        )
    if ticket_id is None:
        return None
    return Ticket.objects.select_for_update().get(pk=ticket_id)


def _open_ticket(inbound: InboundMessage, customer: Customer, *, follow_up_of: Ticket | None, now) -> Ticket:
    subject = inbound.subject or subject_from_text(inbound.text or text_from_html(inbound.html))
    if not subject and inbound.kind == MessageKind.CALL:
        subject = f"Call from {inbound.sender_address}"
    return Ticket.objects.create(
        subject=subject[:255],
        channel=inbound.channel,
        customer=customer,
        thread_key=inbound.thread_key[:255],
        follow_up_of=follow_up_of,
        team_id=follow_up_of.team_id if follow_up_of else None,
        created_at=now,
        updated_at=now,
    )


def _apply_customer_message(ticket: Ticket, *, now) -> list[TicketEvent]:
    """Expects `ticket` locked. Bumps updated_at and reopens a ticket that waited on the customer."""
    new_status = _STATUS_AFTER_CUSTOMER_MESSAGE.get(ticket.status)
    ticket.updated_at = now
    update_fields = ["updated_at"]
    changed: list[TicketEvent] = []
    if new_status is not None:
        changes: dict[str, Any] = {"status": [ticket.status, new_status]}
        if ticket.status == Status.SOLVED:
            changes["solved_at"] = [ticket.solved_at.isoformat() if ticket.solved_at else None, None]
            ticket.solved_at = None
            update_fields.append("solved_at")
        ticket.status = new_status
        update_fields.append("status")
        changed.append(
            TicketEvent(ticket=ticket, name=events.TICKET_UPDATED, changes=changes, created_at=now)
        )
    ticket.save(update_fields=update_fields)
    return changed


def store_envelope(
    channel: str, external_id: str, payload: bytes, *, source: dict[str, Any] | None = None
) -> tuple[InboundEnvelope, bool]:
    """Keep the raw payload before anything parses it; a resend is not stored twice.

    Returns (envelope, created).
    """
    envelope, created = InboundEnvelope.objects.get_or_create(
        channel=channel,
        external_id=external_id[:255],
        defaults={"payload": payload, "source": source or {}},
    )
    return envelope, created


def process_envelope(envelope: InboundEnvelope) -> InboundEnvelope:
    """Parse and receive a stored payload. Never raises: a failure is recorded on the envelope for replay."""
    if envelope.status in (EnvelopeStatus.PROCESSED, EnvelopeStatus.IGNORED):
        return envelope
    envelope.attempts += 1
    try:
        parse = parser_for(envelope.channel)
        inbound = parse(bytes(envelope.payload), envelope.source)
        if inbound is None:
            envelope.status = EnvelopeStatus.IGNORED
        else:
            envelope.message = receive(inbound).message
            envelope.status = EnvelopeStatus.PROCESSED
        envelope.error = ""
        envelope.processed_at = timezone.now()
    except Exception:
        logger.exception("Inbound envelope %s failed; kept for replay", envelope.pk)
        envelope.status = EnvelopeStatus.FAILED
        envelope.error = traceback.format_exc(limit=8)[-4000:]
    envelope.save(update_fields=["status", "error", "attempts", "message", "processed_at"])
    return envelope


def replay_envelopes(
    *, channel: str | None = None, envelope_ids: list[int] | None = None, limit: int = 1000
) -> list[InboundEnvelope]:
    """Process again every pending or failed envelope (or the given ones), oldest first."""
    pending = InboundEnvelope.objects.filter(status__in=[EnvelopeStatus.PENDING, EnvelopeStatus.FAILED])
    if channel:
        pending = pending.filter(channel=channel)
    if envelope_ids:
        pending = pending.filter(pk__in=envelope_ids)
    return [process_envelope(envelope) for envelope in pending.order_by("received_at", "id")[:limit]]


def stuck_envelope_ids(*, older_than: timedelta) -> list[int]:
    """Pending envelopes that nobody finished: their process died between storing and processing."""
    cutoff = timezone.now() - older_than
    pending = InboundEnvelope.objects.filter(status=EnvelopeStatus.PENDING, received_at__lt=cutoff)
    return list(pending.order_by("received_at").values_list("id", flat=True)[:1000])
