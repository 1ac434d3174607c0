"""Reads. Every fetch by id from a request goes through one of these; missing and forbidden: the same 404."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Left
from django.http import Http404
from django.utils import timezone

from tickets import search
from tickets.models import (
    Attachment,
    Customer,
    Message,
    MessageKind,
    Priority,
    Status,
    Team,
    Ticket,
    TicketEvent,
    User,
)
from tickets.models.ticket import ACTIVE_STATUSES
from tickets.search import SearchPosition


def tickets_visible_to(agent: User) -> QuerySet[Ticket]:
    """Supervisors and admins see every ticket; agents their teams' tickets, their own, and unrouted ones."""
    if not agent.is_authenticated or not agent.is_agent:
        return Ticket.objects.none()
    tickets = Ticket.objects.all()
    if agent.sees_all_tickets:
        return tickets
    team_ids = list(agent.teams.values_list("id", flat=True))
    return tickets.filter(Q(team_id__in=team_ids) | Q(assignee=agent) | Q(team__isnull=True))


def open_tickets_by_channel(agent: User) -> dict[str, int]:
    """Open (not yet solved) tickets the agent can see, counted per channel in one query.

    Scoped like the inbox, so a customer or a visitor counts nothing.
    """
    counted = (
        tickets_visible_to(agent)
        .filter(status__in=ACTIVE_STATUSES)
        .order_by()
        .values_list("channel")
        .annotate(open_tickets=Count("id"))
    )
    return dict(counted)


def ticket_inbox(agent: User) -> QuerySet[Ticket]:
    """The ticket list: the visible tickets with everything a row shows, in a fixed number of queries."""
    return tickets_visible_to(agent).select_related("customer", "assignee", "team").only(*_INBOX_COLUMNS)


# --- the workspace's ticket list: views, their counts, keyset pages ---

# Until SLA due times exist, a ticket waiting on us this long since its last change is at risk.
AT_RISK_AFTER = timedelta(hours=4)
# "Solved recently": solved within this long.
RECENTLY_SOLVED = timedelta(days=7)
WAITING_ON_US = (Status.NEW, Status.OPEN)


def inbox_view_filter(agent: User, view: str, *, now: datetime) -> Q:
    """Which tickets a view of the left rail holds ("mine", "unassigned", …; "all" holds every one)."""
    views = {
        "mine": Q(assignee=agent, status__in=ACTIVE_STATUSES),
        "unassigned": Q(assignee__isnull=True, status__in=ACTIVE_STATUSES),
        "urgent": Q(status__in=WAITING_ON_US)
        & (Q(priority=Priority.URGENT) | Q(updated_at__lt=now - AT_RISK_AFTER)),
        "waiting": Q(status=Status.PENDING),
        "solved": Q(status=Status.SOLVED, solved_at__gte=now - RECENTLY_SOLVED),
        "open": Q(status__in=ACTIVE_STATUSES),
        "all": Q(),
    }
    return views[view]


def inbox_view_oldest_first(view: str) -> bool:
    """At-risk tickets come oldest first (the longest waiting on top); every other view newest first."""
    return view == "urgent"


@dataclass(frozen=True, slots=True)
class InboxCounts:
    views: dict[str, int]
    teams: list[tuple[Team, int]]  # open tickets per team the agent may see
    channels: dict[str, int]  # open tickets per channel


def inbox_counts(agent: User, *, now: datetime | None = None) -> InboxCounts:
    """The left rail's counts, in three queries whatever the number of tickets, teams or channels."""
    now = now or timezone.now()
    visible = tickets_visible_to(agent).order_by()
    views = visible.aggregate(
        **{
            view: Count("id", filter=inbox_view_filter(agent, view, now=now))
            for view in ("mine", "unassigned", "urgent", "waiting", "solved")
        }
    )
    per_team = dict(
        visible.filter(status__in=ACTIVE_STATUSES, team__isnull=False)
        .values_list("team")
        .annotate(open_tickets=Count("id"))
    )
    teams = Team.objects.all() if agent.sees_all_tickets else agent.teams.all()
    return InboxCounts(
        views=views,
        teams=[(team, per_team.get(team.pk, 0)) for team in teams.order_by("name")],
        channels=open_tickets_by_channel(agent),
    )


