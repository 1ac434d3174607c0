"""The landing page: where to go next (admin, API docs, API) and the open tickets per channel."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from tickets.models import Channel
from tickets.selectors import open_tickets_by_channel


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    works_tickets = request.user.is_authenticated and request.user.is_agent
    counts = open_tickets_by_channel(request.user) if works_tickets else None
    channels = (
        [(label, counts.get(value, 0)) for value, label in Channel.choices] if counts is not None else None
    )
    return render(
        request,
        "home.html",
        {
            "channels": channels,
            "total_open": sum(counts.values()) if counts else 0,
        },
    )
