"""The workspace search: GET /search/?q= shows the matching tickets as the list's rows, each with the
fragment where the query matched; "Show more" fetches the next keyset page."""

from __future__ import annotations

import nh3
from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_safe

from tickets import selectors
from tickets.search import MAX_QUERY_LENGTH, SearchPosition, clean_query
from tickets.views.access import agent_required
from tickets.views.inbox import rail

PAGE_SIZE = 25


class SearchForm(forms.Form):
    # Django's CharField refuses NUL characters and strips the query; an empty one asks what to look for.
    q = forms.CharField(
        required=False,
        max_length=MAX_QUERY_LENGTH,
        error_messages={
            "max_length": _("A search is at most %(limit_value)d characters long; shorten this one."),
            "null_characters_not_allowed": _("A search cannot contain control characters."),
        },
    )
    cursor = forms.CharField(required=False)

    def clean_cursor(self) -> SearchPosition | None:
        cursor = self.cleaned_data["cursor"]
        if not cursor:
            return None
        try:
            return SearchPosition.decode(cursor)
        except ValueError:
            raise forms.ValidationError(_("This page of results has expired; search again.")) from None


@agent_required
@require_safe
def search(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET)
    # A refused query is shown again in the box as it will be searched: without control characters, cut short.
    context = {"form": form, "search_query": clean_query(request.GET.get("q", "")), "rows": []}
    if not form.is_valid():
        return _render(request, context, status=400)
    query, cursor = form.cleaned_data["q"], form.cleaned_data["cursor"]
    page = selectors.search_tickets(request.user, query, after=cursor, limit=PAGE_SIZE) if query else None
    rows = []
    for hit in page.hits if page else []:
        hit.ticket.highlight = highlighted(hit.highlight)
        rows.append(hit.ticket)
    next_page = ""
    if page and page.next_position is not None:
        next_page = request.GET.copy()
        next_page["cursor"] = page.next_position.encode()
        next_page = next_page.urlencode()
    context |= {"search_query": query, "rows": rows, "next_page": next_page, "list_view": "search"}
    if request.htmx and cursor:  # "Show more": the next rows only
        return render(request, "workspace/_rows.html", context)
    return _render(request, context)


def highlighted(fragment: str) -> SafeString:
    """The selector's fragment (text escaped by tickets.search, matches in <mark>) as HTML to show. nh3 keeps
    only <mark> without attributes, so even a fragment built wrongly cannot carry markup of the customer's."""
    return mark_safe(nh3.clean(fragment, tags={"mark"}, attributes={}))  # noqa: S308 - sanitized just above


def _render(request: HttpRequest, context: dict, *, status: int = 200) -> HttpResponse:
    if request.htmx:
        return render(request, "workspace/_search_results.html", context, status=status)
    context["rail"] = rail(request.user, query={})
    return render(request, "workspace/search.html", context, status=status)