def ticket_list(agent: User, *, view: str, now: datetime | None = None) -> QuerySet[Ticket]:
    """One view of the inbox, each row with a one-line snippet of its latest message, in its page order."""
    now = now or timezone.now()
    latest_message = (
        Message.objects.filter(ticket=OuterRef("pk"))
        .exclude(kind=MessageKind.SYSTEM)
        .order_by("-created_at", "-id")
        .values("body_text")[:1]
    )
    tickets = ticket_inbox(agent).filter(inbox_view_filter(agent, view, now=now))
    tickets = tickets.annotate(snippet=Left(Subquery(latest_message), 200))
    if inbox_view_oldest_first(view):
        return tickets.order_by("updated_at", "id")
    return tickets.order_by("-updated_at", "-id")


def filter_tickets(
    agent: User,
    tickets: QuerySet[Ticket],
    *,
    status: list[str] = (),
    priority: list[str] = (),
    channel: list[str] = (),
    team: int | None = None,
    assignee: str = "",
    tag: str = "",
    customer: int | None = None,
) -> QuerySet[Ticket]:
    """Narrow a list by the filters the workspace keeps in its URL (the API's filters, same meanings)."""
    if status:
        tickets = tickets.filter(status__in=status)
    if priority:
        tickets = tickets.filter(priority__in=priority)
    if channel:
        tickets = tickets.filter(channel__in=channel)
    if team is not None:
        tickets = tickets.filter(team_id=team)
    if assignee == "me":
        tickets = tickets.filter(assignee=agent)
    elif assignee == "none":
        tickets = tickets.filter(assignee__isnull=True)
    elif assignee:
        tickets = tickets.filter(assignee_id=int(assignee))
    if tag:
        tickets = tickets.filter(tags__contains=[tag])
    if customer is not None:
        tickets = tickets.filter(customer_id=customer)
    return tickets


def ticket_page(
    tickets: QuerySet[Ticket], *, after: tuple[datetime, int] | None, size: int
) -> tuple[list[Ticket], bool]:
    """A keyset page of `tickets` (ordered by updated_at, id either way): the rows after the (updated_at, id)
    of the previous page's last row, and whether more follow. As fast at any depth as on the first page."""
    if after is not None:
        updated_at, ticket_id = after
        descending = tickets.query.order_by[0].startswith("-")
        if descending:
            keyset = Q(updated_at__lt=updated_at) | Q(updated_at=updated_at, id__lt=ticket_id)
        else:
            keyset = Q(updated_at__gt=updated_at) | Q(updated_at=updated_at, id__gt=ticket_id)
        tickets = tickets.filter(keyset)
    rows = list(tickets[: size + 1])
    return rows[:size], len(rows) > size


# What a row of the ticket list shows; the rest (custom fields, notes, passwords) stays in the database.
_INBOX_COLUMNS = (
    "number",
    "subject",
    "status",
    "priority",
    "channel",
    "tags",
    "follow_up_of",
    "created_at",
    "updated_at",
    "first_response_at",
    "solved_at",
    "customer__name",
    "customer__locale",
    "assignee__username",
    "assignee__first_name",
    "assignee__last_name",
    "assignee__role",
    "team__name",
)


def ticket_for_agent(agent: User, ticket_id: int, *, lock: bool = False) -> Ticket:
    tickets = tickets_visible_to(agent).select_related("customer", "assignee", "team")
    if lock:
        tickets = tickets.select_for_update(of=("self",))
    return _get_or_404(tickets, ticket_id)


def customer_tickets(customer_user: User) -> QuerySet[Ticket]:
    profile = getattr(customer_user, "customer_profile", None) if customer_user.is_authenticated else None
    if profile is None:
        return Ticket.objects.none()
    return Ticket.objects.filter(customer=profile)


def ticket_for_customer(customer_user: User, ticket_id: int) -> Ticket:
    return _get_or_404(customer_tickets(customer_user), ticket_id)


def ticket_timeline(ticket: Ticket, *, include_internal: bool = True) -> QuerySet[Message]:
    messages = ticket.messages.select_related("author", "customer").prefetch_related("attachments")
    if not include_internal:
        messages = messages.exclude(kind=MessageKind.INTERNAL_NOTE)
    return messages.order_by("created_at", "id")


