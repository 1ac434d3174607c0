"""The ticket list: a view of the left rail, narrowed by filters in the URL, one keyset page at a time."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from tickets import selectors
from tickets.forms import PageCursor, TicketListForm
from tickets.models import Channel, User
from tickets.templatetags.workspace import channel_icon
from tickets.views.access import agent_required

PAGE_SIZE = 50


@agent_required
@require_safe
def inbox(request: HttpRequest) -> HttpResponse:
    form = TicketListForm(request.GET)
    if not form.is_valid():
        return render(request, "workspace/inbox.html", _rail(request, form) | {"form": form}, status=400)
    view = form.cleaned_data["view"]
    filters = {key: value for key, value in form.cleaned_data.items() if key not in ("view", "cursor")}
    tickets = selectors.filter_tickets(
        request.user, selectors.ticket_list(request.user, view=view), **filters
    )
    cursor = form.cleaned_data["cursor"]
    after = (cursor.updated_at, cursor.ticket_id) if cursor else None
    rows, more = selectors.ticket_page(tickets, after=after, size=PAGE_SIZE)
    next_page = request.GET.copy()
    next_page["cursor"] = PageCursor.after(rows[-1]) if more else ""
    context = {
        "form": form,
        "view": view,
        "view_name": TicketListForm.VIEWS[view],
        "rows": rows,
        "next_page": next_page.urlencode() if more else "",
        "filtered": any(form.cleaned_data[name] for name in filters),
    }
    if request.htmx and cursor:  # "Show more": the next rows only
        return render(request, "workspace/_rows.html", context)
    return render(request, "workspace/inbox.html", _rail(request, form) | context)


@dataclass(frozen=True, slots=True)
class RailLink:
    label: str
    icon: str
    query: str
    count: int | None
    current: bool


@dataclass(frozen=True, slots=True)
class RailSection:
    title: str
    links: list[RailLink]


VIEW_ICONS = {
    "mine": "user",
    "unassigned": "inbox",
    "urgent": "flag",
    "waiting": "hourglass",
    "solved": "circle-check",
    "all": "layers",
}


def rail(agent: User, *, query: dict[str, str]) -> list[RailSection]:
    """The left rail: the views with their counts, then the agent's teams and the channels (open tickets).

    `query` is the current list's view, team and channel, to mark the link of the page being shown.
    """
    counts = selectors.inbox_counts(agent, now=timezone.now())

    def link(label: str, icon: str, count: int | None, **params: str) -> RailLink:
        return RailLink(label, icon, urlencode(params), count, params == query)

    views = [
        link(str(TicketListForm.VIEWS[view]), icon, counts.views.get(view), view=view)
        for view, icon in VIEW_ICONS.items()
    ]
    teams = [link(team.name, "users", count, view="open", team=str(team.pk)) for team, count in counts.teams]
    channels = [
        link(str(label), channel_icon(value), counts.channels.get(value, 0), view="open", channel=value)
        for value, label in Channel.choices
    ]
    sections = [RailSection("", views)]
    if teams:
        sections.append(RailSection(_("Teams"), teams))
    return [*sections, RailSection(_("Channels"), channels)]


def _rail(request: HttpRequest, form: TicketListForm) -> dict:
    cleaned = getattr(form, "cleaned_data", {})
    current = {"view": cleaned.get("view") or "mine"}
    if cleaned.get("team"):
        current["team"] = str(cleaned["team"])
    if len(cleaned.get("channel") or []) == 1:
        current["channel"] = cleaned["channel"][0]
    return {"rail": rail(request.user, query=current)}
