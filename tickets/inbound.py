"""The one way a customer's message gets in: `receive(InboundMessage)`.

Channel views and pollers first store the raw payload with `store_envelope()`, then call
`process_envelope()`, which parses it with the channel's parser and calls `receive()`. A failure
leaves the envelope `failed` with its error; it is tried again automatically with backoff
(ENVELOPE_RETRY_BACKOFF, by the beat task `retry_due_envelopes`) and can be replayed by hand at any time
with `manage.py replay_envelopes` or the admin action.
"""

from __future__ import annotations

import hashlib
import logging
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import Error, IntegrityError, connection, transaction
from django.utils import timezone

from helpdesk import events
from helpdesk.sqlstate import connection_failed
from tickets import lifecycle
from tickets.channels import InboundMessage, parser_for
from tickets.content import (
    attachment_too_large,
    is_storable,
    keep_original_html,
    message_body,
    storable_json,
    storable_message,
    store_attachment,
    subject_from_text,
    text_from_html,
)
from tickets.identities import normalize_address
from tickets.lifecycle import Happening, TicketState, Transition
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
from tickets.rows import (
    Inserted,
    NewId,
    Prepared,
    Writes,
    columns,
    insert_unless_exists,
    load,
    out_of_step,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Received:
    message: Message
    ticket: Ticket
    duplicate: bool = False
    ticket_created: bool = False


def receive(inbound: InboundMessage) -> Received:
    """Store one inbound message on the right ticket, idempotently, and publish its events on commit.

    The same (channel, external_id) twice gives back the first message and changes nothing.
    This is the ingest hot path: one statement finds everything, one writes everything (tickets.rows).
    """
    # What the database cannot store (NUL, unpaired surrogates) is replaced once, here, for every channel.
    inbound = storable_message(inbound)
    address = normalize_address(inbound.channel, inbound.sender_address)
    external_id = fit_external_id(inbound.external_id)
    own_transaction = not connection.in_atomic_block
    for pause in _RECONNECT_PAUSES:
        try:
            return _receive_once(inbound, address, external_id)
        except Error as error:
            # Running the transaction again is safe: it rolled back, or it committed and the rerun finds
            # the message stored. Reasons that are no fault of the message:
            # - IntegrityError: another process stored the same message, or an identity of this sender,
            #   between our lookup and our write (an agent adding an identity takes no sender lock);
            # - the session's prepared statements were not the ones remembered (a pooler, tickets.rows);
            # - the connection was lost (a pooler or the server restarting), unless a caller's
            #   transaction went with it.
            if isinstance(error, IntegrityError) or out_of_step(error):
                continue
            if not (own_transaction and connection_failed(error)):
                raise
            time.sleep(pause)
            if connection.connection is not None and not connection.is_usable():
                connection.close()  # Django kept the broken one: the next attempt opens a new one
    return _receive_once(inbound, address, external_id)


# Pauses before each rerun after a lost connection: about a second and a half for a pooler or the server
# to come back, after which the error is the caller's (an envelope then waits for its replay).
_RECONNECT_PAUSES = (0.05, 0.25, 1.0)


def fit_external_id(external_id: str) -> str:
    """The channel's id as stored: ids longer than the column, or with characters PostgreSQL cannot store
    (NUL, unpaired surrogates), are replaced by their SHA-256, so two different ids never become one."""
    if len(external_id) <= 255 and is_storable(external_id):
        return external_id
    return "sha256:" + hashlib.sha256(external_id.encode("utf-8", "surrogatepass")).hexdigest()


def _receive_once(inbound: InboundMessage, address: str, external_id: str) -> Received:
    with transaction.atomic():
        found = _look_up(inbound, address, external_id)
        if found.duplicate_id is not None:
            return _duplicate(found.duplicate_id)
        received, new_events = _store(inbound, address, external_id, found)
        events.publish_on_commit(new_events)
    return received


@dataclass(frozen=True, slots=True)
class _Found:
    duplicate_id: int | None
    customer_id: int | None
    ticket: Ticket | None  # locked until the transaction ends


# One round trip. It first takes the sender's lock, so one sender's messages thread one at a time
# (two first messages open one ticket); then the lookup, with a snapshot taken after the lock,
# finds whether it is a duplicate, who sent it, and the ticket it continues, and locks that ticket.
# Ticket order: an earlier message of this customer's that it references (email In-Reply-To/References),
# then the channel's conversation key, then, only for a message with neither (and not flagged new), the
# customer's latest ticket on the channel, preferring one that is not closed.
# Each step starts from its own index and only then compares the customer, so the generic plan (below)
# stays cheap for a customer with thousands of tickets.
#
# Generic plans for this transaction's prepared statements: PostgreSQL would re-plan the lookup for every
# message (its custom plans look cheaper), and bench/big_customer.py shows the generic plan as fast for
# ordinary customers as for one with 300,000 tickets.
SENDER_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0));"
_BEFORE_LOOK_UP_SQL = "SET LOCAL plan_cache_mode = force_generic_plan; " + SENDER_LOCK_SQL
_LOOK_UP = Prepared(f"""
WITH duplicate AS (
    SELECT id FROM tickets_message
     WHERE channel = %(channel)s AND external_id = %(external_id)s AND direction = 'in'
), sender AS (
    SELECT customer_id FROM tickets_identity WHERE channel = %(channel)s AND address = %(address)s
), keyed AS MATERIALIZED (
    -- Materialized: found by the key alone, then matched to the sender. Scanning the key index and the
    -- customer's index together costs as much as the customer has tickets.
    SELECT id, customer_id FROM tickets_ticket
     WHERE %(thread_key)s <> '' AND channel = %(channel)s AND thread_key = %(thread_key)s AND thread_key <> ''
), thread AS (
    SELECT COALESCE(
        (SELECT message.ticket_id FROM tickets_message message
          WHERE message.channel = %(channel)s AND message.external_id = ANY(%(in_reply_to)s::varchar[])
            AND (SELECT customer_id FROM tickets_ticket WHERE id = message.ticket_id)
                = (SELECT customer_id FROM sender)
          ORDER BY message.created_at DESC LIMIT 1),
        (SELECT id FROM keyed WHERE customer_id = (SELECT customer_id FROM sender) ORDER BY id DESC LIMIT 1),
        (SELECT id FROM tickets_ticket
          WHERE %(join_latest)s AND channel = %(channel)s AND customer_id = (SELECT customer_id FROM sender)
          ORDER BY status = 'closed', updated_at DESC LIMIT 1)
    ) AS ticket_id
), target AS (
    -- A resend changes nothing, so it takes no ticket lock (it would wait behind an agent's edit).
    SELECT * FROM tickets_ticket
     WHERE id = (SELECT ticket_id FROM thread) AND NOT EXISTS (SELECT FROM duplicate)
    FOR UPDATE
)
SELECT
    (SELECT id FROM duplicate),
    (SELECT customer_id FROM sender),
    {columns(Ticket, "target")}
FROM (SELECT) always LEFT JOIN target ON true
""")  # noqa: S608 (column names from model metadata)

