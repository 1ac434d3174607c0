"""tickets.rows: chained writes store what the ORM would; prepared statements; loading raw rows."""

import pytest
from django.db import DatabaseError, connection, models, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tickets.models import Customer, Identity, InboundEnvelope, Message, Team, Ticket, TicketEvent
from tickets.rows import Prepared, Writes, columns, insert_unless_exists, load

pytestmark = pytest.mark.django_db


def test_written_rows_read_back_through_the_orm_unchanged(ivan):
    now = timezone.now()
    writes = Writes()
    inserted = writes.insert(
        [
            Ticket(
                subject="Счёт",
                channel="email",
                customer_id=ivan.pk,
                tags=["vip", "billing"],
                custom_fields={"order": 42, "note": "ёж"},
                created_at=now,
                updated_at=now,
            )
        ],
        returning=("number",),
    )
    writes.execute()
    ticket = inserted.instance

    stored = Ticket.objects.get(pk=ticket.pk)
    assert stored.number == ticket.number >= 1000
    assert (stored.tags, stored.custom_fields, stored.created_at) == (
        ["vip", "billing"],
        {"order": 42, "note": "ёж"},
        now,
    )

    writes = Writes()
    writes.update(stored, status="open", solved_at=None)
    writes.execute()
    assert Ticket.objects.get(pk=ticket.pk).status == "open" == stored.status


def _row(model: type[models.Model], pk: int) -> dict[str, object]:
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE id = %s", [pk])  # noqa: S608
        names = [column.name for column in cursor.description]
        return dict(zip(names, cursor.fetchone(), strict=True))


def _same_row_through_writes_and_the_orm(model: type[models.Model], **given: object) -> None:
    """Write `given` once through Writes and once through Model.objects.create(): every column but the
    id, the ticket number's sequence and write-time stamps must hold the same value."""
    writes = Writes()
    inserted = writes.insert([model(**given)])
    writes.execute()
    through_writes = _row(model, inserted.instance.pk)
    # Gone again before the ORM writes the same unique values.
    model.objects.filter(pk=inserted.instance.pk).delete()
    through_orm = _row(model, model.objects.create(**given).pk)
    # Set at write time by the field itself (auto_now_add), so only its presence can match.
    stamped = [f.column for f in model._meta.concrete_fields if getattr(f, "auto_now_add", False)]
    for column in ("id", "number", *stamped):
        assert (through_writes.pop(column, None) is None) == (through_orm.pop(column, None) is None)
    assert through_writes == through_orm


def test_every_ingest_model_is_written_as_the_orm_writes_it_with_django_defaults(ivan):
    # Only the fields receive() sets are given: defaults the models declare (status, priority, tags,
    # custom fields, kind, channel data, times …) must come out as the ORM's, field by field.
    now = timezone.now()
    ticket = Ticket.objects.create(subject="Счёт", channel="email", customer=ivan)
    _same_row_through_writes_and_the_orm(Customer, name="Пётр", locale="ru", created_at=now)
    _same_row_through_writes_and_the_orm(
        Identity, customer_id=ivan.pk, channel="telegram", address="777", created_at=now
    )
    _same_row_through_writes_and_the_orm(
        Ticket, subject="Заказ", channel="telegram", customer_id=ivan.pk, created_at=now, updated_at=now
    )
    _same_row_through_writes_and_the_orm(
        Message,
        ticket_id=ticket.pk,
        direction="in",
        channel="email",
        customer_id=ivan.pk,
        body_text="Привет",
        external_id="m-1",
        created_at=now,
    )
    _same_row_through_writes_and_the_orm(
        TicketEvent,
        ticket_id=ticket.pk,
        name="ticket.updated",
        changes={"status": ["new", "open"]},
        created_at=now,
    )


def test_a_chain_of_writes_links_new_rows_by_id_in_one_statement():
    now = timezone.now()
    writes = Writes()
    customer = writes.insert([Customer(name="Пётр", locale="ru", created_at=now)])
    writes.insert(
        [
            Identity(
                customer_id=customer.id,
                channel="telegram",
                address="777",
                display_name="Пётр",
                created_at=now,
            )
        ]
    )
    ticket = writes.insert(
        [
            Ticket(
                subject="Заказ",
                channel="telegram",
                customer_id=customer.id,
                thread_key="777",
                created_at=now,
                updated_at=now,
            )
        ],
        returning=("number",),
    )
    events = writes.insert(
        [
            TicketEvent(ticket_id=ticket.id, name=name, created_at=now)
            for name in ("ticket.created", "ticket.updated")
        ]
    )

    with CaptureQueriesContext(connection) as queries:
        writes.execute()

    assert [query["sql"].split()[0] for query in queries.captured_queries][-1:] == ["EXECUTE"]
    assert sum("EXECUTE" in query["sql"] for query in queries.captured_queries) == 1

    stored = Ticket.objects.select_related("customer").get(pk=ticket.instance.pk)
    assert stored.number == ticket.instance.number
    assert stored.customer.identities.get().address == "777"
    assert stored.customer.pk == customer.instance.pk == ticket.instance.customer_id
    assert [event.pk for event in events.instances] == list(
        stored.events.order_by("id").values_list("id", flat=True)
    )
    assert [event.name for event in events.instances] == ["ticket.created", "ticket.updated"]
    assert all(event.ticket_id == stored.pk for event in events.instances)


