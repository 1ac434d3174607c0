from datetime import UTC, datetime

import django_filters
from django.core.exceptions import ValidationError as FormValidationError
from django.db.models import QuerySet
from django_filters.fields import IsoDateTimeField
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter

from tickets.models import Channel, Priority, Status, Ticket


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, in UTC: Python takes UTC offsets up to ±23:59, PostgreSQL refuses past ±15:59."""

    def to_python(self, value: str | None) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            # Year 1 or 9999 shifted out of the calendar: as unreadable as any other bad time.
            raise FormValidationError(self.error_messages["invalid"], code="invalid") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class TicketFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Status.choices, distinct=False)
    priority = django_filters.MultipleChoiceFilter(choices=Priority.choices, distinct=False)
    channel = django_filters.MultipleChoiceFilter(choices=Channel.choices, distinct=False)
    assignee = django_filters.CharFilter(method="filter_assignee", help_text='User id, "me" or "none".')
    team = django_filters.NumberFilter(field_name="team_id")
    customer = django_filters.NumberFilter(field_name="customer_id")
    tag = django_filters.CharFilter(method="filter_tag")
    updated_since = UtcIsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Ticket
        fields = ["status", "priority", "channel", "assignee", "team", "customer", "tag", "updated_since"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # `?updated_since=` given empty is not "no filter": a date-time or an integer has no empty value, so
        # it goes to the field's own parsing and fails there (400). Left out, it still filters nothing.
        for name in ("updated_since", "team", "customer"):
            self.filters[name].field.empty_values = [None]

    def filter_assignee(self, tickets: QuerySet[Ticket], name: str, value: str) -> QuerySet[Ticket]:
        if value == "me":
            return tickets.filter(assignee=self.request.user)
        if value == "none":
            return tickets.filter(assignee__isnull=True)
        if not value.isdigit():
            raise ValidationError({"assignee": [f'Expected a user id, "me" or "none", not {value!r}.']})
        return tickets.filter(assignee_id=int(value))

    def filter_tag(self, tickets: QuerySet[Ticket], name: str, value: str) -> QuerySet[Ticket]:
        return tickets.filter(tags__contains=[value.strip().lower()])


class StrictOrderingFilter(OrderingFilter):
    """An order the endpoint does not offer is a 400, not silently the default order."""

    def remove_invalid_fields(self, queryset, fields: list[str], view, request) -> list[str]:
        valid = super().remove_invalid_fields(queryset, fields, view, request)
        # Empty terms ("number," or a lone space) are ignored, as DRF ignores them.
        if invalid := [term for term in fields if term and term not in valid]:
            message = f"Cannot order by {', '.join(invalid)}"
            if isinstance(view.ordering_fields, list | tuple):
                message += f"; choose from {', '.join(view.ordering_fields)}"
            raise ValidationError({self.ordering_param: [message + "."]})
        return valid
