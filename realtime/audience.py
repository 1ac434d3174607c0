"""Who hears an event: channel-layer group names for sockets and for ticket events.

The groups mirror `tickets.selectors.tickets_visible_to`: supervisors and admins hear every ticket; an agent
hears the tickets of their teams, the tickets assigned to them and the unrouted ones. An event goes to the
groups of its ticket as it is now and as it was before the event (a ticket moved away from a team is news to
that team), so each socket hears exactly the events of tickets its agent may see.
"""

from __future__ import annotations

from collections.abc import Iterable

from tickets.models import User

EVERY_TICKET = "tickets.all"
UNROUTED_TICKETS = "tickets.unrouted"


def team_group(team_id: int) -> str:
    return f"tickets.team.{team_id}"


def assignee_group(user_id: int) -> str:
    return f"tickets.assignee.{user_id}"


def ticket_group(ticket_id: int) -> str:
    return f"tickets.ticket.{ticket_id}"


def groups_for_agent(agent: User) -> list[str]:
    """The groups of an agent's socket on every ticket they may see (one query for the teams)."""
    if agent.sees_all_tickets:
        return [EVERY_TICKET]
    teams = agent.teams.order_by("id").values_list("id", flat=True)
    return [UNROUTED_TICKETS, assignee_group(agent.pk), *(team_group(team_id) for team_id in teams)]


def groups_for_event(
    ticket_id: int, *, team_ids: Iterable[int | None], assignee_ids: Iterable[int | None]
) -> set[str]:
    """The groups that hear an event on this ticket, given its teams and assignees before and after."""
    groups = {EVERY_TICKET, ticket_group(ticket_id)}
    groups.update(UNROUTED_TICKETS if team_id is None else team_group(team_id) for team_id in team_ids)
    groups.update(assignee_group(user_id) for user_id in assignee_ids if user_id is not None)
    return groups
