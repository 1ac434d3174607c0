"""tickets.rows: single-statement inserts write what the ORM would, and refuse incomplete rows."""

import pytest
from django.utils import timezone

from tickets.models import Customer, Ticket
from tickets.rows import insert_row, insert_rows, update_row

pytestmark = pytest.mark.django_db


def test_inserted_rows_read_back_through_the_orm_unchanged(ivan):
    now = timezone.now()
    ticket = insert_row(
        Ticket,
        returning=("number",),
        subject="Счёт",
        status="new",
        priority="normal",
        channel="email",
        customer_id=ivan.pk,
        tags=["vip", "billing"],
        custom_fields={"order": 42, "note": "ёж"},
        thread_key="",
        created_at=now,
        updated_at=now,
    )

    stored = Ticket.objects.get(pk=ticket.pk)
    assert stored.number == ticket.number >= 1000
    assert (stored.tags, stored.custom_fields, stored.created_at) == (
        ["vip", "billing"],
        {"order": 42, "note": "ёж"},
        now,
    )

    update_row(stored, status="open", solved_at=None)
    assert Ticket.objects.get(pk=ticket.pk).status == "open" == stored.status


def test_a_row_missing_a_required_column_is_refused_before_reaching_the_database():
    with pytest.raises(ValueError, match="notes"):
        insert_rows(Customer, [{"name": "Half", "locale": "", "timezone": "", "created_at": timezone.now()}])
