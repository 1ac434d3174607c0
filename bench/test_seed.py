"""bench.seed at a small size: the rows it COPYs satisfy the schema, the model and the selectors."""

from collections import Counter

import pytest
from django.db import connection
from django.db.models import Count

from bench.seed import ADMIN_USERNAME, AGENT_USERNAME, seed
from tickets import inbound, selectors
from tickets.channels import InboundMessage
from tickets.identities import normalize_address
from tickets.models import Customer, Identity, Message, Status, Ticket, TicketEvent, User

pytestmark = pytest.mark.django_db

TICKETS = 300


def _schema() -> set[tuple]:
    """Every index and constraint of the tickets tables: name, table, columns, options, kind.

    (An index's predicate is compared by presence: PostgreSQL deparses a rebuilt one with other casts.)
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, i.indrelid::regclass::text, i.indkey::text, i.indoption::text, i.indisunique,
                   i.indpred IS NOT NULL, am.amname
            FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
            WHERE i.indrelid::regclass::text LIKE 'tickets\\_%%'
            """
        )
        indexes = set(cursor.fetchall())
        cursor.execute(
            """
            SELECT conname, conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint
            WHERE conrelid::regclass::text LIKE 'tickets\\_%%'
            """
        )
        return indexes | set(cursor.fetchall())


@pytest.fixture
def seeded():
    schema_before = _schema()
    stats = seed(connection, tickets=TICKETS, agents=12, defer_indexes=True)
    assert _schema() == schema_before, "the deferred constraints and indexes are all back, unchanged"
    return stats


def test_row_counts(seeded):
    assert Ticket.objects.count() == seeded.tickets == TICKETS
    assert Customer.objects.count() == seeded.customers == TICKETS // 3
    assert Identity.objects.count() == seeded.identities >= TICKETS // 3
    assert Message.objects.count() == seeded.messages
    assert 2.0 <= seeded.messages / TICKETS <= 3.2
    assert TicketEvent.objects.filter(name="ticket.created").count() == TICKETS
    assert not TicketEvent.objects.filter(published_at=None).exists()
    assert sum(seeded.statuses.values()) == TICKETS


def test_every_ticket_has_messages_a_unique_number_and_valid_choices(seeded):
    tickets = Ticket.objects.annotate(message_count=Count("messages"))
    assert not tickets.filter(message_count=0).exists()
    numbers = list(Ticket.objects.values_list("number", flat=True))
    assert len(set(numbers)) == TICKETS and min(numbers) >= 1000
    assert set(Ticket.objects.values_list("status", flat=True)) <= set(Status.values)
    updated = list(Ticket.objects.values_list("updated_at", flat=True))
    assert len(set(updated)) == TICKETS, "distinct updated_at, as cursor pagination would see in production"
    # Most tickets are done, a few are not, and some have tags and an assignee.
    statuses = Counter(Ticket.objects.values_list("status", flat=True))
    assert statuses[Status.CLOSED] + statuses[Status.SOLVED] > TICKETS * 0.7
    assert Ticket.objects.exclude(tags=[]).exists()
    assert Ticket.objects.exclude(assignee=None).exists()
    for ticket in Ticket.objects.all():
        assert ticket.created_at <= ticket.updated_at
        assert ticket.messages.order_by("created_at").first().direction == "in"


def test_identities_are_stored_normalized_and_match_the_ticket_channel(seeded):
    for identity in Identity.objects.all():
        assert normalize_address(identity.channel, identity.address) == identity.address
    channels = {(i.customer_id, i.channel) for i in Identity.objects.all()}
    for customer_id, channel in Ticket.objects.values_list("customer_id", "channel"):
        assert (customer_id, channel) in channels


def test_selectors_and_api_see_the_seeded_tickets(seeded, api_client):
    admin = User.objects.get(username=ADMIN_USERNAME)
    agent = User.objects.get(username=AGENT_USERNAME.format(4))  # in two teams
    assert selectors.tickets_visible_to(admin).count() == TICKETS
    team_ids = set(agent.teams.values_list("id", flat=True))
    assert len(team_ids) == 2
    visible = selectors.tickets_visible_to(agent)
    assert 0 < visible.count() < TICKETS
    for ticket in selectors.ticket_inbox(agent):
        assert ticket.team_id in team_ids or ticket.team_id is None or ticket.assignee_id == agent.pk

    page = api_client(admin).get("/api/v1/tickets/").json()
    assert len(page["results"]) == 50 and page["next"]
    assert page["results"][0]["updated_at"] > page["results"][-1]["updated_at"]


def test_seeded_data_keeps_working_with_the_services(seeded):
    """Sequences were moved past the COPYed ids; seeded Message-IDs thread replies."""
    original = Message.objects.filter(channel="email", direction="in").select_related("ticket").first()
    address = Identity.objects.get(customer_id=original.customer_id, channel="email").address
    received = inbound.receive(
        InboundMessage(
            channel="email",
            external_id="<reply-to-seeded@example.com>",
            sender_address=address,
            text="Any news?",
            in_reply_to=(original.external_id,),
        )
    )
    if original.ticket.status == Status.CLOSED:
        assert received.ticket_created and received.ticket.follow_up_of_id == original.ticket_id
    else:
        assert received.ticket.pk == original.ticket_id
    assert received.message.pk > Message.objects.exclude(pk=received.message.pk).latest("pk").pk
    assert received.ticket.number > 0