def test_only_a_single_row_insert_can_be_referenced():
    writes = Writes()
    two = writes.insert([Team(name="A"), Team(name="B")])
    with pytest.raises(ValueError, match="single-row"):
        _ = two.id


@pytest.mark.django_db(transaction=True)
def test_a_statement_is_prepared_once_per_connection_and_again_after_a_reconnect():
    team = Team.objects.create(name="Billing")
    # A name used twice is one parameter.
    statement = Prepared(
        "SELECT name FROM tickets_team WHERE id = %(id)s OR (name = %(name)s AND id = %(id)s)"
    )

    def run() -> tuple[str, list[str]]:
        with CaptureQueriesContext(connection) as queries, connection.cursor() as cursor:
            statement.execute(cursor, {"id": team.pk, "name": "Billing"})
            name = cursor.fetchone()[0]
        verbs = [query["sql"].split()[0] for query in queries.captured_queries]
        return name, [verb for verb in verbs if verb in ("PREPARE", "EXECUTE")]

    assert run() == ("Billing", ["PREPARE", "EXECUTE"])
    assert run() == ("Billing", ["EXECUTE"])
    connection.close()
    assert run() == ("Billing", ["PREPARE", "EXECUTE"])


@pytest.mark.django_db(transaction=True)
def test_a_session_that_already_holds_the_statement_is_not_asked_to_prepare_it_again():
    team = Team.objects.create(name="Support")
    statement = Prepared("SELECT name FROM tickets_team WHERE id = %s")
    connection.close()
    with connection.cursor() as cursor:
        # A pooler hands over a session in which another client of ours prepared the statement.
        cursor.execute(statement._prepare)

    with connection.cursor() as cursor:
        statement.execute(cursor, [team.pk])
        assert cursor.fetchone() == ("Support",)


@pytest.mark.django_db(transaction=True)
def test_statements_dropped_behind_our_back_are_prepared_again_in_the_next_transaction():
    team = Team.objects.create(name="Sales")
    by_id = Prepared("SELECT name FROM tickets_team WHERE id = %s")
    by_name = Prepared("SELECT id FROM tickets_team WHERE name = %s")
    with connection.cursor() as cursor:
        by_id.execute(cursor, [team.pk])
        by_name.execute(cursor, ["Sales"])
        cursor.execute(f"DEALLOCATE {by_id.name}")  # the session lost one statement and kept the other

    # Inside a transaction the failed EXECUTE aborts it: the caller runs it again (receive() does).
    with (
        pytest.raises(DatabaseError, match="does not exist"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        by_id.execute(cursor, [team.pk])
    with connection.cursor() as cursor:
        by_id.execute(cursor, [team.pk])
        assert cursor.fetchone() == ("Sales",)
        by_name.execute(cursor, ["Sales"])
        assert cursor.fetchone() == (team.pk,)


def test_loaded_rows_equal_what_the_orm_loads(ivan):
    ticket = Ticket.objects.create(
        subject="Счёт", channel="email", customer=ivan, tags=["vip"], custom_fields={"order": 7}
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns(Ticket, 't')} FROM tickets_ticket t WHERE t.id = %s", [ticket.pk])  # noqa: S608
        loaded = load(Ticket, cursor.fetchone())

    from_orm = Ticket.objects.get(pk=ticket.pk)
    assert [getattr(loaded, f.attname) for f in Ticket._meta.concrete_fields] == [
        getattr(from_orm, f.attname) for f in Ticket._meta.concrete_fields
    ]
    assert loaded.custom_fields == {"order": 7} and not loaded._state.adding


def test_insert_unless_exists_writes_the_instances_row_once():
    payload = b"\x00\xffraw \xd0\xbf\xd0\xb8\xd1\x81\xd1\x8c\xd0\xbc\xd0\xbe"
    first = InboundEnvelope(channel="api", external_id="dup-1", payload=payload, source={"user": "ёж"})
    again = InboundEnvelope(channel="api", external_id="dup-1", payload=b"other", source={})

    assert insert_unless_exists(first, unique=("channel", "external_id")) is True
    assert insert_unless_exists(again, unique=("channel", "external_id")) is False

    stored = InboundEnvelope.objects.get()
    assert stored.pk == first.pk and again.pk is None
    assert (bytes(stored.payload), stored.source, stored.status, stored.attempts, stored.error) == (
        payload,
        {"user": "ёж"},
        "pending",
        0,
        "",
    )
    assert stored.received_at == first.received_at and stored.processed_at is None
