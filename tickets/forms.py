"""The workspace's forms: what a page accepts, validated before any service is called (bad input: 400)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from tickets.lifecycle import normalize_tags
from tickets.models import Channel, Priority, Role, Status, Team, Ticket, User
from tickets.models.people import time_zone_names


class SignInForm(AuthenticationForm):
    remember_me = forms.BooleanField(label=_("Remember me on this device"), required=False, initial=True)


class PreferencesForm(forms.ModelForm):
    timezone = forms.ChoiceField(label=_("Time zone"), required=False)

    class Meta:
        model = User
        fields = ["locale", "timezone"]
        labels = {"locale": _("Language")}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["locale"].choices = [("", _("As in the browser")), *self.fields["locale"].choices[1:]]
        self.fields["timezone"].choices = [
            ("", _("The helpdesk's default")),
            *((name, name.replace("_", " ")) for name in sorted(time_zone_names())),
        ]


class PageCursor:
    """Where a page of the ticket list starts: after the row with this (updated_at, id), keyset style.

    Sent to the browser as an opaque URL-safe token, so a bookmark of a deep page stays as fast as the first.
    """

    def __init__(self, updated_at: datetime, ticket_id: int) -> None:
        self.updated_at, self.ticket_id = updated_at, ticket_id

    @classmethod
    def after(cls, ticket: Ticket) -> str:
        raw = f"{ticket.updated_at.isoformat()}|{ticket.pk}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def parse(cls, token: str) -> PageCursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            moment, ticket_id = raw.split("|")
            updated_at = datetime.fromisoformat(moment)
            if updated_at.tzinfo is None or not 0 < int(ticket_id) < 2**63:
                raise ValueError(raw)
            return cls(updated_at, int(ticket_id))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise forms.ValidationError(_("This page link is broken; start from the first page.")) from None


class AssigneeField(forms.CharField):
    """ "me", "none" or an agent's id, as the API's `assignee` filter takes it."""

    def to_python(self, value: str | None) -> str:
        value = (super().to_python(value) or "").strip()
        if value and value not in ("me", "none") and not value.isdigit():
            raise forms.ValidationError(_('Choose an agent, "me" or "none".'))
        return value


class TicketListForm(forms.Form):
    """The list's view, filters and page, all from the URL so a view can be bookmarked and shared."""

    VIEWS = {
        "mine": _("My open"),
        "unassigned": _("Unassigned"),
        "urgent": _("Urgent / at risk"),
        "waiting": _("Waiting on customer"),
        "solved": _("Solved recently"),
        # A view's name, not the status of one ticket (in Russian the two differ: «Открытые», «Открыто»).
        "open": pgettext_lazy("tickets view", "Open"),
        "all": pgettext_lazy("tickets view", "All"),
    }

    view = forms.ChoiceField(choices=list(VIEWS.items()), required=False)
    status = forms.MultipleChoiceField(label=_("Status"), choices=Status.choices, required=False)
    priority = forms.MultipleChoiceField(label=_("Priority"), choices=Priority.choices, required=False)
    channel = forms.MultipleChoiceField(label=_("Channel"), choices=Channel.choices, required=False)
    team = forms.IntegerField(label=_("Team"), required=False, min_value=1, max_value=2**63 - 1)
    assignee = AssigneeField(label=_("Assignee"), required=False, max_length=20)
    tag = forms.CharField(label=_("Tag"), required=False, max_length=64)
    customer = forms.IntegerField(label=_("Customer"), required=False, min_value=1, max_value=2**63 - 1)
    cursor = forms.CharField(required=False, max_length=200)

    def clean_view(self) -> str:
        return self.cleaned_data["view"] or "mine"

    def clean_cursor(self) -> PageCursor | None:
        token = self.cleaned_data["cursor"]
        return PageCursor.parse(token) if token else None

    def clean_tag(self) -> str:
        tags = normalize_tags([self.cleaned_data["tag"]])
        return tags[0] if tags else ""


class ComposerForm(forms.Form):
    """A reply to the customer, or an internal note; a reply may set the status in the same step."""

    REPLY, NOTE = "reply", "note"

    mode = forms.ChoiceField(choices=[(REPLY, _("Reply")), (NOTE, _("Internal note"))], initial=REPLY)
    text = forms.CharField(label=_("Message"), max_length=100_000, strip=True)
    then_status = forms.ChoiceField(
        choices=[("", ""), (Status.PENDING, Status.PENDING.label), (Status.SOLVED, Status.SOLVED.label)],
        required=False,
    )
    # The newest message on the page when it was rendered: a reply after newer ones asks for confirmation.
    seen_message_id = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    confirm = forms.BooleanField(required=False)

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("mode") == self.NOTE and cleaned.get("then_status"):
            raise forms.ValidationError(_("An internal note does not change the status; send a reply."))
        return cleaned


class TicketFieldsForm(forms.Form):
    """The side panel's fields; only what the agent changed goes to lifecycle.update().

    "Changed" is against the values the page showed (Django's show_hidden_initial sends them back), not the
    ticket's values now: a field another agent changed meanwhile is not put back by saving another one.
    """

    status = forms.ChoiceField(label=_("Status"), choices=Status.choices)
    priority = forms.ChoiceField(label=_("Priority"), choices=Priority.choices)
    assignee = forms.ModelChoiceField(
        label=_("Assignee"),
        queryset=User.objects.filter(is_active=True).exclude(role=Role.CUSTOMER).order_by("first_name"),
        required=False,
        empty_label=_("Unassigned"),
    )
    team = forms.ModelChoiceField(
        label=_("Team"), queryset=Team.objects.order_by("name"), required=False, empty_label=_("No team")
    )
    tags = forms.CharField(
        label=_("Tags"), required=False, max_length=1000, help_text=_("Separated by commas or spaces.")
    )

    def __init__(self, *args, ticket: Ticket, **kwargs) -> None:
        kwargs.setdefault(
            "initial",
            {
                "status": ticket.status,
                "priority": ticket.priority,
                "assignee": ticket.assignee_id,
                "team": ticket.team_id,
                "tags": ", ".join(ticket.tags),
            },
        )
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.show_hidden_initial = True
        self.fields["assignee"].label_from_instance = lambda user: user.get_full_name() or user.username

    def clean_tags(self) -> list[str]:
        tags = normalize_tags(self.cleaned_data["tags"].replace(",", " ").split())
        if any(len(tag) > 64 for tag in tags):
            raise forms.ValidationError(_("A tag is at most 64 characters long."))
        return tags

    def changes(self) -> dict:
        """The fields the agent changed on the page, as lifecycle.update() keywords."""
        return {name: self.cleaned_data[name] for name in self.changed_data}