# A closed ticket's open follow-up takes the message rather than yet another follow-up. Run under the
# closed ticket's lock, with a snapshot taken after it: a follow-up that another address of the same
# customer opened while we waited for that lock is seen.
_OPEN_FOLLOW_UP = Prepared(f"""
SELECT {columns(Ticket, "ticket")} FROM tickets_ticket ticket
WHERE follow_up_of_id = %s AND status <> 'closed' ORDER BY id DESC LIMIT 1 FOR UPDATE
""")  # noqa: S608 (column names from model metadata)


def _look_up(inbound: InboundMessage, address: str, external_id: str) -> _Found:
    explicit = bool(inbound.in_reply_to or inbound.thread_key or inbound.new_conversation)
    with connection.cursor() as cursor:
        _LOOK_UP.execute(
            cursor,
            {
                "channel": inbound.channel,
                "address": address,
                "external_id": external_id,
                "in_reply_to": [fit_external_id(ref) for ref in inbound.in_reply_to if ref],
                "thread_key": inbound.thread_key,
                "join_latest": not explicit,
            },
            before=_BEFORE_LOOK_UP_SQL,
            before_params=(f"{inbound.channel}:{address}",),
        )
        duplicate_id, customer_id, *ticket_row = cursor.fetchone()
    ticket = None
    if ticket_row[0] is not None:
        ticket = load(Ticket, ticket_row)
    return _Found(duplicate_id, customer_id, ticket)


_DUPLICATE = Prepared(f"""
SELECT {columns(Message, "message")}, {columns(Ticket, "ticket")}
FROM tickets_message message JOIN tickets_ticket ticket ON ticket.id = message.ticket_id
WHERE message.id = %s
""")  # noqa: S608 (column names from model metadata)


def _duplicate(message_id: int) -> Received:
    with connection.cursor() as cursor:
        _DUPLICATE.execute(cursor, [message_id])
        row = cursor.fetchone()
    message_width = len(Message._meta.concrete_fields)
    message, ticket = load(Message, row[:message_width]), load(Ticket, row[message_width:])
    message.ticket = ticket
    return Received(message=message, ticket=ticket, duplicate=True)


