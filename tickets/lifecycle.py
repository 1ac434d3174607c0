"""Changing a ticket's fields: status, priority, assignee, team, tags, custom fields.

Every public service locks the ticket, changes the row, writes one `TicketEvent` with before → after,
and publishes it on commit. It returns the event, or None when nothing changed.
"""

from __future__ import annotations

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
            changes.update(move_status(locked, status, now=now))
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


def move_status(ticket: Ticket, status: str, *, now: datetime) -> dict[str, list[Any]]:
    """Expects `ticket` locked. Moves it to `status`, keeping solved_at/closed_at true to the status."""
    if status == ticket.status:
        return {}
    if ticket.status == Status.CLOSED:
        raise InvalidTransition("A closed ticket cannot change; a new message starts a follow-up ticket")
    if status == Status.NEW:
        raise InvalidTransition("A ticket cannot go back to new")
    changes: dict[str, list[Any]] = {"status": [ticket.status, status]}
    if status == Status.SOLVED:
        ticket.solved_at = now
        changes["solved_at"] = [None, now.isoformat()]
    elif ticket.status == Status.SOLVED and status != Status.CLOSED:
        changes["solved_at"] = [ticket.solved_at.isoformat() if ticket.solved_at else None, None]
        ticket.solved_at = None
    if status == Status.CLOSED:
        ticket.closed_at = now
        if ticket.solved_at is None:
            ticket.solved_at = now
    ticket.status = status
    return changes
