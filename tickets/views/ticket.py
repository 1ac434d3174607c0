"""The ticket page: the timeline, the composer, the side panel's fields. Each action is the house shape:
decorators, the access selector, a form, one service call, then the ticket region again for htmx or a
redirect for a plain form post."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django import forms
from django.db.models import prefetch_related_objects
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from tickets import lifecycle, replies, selectors
from tickets.exceptions import DomainError, StaleReply
from tickets.forms import ComposerForm, TicketFieldsForm
from tickets.models import Message, Ticket
from tickets.views.access import agent_required
from tickets.views.inbox import rail
from tickets.views.timeline import timeline_entries


@agent_required
@require_safe
def ticket_page(request: HttpRequest, ticket_id: int) -> HttpResponse:
    ticket = selectors.ticket_detail(request.user, ticket_id)
    return _ticket_region(request, ticket, template="workspace/ticket.html")


@agent_required
@require_POST
def compose(request: HttpRequest, ticket_id: int) -> HttpResponse:
    ticket = selectors.ticket_for_agent(request.user, ticket_id)
    form = ComposerForm(request.POST)
    if form.is_valid():
        with _domain_errors(form):
            if form.cleaned_data["mode"] == ComposerForm.NOTE:
                replies.add_note(ticket, actor=request.user, text=form.cleaned_data["text"])
            else:
                replies.send_reply(
                    ticket,
                    actor=request.user,
                    text=form.cleaned_data["text"],
                    status=form.cleaned_data["then_status"] or None,
                    seen_message_id=form.cleaned_data["seen_message_id"],
                    confirmed=form.cleaned_data["confirm"],
                )
    return _answer(request, ticket, composer=form)


@agent_required
@require_POST
def update_fields(request: HttpRequest, ticket_id: int) -> HttpResponse:
    ticket = selectors.ticket_for_agent(request.user, ticket_id)
    form = TicketFieldsForm(request.POST, ticket=ticket)
    if form.is_valid():
        with _domain_errors(form):
            lifecycle.update(ticket, actor=request.user, **form.changes())
    return _answer(request, ticket, fields=form)


@agent_required
@require_POST
def assign_to_me(request: HttpRequest, ticket_id: int) -> HttpResponse:
    ticket = selectors.ticket_for_agent(request.user, ticket_id)
    lifecycle.assign(ticket, agent=request.user, actor=request.user)
    return _answer(request, ticket)


@contextmanager
def _domain_errors(form: forms.Form) -> Iterator[None]:
    """A service's refusal (a closed ticket, a status it cannot take) becomes the form's error, 409 or 400."""
    try:
        yield
    except StaleReply as error:
        form.add_error(None, _("New messages arrived while you were writing. Read them, then send anyway."))
        form.arrived_ids = error.details["arrived"]
        form.domain_status = error.http_status
    except DomainError as error:
        form.add_error(None, str(error))
        form.domain_status = error.http_status


def _answer(
    request: HttpRequest,
    ticket: Ticket,
    *,
    composer: ComposerForm | None = None,
    fields: TicketFieldsForm | None = None,
) -> HttpResponse:
    refused = next((form for form in (composer, fields) if form is not None and form.errors), None)
    if not request.htmx and refused is None:
        return redirect("ticket", ticket_id=ticket.pk)
    status = getattr(refused, "domain_status", 400) if refused is not None else 200
    template = "workspace/_ticket.html" if request.htmx else "workspace/ticket.html"
    ticket = selectors.ticket_detail(request.user, ticket.pk)
    return _ticket_region(request, ticket, template=template, composer=composer, fields=fields, status=status)


def _ticket_region(
    request: HttpRequest,
    ticket: Ticket,
    *,
    template: str,
    composer: ComposerForm | None = None,
    fields: TicketFieldsForm | None = None,
    status: int = 200,
) -> HttpResponse:
    # A refused form is shown again as sent (the agent's draft is kept); a successful one starts empty.
    keep = composer is not None and composer.errors
    prefetch_related_objects([ticket.customer], "identities")
    context = {
        "ticket": ticket,
        "reply_address": next(
            (
                identity.address
                for identity in ticket.customer.identities.all()
                if identity.channel == ticket.channel
            ),
            "",
        ),
        "entries": timeline_entries(ticket),
        "composer": composer if keep else ComposerForm(),
        # The composer tells the server which message was newest when the agent started reading.
        "newest_message_id": ticket.messages.order_by("-pk").values_list("pk", flat=True).first(),
        "arrived": _arrived(ticket, composer),
        "fields": fields if fields is not None and fields.errors else TicketFieldsForm(ticket=ticket),
    }
    if template == "workspace/ticket.html":  # the whole page: the left rail too
        context["rail"] = rail(request.user, query={})
    return render(request, template, context, status=status)


def _arrived(ticket: Ticket, composer: ComposerForm | None) -> list[Message]:
    """The messages a stale reply was refused for, shown above the kept draft."""
    ids = getattr(composer, "arrived_ids", None)
    if not ids:
        return []
    return list(ticket.messages.filter(pk__in=ids).select_related("author", "customer").order_by("pk"))