def _store(
    inbound: InboundMessage, address: str, external_id: str, found: _Found
) -> tuple[Received, list[TicketEvent]]:
    """Runs inside receive()'s transaction, under the sender's lock and the lock of the ticket found.

    Every row goes in with one statement; attachments follow (each has its file to store).
    """
    now = timezone.now()
    writes = Writes()
    if found.customer_id is not None:
        customer_id: int | NewId = found.customer_id
    else:
        customer_id = _first_contact(writes, inbound, address, now=now)
    ticket = found.ticket
    transition = None
    if ticket is not None:
        transition = lifecycle.next_state(TicketState.of(ticket), Happening.CUSTOMER_MESSAGE, now=now)
        follow_up = _open_follow_up(ticket) if transition.follow_up else None
        if follow_up is not None:
            ticket = follow_up
            transition = lifecycle.next_state(TicketState.of(ticket), Happening.CUSTOMER_MESSAGE, now=now)
    ticket_created = transition is None or transition.follow_up
    if ticket_created:
        new_ticket = _open_ticket(writes, inbound, customer_id, follow_up_of=ticket, now=now)
        ticket_id: int | NewId = new_ticket.id
        changes: dict[str, Any] = {"status": [None, Status.NEW], "channel": [None, inbound.channel]}
        if ticket is not None:
            changes["follow_up_of"] = [None, ticket.pk]
        happened = [(events.TICKET_CREATED, changes)]
    else:
        ticket_id = ticket.pk
        happened = _apply_customer_message(writes, ticket, transition, now=now)
    body = message_body(text=inbound.text, html=inbound.html)
    storable, rejected = [], []
    for item in inbound.attachments:
        if attachment_too_large(len(item.content)):
            rejected.append({"filename": item.filename, "size": len(item.content), "reason": "too large"})
        else:
            storable.append(item)
    channel_data = dict(inbound.channel_data)
    if rejected:
        channel_data["rejected_attachments"] = rejected
    if body.note:
        channel_data["content_note"] = body.note
    message = writes.insert(
        [
            Message(
                ticket_id=ticket_id,
                direction=Direction.IN,
                kind=inbound.kind,
                channel=inbound.channel,
                customer_id=customer_id,
                body_text=body.text,
                body_html=body.html,
                external_id=external_id,
                channel_data=channel_data,
                created_at=now,
                sent_at=inbound.sent_at,
            )
        ]
    )
    happened.append((events.MESSAGE_RECEIVED, {}))
    new_events = writes.insert(
        [
            TicketEvent(
                ticket_id=ticket_id,
                name=name,
                message_id=message.id if name == events.MESSAGE_RECEIVED else None,
                changes=what_changed,
                created_at=now,
            )
            for name, what_changed in happened
        ]
    )
    writes.execute()
    if ticket_created:
        ticket = new_ticket.instance
    for item in storable:
        store_attachment(
            message.instance,
            filename=item.filename,
            content_type=item.content_type,
            content=item.content,
            content_id=item.content_id,
        )
    keep_original_html(message.instance, body)
    received = Received(message=message.instance, ticket=ticket, ticket_created=ticket_created)
    return received, new_events.instances


def _open_follow_up(closed: Ticket) -> Ticket | None:
    with connection.cursor() as cursor:
        _OPEN_FOLLOW_UP.execute(cursor, [closed.pk])
        row = cursor.fetchone()
    return load(Ticket, row) if row else None


def _first_contact(writes: Writes, inbound: InboundMessage, address: str, *, now: datetime) -> NewId:
    """The new customer and their identity. Should another process add this identity first, the
    statement fails on the unique (channel, address) and receive() looks again."""
    customer = writes.insert(
        [Customer(name=inbound.sender_name[:200], locale=inbound.sender_locale[:8], created_at=now)]
    )
    writes.insert(
        [
            Identity(
                customer_id=customer.id,
                channel=inbound.channel,
                address=address,
                display_name=inbound.sender_name[:200],
                created_at=now,
            )
        ]
    )
    return customer.id


def _open_ticket(
    writes: Writes,
    inbound: InboundMessage,
    customer_id: int | NewId,
    *,
    follow_up_of: Ticket | None,
    now: datetime,
) -> Inserted[Ticket]:
    subject = inbound.subject or subject_from_text(inbound.text or text_from_html(inbound.html))
    if not subject and inbound.kind == MessageKind.CALL:
        subject = f"Call from {inbound.sender_address}"
    return writes.insert(
        [
            Ticket(
                subject=subject[:255],
                channel=inbound.channel,
                customer_id=customer_id,
                thread_key=inbound.thread_key[:255],
                follow_up_of_id=follow_up_of.pk if follow_up_of else None,
                team_id=follow_up_of.team_id if follow_up_of else None,
                created_at=now,
                updated_at=now,
            )
        ],
        returning=("number",),
    )


