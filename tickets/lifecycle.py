"""Changing a ticket's fields: status, priority, assignee, team, tags, custom fields.

Every public service locks the ticket, changes the row, writes one `TicketEvent` with before → after,
and publishes it on commit. It returns the event, or None when nothing changed.

This module is also the one state machine: `next_state()` says what any happening (an agent's status
change or reply, a customer's message, a failed delivery) does to a ticket's status, for the services
here and in `tickets.replies`, and for the ingest path in `tickets.inbound`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from helpdesk import events
from tickets.exceptions import InvalidTransition, NotAnAgent, TicketClosed
from tickets.models import Status, Team, Ticket, TicketEvent, User

_UNSET: Any = object()


def update(
    ticket: Ticket,
    *,
    actor: User | None,
    status: str = _UNSET,
    priority: str = _UNSET,
    assignee: User | None = _UNSET,
    team: Team | None = _UNSET,
    tags: list[str] = _UNSET,
    subject: str = _UNSET,
    custom_fields: dict[str, Any] = _UNSET,
) -> TicketEvent | None:
    """Apply any of the given field changes at once; one `ticket.updated` event lists them all."""
    with transaction.atomic():
        locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
        was_closed = locked.status == Status.CLOSED
        now = timezone.now()
        changes: dict[str, list[Any]] = {}
        if status is not _UNSET:
            changes.update(apply(locked, Happening.STATUS_SET, now=now, status=status).changes)
        if priority is not _UNSET and priority != locked.priority:
            changes["priority"] = [locked.priority, priority]
            locked.priority = priority
        if assignee is not _UNSET and assignee != locked.assignee:
            if assignee is not None and not assignee.is_agent:
                raise NotAnAgent(f"{assignee} cannot be assigned tickets")
            changes["assignee"] = [locked.assignee_id, assignee.pk if assignee else None]
            locked.assignee = assignee
        if team is not _UNSET and team != locked.team:
            changes["team"] = [locked.team_id, team.pk if team else None]
            locked.team = team
        if tags is not _UNSET:
            normalized = normalize_tags(tags)
            if normalized != locked.tags:
                changes["tags"] = [locked.tags, normalized]
                locked.tags = normalized
        if subject is not _UNSET and subject != locked.subject:
            changes["subject"] = [locked.subject, subject]
            locked.subject = subject
        if custom_fields is not _UNSET and custom_fields != locked.custom_fields:
            changes["custom_fields"] = [locked.custom_fields, custom_fields]
            locked.custom_fields = custom_fields
        if not changes:
            return None
        if was_closed:
            raise TicketClosed("A closed ticket cannot change; a new message starts a follow-up ticket")
        locked.updated_at = now
        locked.save()
        event = TicketEvent.objects.create(
            ticket=locked, name=events.TICKET_UPDATED, actor=actor, changes=changes, created_at=now
        )
        events.publish_on_commit([event])
    if ticket is not locked:
        ticket.refresh_from_db()
    return event


def change_status(ticket: Ticket, *, status: str, actor: User | None) -> TicketEvent | None:
    return update(ticket, actor=actor, status=status)


def assign(ticket: Ticket, *, agent: User | None, actor: User | None) -> TicketEvent | None:
    return update(ticket, actor=actor, assignee=agent)


def normalize_tags(tags: list[str]) -> list[str]:
    """Tags are lower-case words without spaces, each once, sorted (as in Zendesk)."""
    return sorted({"_".join(tag.strip().lower().split()) for tag in tags if tag and tag.strip()})


class Happening(enum.Enum):
    """What happened to a ticket, whoever caused it."""

    STATUS_SET = "status set"  # an agent (or, later, a rule) sets the status
    AGENT_REPLY = "agent reply"  # a public answer, with or without a status asked for
    CUSTOMER_MESSAGE = "customer message"
    DELIVERY_FAILED = "delivery failed"  # an answer could not be delivered, for good


@dataclass(frozen=True, slots=True)
class TicketState:
    status: str
    solved_at: datetime | None = None
    closed_at: datetime | None = None

    @classmethod
    def of(cls, ticket: Ticket) -> TicketState:
        return cls(ticket.status, ticket.solved_at, ticket.closed_at)


@dataclass(frozen=True, slots=True)
class Transition:
    state: TicketState  # after the happening
    changes: dict[str, list[Any]] = field(default_factory=dict)  # before → after, for the ticket's event
    follow_up: bool = False  # the ticket is closed: the message opens a follow-up ticket instead


# A customer writing means the ticket waits on us again; so does an answer that never reached them.
_REOPENED_BY = {
    Happening.CUSTOMER_MESSAGE: {Status.PENDING, Status.ON_HOLD, Status.SOLVED},
    Happening.DELIVERY_FAILED: {Status.PENDING, Status.SOLVED},
}


def next_state(
    current: TicketState, happened: Happening, *, now: datetime, status: str | None = None
) -> Transition:
    """Pure: the ticket's state after `happened`. `status` is the status asked for (STATUS_SET, and
    optionally AGENT_REPLY). Raises InvalidTransition (or TicketClosed) for what may not happen."""
    if happened is Happening.CUSTOMER_MESSAGE and current.status == Status.CLOSED:
        return Transition(current, follow_up=True)
    if happened in _REOPENED_BY:
        if current.status in _REOPENED_BY[happened]:
            return _moved(current, Status.OPEN, now=now)
        return Transition(current)
    if happened is Happening.AGENT_REPLY:
        if current.status == Status.CLOSED:
            raise TicketClosed()
        if status is None:
            # Answering a new ticket opens it; otherwise an answer leaves the status as it is.
            return (
                _moved(current, Status.OPEN, now=now) if current.status == Status.NEW else Transition(current)
            )
    if status is None:
        raise InvalidTransition("No status was given")
    return _moved(current, status, now=now)


def _moved(current: TicketState, status: str, *, now: datetime) -> Transition:
    """Move to `status`, keeping solved_at/closed_at true to it."""
    if status == current.status:
        return Transition(current)
    if current.status == Status.CLOSED:
        raise InvalidTransition("A closed ticket cannot change; a new message starts a follow-up ticket")
    if status not in Status.values:
        raise InvalidTransition(f"No such status: {status}")
    if status == Status.NEW:
        raise InvalidTransition("A ticket cannot go back to new")
    changes: dict[str, list[Any]] = {"status": [current.status, status]}
    solved_at, closed_at = current.solved_at, current.closed_at
    if status == Status.SOLVED:
        solved_at = now
        changes["solved_at"] = [_iso(current.solved_at), now.isoformat()]
    elif current.status == Status.SOLVED and status != Status.CLOSED:
        solved_at = None
        changes["solved_at"] = [_iso(current.solved_at), None]
    if status == Status.CLOSED:
        closed_at = now
        solved_at = solved_at or now
    return Transition(TicketState(status, solved_at, closed_at), changes)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def apply(ticket: Ticket, happened: Happening, *, now: datetime, status: str | None = None) -> Transition:
    """Expects `ticket` locked. Sets the state `next_state()` gives on the instance (the caller saves)."""
    transition = next_state(TicketState.of(ticket), happened, now=now, status=status)
    ticket.status, ticket.solved_at, ticket.closed_at = (
        transition.state.status,
        transition.state.solved_at,
        transition.state.closed_at,
    )
    return transition