def ticket_events_visible_to(agent: User) -> QuerySet[TicketEvent]:
    """Events on every ticket the agent may see (the live stream's catch-up reads these)."""
    return TicketEvent.objects.filter(ticket__in=tickets_visible_to(agent))


def ticket_events(ticket: Ticket) -> QuerySet[TicketEvent]:
    return ticket.events.select_related("actor").order_by("created_at", "id")


def ticket_detail(agent: User, ticket_id: int) -> Ticket:
    """A ticket the agent may see, with its messages (attachments too) and its audit trail."""
    return with_history(ticket_for_agent(agent, ticket_id))


def with_history(ticket: Ticket) -> Ticket:
    """Attach the messages and the audit trail, for a ticket the caller was already allowed to change."""
    ticket.timeline = list(ticket_timeline(ticket))
    ticket.audit_trail = list(ticket_events(ticket))
    return ticket


def customers_for_agent(agent: User) -> QuerySet[Customer]:
    if not agent.is_authenticated or not agent.is_agent:
        return Customer.objects.none()
    return Customer.objects.select_related("organization").prefetch_related("identities")


def customer_for_agent(agent: User, customer_id: int) -> Customer:
    customers = customers_for_agent(agent).prefetch_related(
        Prefetch(
            "tickets",
            queryset=tickets_visible_to(agent)
            .select_related("assignee", "team")
            .order_by("-updated_at")[:100],
            to_attr="recent_tickets",
        )
    )
    return _get_or_404(customers, customer_id)


def teams_for_agent(agent: User) -> QuerySet[Team]:
    if not agent.is_authenticated or not agent.is_agent:
        return Team.objects.none()
    return Team.objects.prefetch_related("members")


_MAX_ID = 2**63 - 1


def _get_or_404(queryset: QuerySet, object_id: int):
    try:
        object_id = int(object_id)
    except (ValueError, TypeError):
        raise Http404 from None
    if not 0 < object_id <= _MAX_ID:
        raise Http404
    try:
        return queryset.get(pk=object_id)
    except queryset.model.DoesNotExist:
        raise Http404 from None


def attachment_for_agent(agent: User, attachment_id: int) -> Attachment:
    visible = Attachment.objects.filter(message__ticket__in=tickets_visible_to(agent))
    return _get_or_404(visible, attachment_id)


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A ticket the search found: the ticket as the list shows it, and its matching fragment as HTML."""

    ticket: Ticket
    highlight: str
    position: SearchPosition


@dataclass(frozen=True, slots=True)
class SearchPage:
    hits: list[SearchHit]
    # Where the next page starts; None on the last page.
    next_position: SearchPosition | None


def search_tickets(
    agent: User, query: str, *, after: SearchPosition | None = None, limit: int = 25
) -> SearchPage:
    """The tickets the agent may see that match `query`, best first, newest first among equals.

    Ticket number, subject, every message's text, the customer's name and addresses (tickets.search says
    how a query is read and ranked). Access as in the ticket list; a fixed number of queries per page.
    """
    terms = search.read_query(query)
    if not terms.text:
        return SearchPage(hits=[], next_position=None)
    inbox = ticket_inbox(agent)
    candidates = {candidate.ticket_id: candidate for candidate in search.ranked_candidates(terms)}
    if not candidates:
        return SearchPage(hits=[], next_position=None)
    ranked = sorted(
        (
            SearchPosition(candidates[ticket_id].score, updated_at, ticket_id)
            for ticket_id, updated_at in inbox.filter(id__in=list(candidates)).values_list("id", "updated_at")
        ),
        key=_ranking,
        reverse=True,
    )
    if after is not None:
        ranked = [position for position in ranked if _ranking(position) < _ranking(after)]
    page, rest = ranked[:limit], ranked[limit:]
    tickets = inbox.in_bulk([position.ticket_id for position in page])
    fragments = search.highlights(terms.text, [candidates[position.ticket_id] for position in page])
    hits = [
        SearchHit(tickets[position.ticket_id], fragments.get(position.ticket_id, ""), position)
        for position in page
        if position.ticket_id in tickets
    ]
    return SearchPage(hits=hits, next_position=page[-1] if rest else None)


def _ranking(position: SearchPosition) -> tuple[float, datetime, int]:
    return (position.score, position.updated_at, position.ticket_id)
