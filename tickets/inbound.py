"""The one way a customer's message gets in: `receive(InboundMessage)`.

Channel views and pollers first store the raw payload with `store_envelope()`, then call
`process_envelope()`, which parses it with the channel's parser and calls `receive()`. A failure
leaves the envelope `failed` with its error, to be replayed with `manage.py replay_envelopes`.
"""

from __future__ import annotations

import hashlib
import logging
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
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
    Direction,
    EnvelopeStatus,
    InboundEnvelope,
    Message,
    MessageKind,
    Priority,
    Status,
    Ticket,
    TicketEvent,
)
from tickets.rows import insert_row, insert_rows, update_row

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
    This is the ingest hot path: plain SQL through tickets.rows, one statement per step.
    """
    address = normalize_address(inbound.channel, inbound.sender_address)
    external_id = fit_external_id(inbound.external_id)
    try:
        with transaction.atomic():
            # One sender's messages thread one at a time, so two first messages open one ticket.
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"{inbound.channel}:{address}"]
                )
            found = _look_up(inbound, address, external_id)
            if found.duplicate_id is not None:
                return _duplicate(found.duplicate_id)
            received, new_events = _store(inbound, address, external_id, found)
            events.publish_on_commit(new_events)
    except IntegrityError:
        # Another sender's message with the same id was stored first: still the same message.
        again = _look_up(inbound, address, external_id)
        if again.duplicate_id is None:
            raise
        return _duplicate(again.duplicate_id)
    return received


def fit_external_id(external_id: str) -> str:
    """The channel's id as stored: ids longer than the column are replaced by their SHA-256."""
    if len(external_id) <= 255:
        return external_id
    return "sha256:" + hashlib.sha256(external_id.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class _Found:
    duplicate_id: int | None
    customer_id: int | None
    ticket_id: int | None


# One round trip: is it a duplicate, who sent it, and which ticket it continues. Ticket order:
# an earlier message of this customer's that it references (email In-Reply-To/References), then the
# channel's conversation key, then, only for a message with neither (and not flagged new), the
# customer's latest ticket on the channel, preferring one that is not closed.
_LOOK_UP_SQL = """
WITH sender AS (
    SELECT customer_id FROM tickets_identity WHERE channel = %(channel)s AND address = %(address)s
)
SELECT
    (SELECT id FROM tickets_message
      WHERE channel = %(channel)s AND external_id = %(external_id)s AND direction = 'in'),
    (SELECT customer_id FROM sender),
    COALESCE(
        (SELECT message.ticket_id FROM tickets_message message
           JOIN tickets_ticket ticket ON ticket.id = message.ticket_id
           JOIN sender ON sender.customer_id = ticket.customer_id
          WHERE message.channel = %(channel)s AND message.external_id = ANY(%(in_reply_to)s::varchar[])
          ORDER BY message.created_at DESC LIMIT 1),
        (SELECT ticket.id FROM tickets_ticket ticket JOIN sender USING (customer_id)
          WHERE %(thread_key)s <> '' AND ticket.channel = %(channel)s
            AND ticket.thread_key = %(thread_key)s AND ticket.thread_key <> ''
          ORDER BY ticket.id DESC LIMIT 1),
        (SELECT ticket.id FROM tickets_ticket ticket JOIN sender USING (customer_id)
          WHERE %(join_latest)s AND ticket.channel = %(channel)s
          ORDER BY ticket.status = 'closed', ticket.updated_at DESC LIMIT 1)
    )
"""


def _look_up(inbound: InboundMessage, address: str, external_id: str) -> _Found:
    explicit = bool(inbound.in_reply_to or inbound.thread_key or inbound.new_conversation)
    with connection.cursor() as cursor:
        cursor.execute(
            _LOOK_UP_SQL,
            {
                "channel": inbound.channel,
                "address": address,
                "external_id": external_id,
                "in_reply_to": [fit_external_id(ref) for ref in inbound.in_reply_to if ref],
                "thread_key": inbound.thread_key,
                "join_latest": not explicit,
            },
        )
        return _Found(*cursor.fetchone())


def _duplicate(message_id: int) -> Received:
    message = Message.objects.select_related("ticket").get(pk=message_id)
    return Received(message=message, ticket=message.ticket, duplicate=True)


def _store(
    inbound: InboundMessage, address: str, external_id: str, found: _Found
) -> tuple[Received, list[TicketEvent]]:
    """Runs inside receive()'s transaction, under the sender's lock; locks the ticket it threads into."""
    now = timezone.now()
    customer_id = found.customer_id or _first_contact(inbound, address, now=now)
    ticket = _locked_ticket(found.ticket_id) if found.ticket_id else None
    if ticket is not None and ticket.status == Status.CLOSED:
        # A closed ticket's open follow-up takes the message rather than yet another follow-up.
        follow_up = (
            Ticket.objects.filter(follow_up_of=ticket)
            .exclude(status=Status.CLOSED)
            .order_by("-id")
            .values_list("id", flat=True)
            .first()
        )
        if follow_up is not None:
            ticket = _locked_ticket(follow_up)
    ticket_created = ticket is None or ticket.status == Status.CLOSED
    if ticket_created:
        ticket = _open_ticket(inbound, customer_id, follow_up_of=ticket, now=now)
    html = sanitize_html(inbound.html)
    storable, rejected = [], []
    for item in inbound.attachments:
        if attachment_too_large(len(item.content)):
            rejected.append({"filename": item.filename, "size": len(item.content), "reason": "too large"})
        else:
            storable.append(item)
    channel_data = dict(inbound.channel_data)
    if rejected:
        channel_data["rejected_attachments"] = rejected
    message = insert_row(
        Message,
        ticket_id=ticket.pk,
        direction=Direction.IN,
        kind=inbound.kind,
        channel=inbound.channel,
        customer_id=customer_id,
        body_text=inbound.text or text_from_html(html),
        body_html=html,
        external_id=external_id,
        channel_data=channel_data,
        delivery_status="",
        delivery_error="",
        created_at=now,
        sent_at=inbound.sent_at,
    )
    for item in storable:
        store_attachment(
            message,
            filename=item.filename,
            content_type=item.content_type,
            content=item.content,
            content_id=item.content_id,
        )
    if ticket_created:
        changes: dict[str, Any] = {"status": [None, ticket.status], "channel": [None, ticket.channel]}
        if ticket.follow_up_of_id:
            changes["follow_up_of"] = [None, ticket.follow_up_of_id]
        happened = [(events.TICKET_CREATED, None, changes)]
    else:
        happened = _apply_customer_message(ticket, now=now)
    happened.append((events.MESSAGE_RECEIVED, message.pk, {}))
    new_events = insert_rows(
        TicketEvent,
        [
            {
                "ticket_id": ticket.pk,
                "name": name,
                "message_id": message_id,
                "changes": changes,
                "created_at": now,
            }
            for name, message_id, changes in happened
        ],
    )
    return Received(message=message, ticket=ticket, ticket_created=ticket_created), new_events


# First contact in one statement, without a savepoint: the customer and their identity. If another
# process created the identity a moment earlier, ON CONFLICT leaves ours out and the orphan customer
# row is deleted again.
_FIRST_CONTACT_SQL = """
WITH customer AS (
    INSERT INTO tickets_customer (name, locale, timezone, notes, created_at)
    VALUES (%(name)s, %(locale)s, '', '', %(now)s)
    RETURNING id
), identity AS (
    INSERT INTO tickets_identity (customer_id, channel, address, display_name, created_at)
    SELECT id, %(channel)s, %(address)s, %(name)s, %(now)s FROM customer
    ON CONFLICT (channel, address) DO NOTHING
    RETURNING customer_id
)
SELECT customer.id, identity.customer_id FROM customer LEFT JOIN identity ON true
"""


def _first_contact(inbound: InboundMessage, address: str, *, now: datetime) -> int:
    """Create the customer and their identity; on a concurrent first contact, the one that won."""
    with connection.cursor() as cursor:
        cursor.execute(
            _FIRST_CONTACT_SQL,
            {
                "name": inbound.sender_name[:200],
                "locale": inbound.sender_locale[:8],
                "channel": inbound.channel,
                "address": address,
                "now": now,
            },
        )
        created, identified = cursor.fetchone()
        if identified is not None:
            return identified
        cursor.execute("DELETE FROM tickets_customer WHERE id = %s", [created])
        cursor.execute(
            "SELECT customer_id FROM tickets_identity WHERE channel = %s AND address = %s",
            [inbound.channel, address],
        )
        return cursor.fetchone()[0]


def _locked_ticket(ticket_id: int) -> Ticket:
    return next(
        iter(Ticket.objects.raw("SELECT * FROM tickets_ticket WHERE id = %s FOR UPDATE", [ticket_id]))
    )


def _open_ticket(
    inbound: InboundMessage, customer_id: int, *, follow_up_of: Ticket | None, now: datetime
) -> Ticket:
    subject = inbound.subject or subject_from_text(inbound.text or text_from_html(inbound.html))
    if not subject and inbound.kind == MessageKind.CALL:
        subject = f"Call from {inbound.sender_address}"
    return insert_row(
        Ticket,
        returning=("number",),
        subject=subject[:255],
        status=Status.NEW,
        priority=Priority.NORMAL,
        channel=inbound.channel,
        customer_id=customer_id,
        tags=[],
        custom_fields={},
        thread_key=inbound.thread_key[:255],
        follow_up_of_id=follow_up_of.pk if follow_up_of else None,
        team_id=follow_up_of.team_id if follow_up_of else None,
        created_at=now,
        updated_at=now,
    )


def _apply_customer_message(ticket: Ticket, *, now: datetime) -> list[tuple[str, int | None, dict[str, Any]]]:
    """Expects `ticket` locked. Bumps updated_at and reopens a ticket that waited on the customer."""
    new_status = _STATUS_AFTER_CUSTOMER_MESSAGE.get(ticket.status)
    if new_status is None:
        update_row(ticket, updated_at=now)
        return []
    changes: dict[str, Any] = {"status": [ticket.status, new_status]}
    if ticket.status == Status.SOLVED:
        changes["solved_at"] = [ticket.solved_at.isoformat() if ticket.solved_at else None, None]
    update_row(ticket, updated_at=now, status=new_status, solved_at=None)
    return [(events.TICKET_UPDATED, None, changes)]


def store_envelope(
    channel: str, external_id: str, payload: bytes, *, source: dict[str, Any] | None = None
) -> tuple[InboundEnvelope, bool]:
    """Keep the raw payload before anything parses it; a resend is not stored twice.

    Returns (envelope, created).
    """
    envelope, created = InboundEnvelope.objects.get_or_create(
        channel=channel,
        external_id=fit_external_id(external_id),
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
