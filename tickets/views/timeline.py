"""What the ticket page's timeline shows: messages and the field changes between them, in time order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape
from html.parser import HTMLParser
from typing import Any

from django.utils.translation import gettext as _

from helpdesk import events
from tickets.content import REMOTE_SRC_ATTRIBUTE
from tickets.models import Message, Priority, Status, Team, Ticket, TicketEvent, User


@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class SystemLine:
    """One muted line for a `ticket.updated` event: who changed which fields."""

    actor: User | None
    created_at: datetime
    changes: list[FieldChange]


def timeline_entries(ticket: Ticket) -> list[Message | SystemLine]:
    """Messages and field changes of a ticket from `selectors.ticket_detail`, oldest first.

    Names of the people and teams in the changes come in two queries, whatever the number of events.
    """
    updates = [event for event in ticket.audit_trail if event.name == events.TICKET_UPDATED]
    user_ids, team_ids = set(), set()
    for event in updates:
        user_ids.update(value for value in event.changes.get("assignee", []) if value)
        team_ids.update(value for value in event.changes.get("team", []) if value)
    people = User.objects.in_bulk(user_ids) if user_ids else {}
    teams = Team.objects.in_bulk(team_ids) if team_ids else {}
    lines = [
        SystemLine(event.actor, event.created_at, changes)
        for event in updates
        if (changes := _described(event, people, teams))
    ]
    return sorted([*ticket.timeline, *lines], key=lambda entry: entry.created_at)


def _described(event: TicketEvent, people: dict[int, User], teams: dict[int, Team]) -> list[FieldChange]:
    described = []
    for field, (before, after) in event.changes.items():
        if field == "status":
            described.append(FieldChange(_("Status"), _label(Status, before), _label(Status, after)))
        elif field == "priority":
            described.append(FieldChange(_("Priority"), _label(Priority, before), _label(Priority, after)))
        elif field == "assignee":
            described.append(FieldChange(_("Assignee"), _person(people, before), _person(people, after)))
        elif field == "team":
            described.append(FieldChange(_("Team"), _team(teams, before), _team(teams, after)))
        elif field == "tags":
            described.append(FieldChange(_("Tags"), ", ".join(before) or "—", ", ".join(after) or "—"))
        elif field == "subject":
            described.append(FieldChange(_("Subject"), before or "—", after or "—"))
    return described


def _label(choices: Any, value: str | None) -> str:
    return str(choices(value).label) if value in choices.values else value or "—"


def _person(people: dict[int, User], user_id: int | None) -> str:
    user = people.get(user_id) if user_id else None
    if user is None:
        return _("Unassigned") if user_id is None else "—"
    return user.get_full_name() or user.username


def _team(teams: dict[int, Team], team_id: int | None) -> str:
    team = teams.get(team_id) if team_id else None
    return team.name if team else _("No team")


class _RemoteImageBlocker(HTMLParser):
    """Re-emits sanitized HTML with each remote image's address moved from `src` to data-remote-src.

    The input is nh3's output (well-formed, attributes quoted); so is what comes out. tickets.content marks
    remote images itself when it stores a message; messages stored before it did still carry `src`, and
    this pass keeps their tracking pixels from loading too. Already marked HTML passes through unchanged.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.parts: list[str] = []

    def _tag(self, tag: str, attrs: list[tuple[str, str | None]], closing: str) -> str:
        if tag == "img":
            rewritten = []
            for name, value in attrs:
                if name == "src" and _is_remote(value or ""):
                    name, value = REMOTE_SRC_ATTRIBUTE, _absolute(value or "")
                rewritten.append((name, value))
            attrs = rewritten
        rendered = "".join(
            f' {name}="{escape(value, quote=True)}"' if value is not None else f" {name}"
            for name, value in attrs
        )
        return f"<{tag}{rendered}{closing}>"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.parts.append(self._tag(tag, attrs, ""))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.parts.append(self._tag(tag, attrs, " /"))

    def handle_endtag(self, tag: str) -> None:
        self.parts.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_entityref(self, name: str) -> None:
        self.parts.append(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self.parts.append(f"&#{name};")


def _is_remote(source: str) -> bool:
    return source.strip().lower().startswith(("http://", "https://", "//"))


def _absolute(source: str) -> str:
    source = source.strip()
    return "https:" + source if source.startswith("//") else source


@dataclass(frozen=True, slots=True)
class MessageHtml:
    html: str
    remote_images: int  # images that load only when the agent asks


def without_remote_images(sanitized_html: str) -> MessageHtml:
    """Sanitized HTML whose remote images wait for "Show images" (their address kept in data-remote-src)."""
    blocker = _RemoteImageBlocker()
    blocker.feed(sanitized_html)
    blocker.close()
    # Counted after the rewrite, so images the content pipeline already marked count too.
    waiting = sum(
        1 for part in blocker.parts if part.startswith("<img") and f" {REMOTE_SRC_ATTRIBUTE}=" in part
    )
    return MessageHtml("".join(blocker.parts), waiting)