def _apply_customer_message(
    writes: Writes, ticket: Ticket, transition: Transition, *, now: datetime
) -> list[tuple[str, dict[str, Any]]]:
    """Expects `ticket` locked. Bumps updated_at and applies the lifecycle's transition (a reopen)."""
    if not transition.changes:
        writes.update(ticket, updated_at=now)
        return []
    after = transition.state
    writes.update(ticket, updated_at=now, status=after.status, solved_at=after.solved_at)
    return [(events.TICKET_UPDATED, transition.changes)]


def store_envelope(
    channel: str, external_id: str, payload: bytes, *, source: dict[str, Any] | None = None
) -> tuple[InboundEnvelope, bool]:
    """Keep the raw payload before anything parses it; a resend is not stored twice.

    Returns (envelope, created).
    """
    envelope = InboundEnvelope(
        channel=channel,
        external_id=fit_external_id(external_id),
        payload=payload,
        source=storable_json(source or {}),
    )
    if insert_unless_exists(envelope, unique=("channel", "external_id")):
        return envelope, True
    return InboundEnvelope.objects.get(channel=channel, external_id=envelope.external_id), False


def process_envelope(envelope: InboundEnvelope) -> InboundEnvelope:
    """Parse and receive a stored payload. Never raises: a failure is recorded on the envelope for replay."""
    if envelope.status in (EnvelopeStatus.PROCESSED, EnvelopeStatus.IGNORED):
        return envelope
    outcome: dict[str, Any] = {"attempts": envelope.attempts + 1}
    message = None
    try:
        parse = parser_for(envelope.channel)
        inbound = parse(bytes(envelope.payload), envelope.source)
        if inbound is None:
            outcome["status"] = EnvelopeStatus.IGNORED
        else:
            message = receive(inbound).message
            outcome.update(status=EnvelopeStatus.PROCESSED, message_id=message.pk)
        outcome.update(error="", processed_at=timezone.now(), next_attempt_at=None)
    except Exception:
        logger.exception("Inbound envelope %s failed; kept for replay", envelope.pk)
        outcome.update(
            status=EnvelopeStatus.FAILED,
            error=traceback.format_exc(limit=8)[-4000:],
            next_attempt_at=next_envelope_attempt(outcome["attempts"]),
        )
    # A prepared UPDATE (tickets.rows): this runs once per inbound message, on the hot path.
    writes = Writes()
    writes.update(envelope, **outcome)
    writes.execute()
    if message is not None:
        envelope.message = message
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


# Waits before the automatic tries after a failed one: 1, 5 and 30 minutes, then every 6 hours. After the
# last the envelope stays failed (counted on /healthz) until someone replays it.
ENVELOPE_RETRY_BACKOFF = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    *[timedelta(hours=6)] * 4,
)
# A claimed retry not finished by then (its worker died) is due again.
ENVELOPE_RETRY_LEASE = timedelta(minutes=10)


def next_envelope_attempt(attempts: int) -> datetime | None:
    """When to try an envelope again after its `attempts`-th try failed; None once the tries are spent."""
    if attempts > len(ENVELOPE_RETRY_BACKOFF):
        return None
    return timezone.now() + ENVELOPE_RETRY_BACKOFF[attempts - 1]


def retry_due_envelopes(*, now: datetime | None = None, limit: int = 100) -> list[InboundEnvelope]:
    """Try again each failed envelope whose time has come, oldest due first.

    Each is claimed by a conditional update (its next try moved a lease ahead) before it is processed, so
    overlapping sweeps never process one envelope twice at once.
    """
    now = now or timezone.now()
    due = InboundEnvelope.objects.filter(status=EnvelopeStatus.FAILED, next_attempt_at__lte=now)
    done = []
    for envelope_id in due.order_by("next_attempt_at").values_list("id", flat=True)[:limit]:
        claimed = due.filter(pk=envelope_id).update(next_attempt_at=now + ENVELOPE_RETRY_LEASE)
        if claimed:
            done.append(process_envelope(InboundEnvelope.objects.get(pk=envelope_id)))
    return done


def stuck_envelope_ids(*, older_than: timedelta) -> list[int]:
    """Pending envelopes that nobody finished: their process died between storing and processing."""
    cutoff = timezone.now() - older_than
    pending = InboundEnvelope.objects.filter(status=EnvelopeStatus.PENDING, received_at__lt=cutoff)
    return list(pending.order_by("received_at").values_list("id", flat=True)[:1000])
