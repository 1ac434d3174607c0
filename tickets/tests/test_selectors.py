"""tickets.selectors: who sees which rows, one 404 for missing and forbidden, query counts that stay flat."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.http import Http404

from conftest import inbound_message, unique
from tickets import inbound, lifecycle, replies, selectors
from tickets.api.serializers import TicketListRowSerializer, TicketRowSerializer
from tickets.channels import InboundAttachment
from tickets.models import Channel, Customer, Identity, Role, Team, Ticket, User

pytestmark = pytest.mark.django_db

# Generous bounds; the tests below also check the count is the same for few rows and many.
MAX_LIST_QUERIES = 8


def make_ticket(customer: Customer, **fields) -> Ticket:
    fields.setdefault("subject", unique("Ticket"))
    fields.setdefault("channel", Channel.EMAIL)
    return Ticket.objects.create(customer=customer, **fields)


def add_busy_tickets(count: int) -> None:
    """Tickets that each bring their own customer, identity, assignee and team, as real inboxes do."""
    for _ in range(count):
        name = unique("row")
        customer = Customer.objects.create(name=name)
        Identity.objects.create(customer=customer, channel=Channel.EMAIL, address=f"{name}@example.com")
        agent = User.objects.create_user(name, role=Role.AGENT)
        team = Team.objects.create(name=name)
        team.members.add(agent)
        make_ticket(customer, assignee=agent, team=team, tags=["vip", name])


# --- visibility ---


def test_agents_see_their_teams_their_own_and_unrouted_tickets(alice, bob, carol, dave, billing, tech, ivan):
    billing_ticket = make_ticket(ivan, team=billing)
    tech_ticket = make_ticket(ivan, team=tech)
    tech_for_alice = make_ticket(ivan, team=tech, assignee=alice)
    unrouted = make_ticket(ivan)

    def visible(user) -> set[int]:
        return set(selectors.tickets_visible_to(user).values_list("id", flat=True))

    assert visible(alice) == {billing_ticket.pk, tech_for_alice.pk, unrouted.pk}
    assert visible(bob) == {tech_ticket.pk, tech_for_alice.pk, unrouted.pk}
    everything = {billing_ticket.pk, tech_ticket.pk, tech_for_alice.pk, unrouted.pk}
    assert visible(carol) == visible(dave) == everything
    assert visible(ivan.user) == visible(AnonymousUser()) == set()


def test_an_agent_in_two_teams_sees_both_queues(alice, tech, billing, ivan):
    tech.members.add(alice)
    tickets = {make_ticket(ivan, team=billing).pk, make_ticket(ivan, team=tech).pk}

    assert set(selectors.tickets_visible_to(alice).values_list("id", flat=True)) == tickets


def test_a_superuser_with_the_agent_role_sees_everything(tech, ivan):
    root = User.objects.create_superuser("root", "root@support.test", "pw", role=Role.AGENT)
    tech_ticket = make_ticket(ivan, team=tech)

    assert selectors.ticket_for_agent(root, tech_ticket.pk) == tech_ticket


@pytest.mark.parametrize("ticket_id", ["forbidden", "missing", 0, -1, 2**63, "12abc", None, "1.5"])
def test_missing_and_forbidden_tickets_are_the_same_404(alice, tech, ivan, ticket_id):
    tech_ticket = make_ticket(ivan, team=tech)
    ticket_id = {"forbidden": tech_ticket.pk, "missing": tech_ticket.pk + 1000}.get(ticket_id, ticket_id)

    with pytest.raises(Http404):
        selectors.ticket_for_agent(alice, ticket_id)


def test_ticket_for_agent_can_lock_the_row(alice, billing, ivan):
    ticket = make_ticket(ivan, team=billing, assignee=alice)

    with transaction.atomic():
        locked = selectors.ticket_for_agent(alice, ticket.pk, lock=True)

    assert locked == ticket and locked.assignee == alice


def test_customers_get_their_own_tickets_only(ivan):
    own = inbound.receive(inbound_message()).ticket
    other = Customer.objects.create(name="Other")
    others = make_ticket(other)

    assert list(selectors.customer_tickets(ivan.user)) == [own]
    assert selectors.ticket_for_customer(ivan.user, own.pk) == own
    with pytest.raises(Http404):
        selectors.ticket_for_customer(ivan.user, others.pk)


def test_agents_without_a_customer_profile_have_no_customer_tickets(alice, ivan):
    make_ticket(ivan)

    assert not selectors.customer_tickets(alice).exists()
    assert not selectors.customer_tickets(AnonymousUser()).exists()


def test_timeline_is_in_order_and_can_leave_internal_notes_out(alice, ivan):
    ticket = inbound.receive(inbound_message(text="first")).ticket
    replies.add_note(ticket, actor=alice, text="note")
    replies.send_reply(ticket, actor=alice, text="answer")

    assert [m.body_text for m in selectors.ticket_timeline(ticket)] == ["first", "note", "answer"]
    assert [m.body_text for m in selectors.ticket_timeline(ticket, include_internal=False)] == [
        "first",
        "answer",
    ]


def test_attachments_follow_the_visibility_of_their_ticket(alice, bob, tech, ivan):
    received = inbound.receive(inbound_message(attachments=(InboundAttachment("a.txt", "text/plain", b"a"),)))
    lifecycle.update(received.ticket, actor=bob, team=tech)
    attachment = received.message.attachments.get()

    assert selectors.attachment_for_agent(bob, attachment.pk) == attachment
    with pytest.raises(Http404):
        selectors.attachment_for_agent(alice, attachment.pk)


def test_customers_and_teams_are_for_agents(alice, ivan, billing):
    assert list(selectors.customers_for_agent(alice)) == [ivan]
    assert list(selectors.teams_for_agent(alice)) == [billing]
    assert not selectors.customers_for_agent(ivan.user).exists()
    assert not selectors.teams_for_agent(ivan.user).exists()
    with pytest.raises(Http404):
        selectors.customer_for_agent(ivan.user, ivan.pk)


# --- query counts ---


def test_ticket_list_query_count_does_not_grow_with_rows(api_client, carol, django_assert_max_num_queries):
    client = api_client(carol)
    add_busy_tickets(5)
    with django_assert_max_num_queries(MAX_LIST_QUERIES) as few:
        assert len(client.get("/api/v1/tickets/").json()["results"]) == 5

    add_busy_tickets(25)
    with django_assert_max_num_queries(MAX_LIST_QUERIES) as many:
        assert len(client.get("/api/v1/tickets/").json()["results"]) == 30

    assert len(many) == len(few)


def test_ticket_list_for_a_team_agent_stays_flat_too(
    api_client, alice, billing, ivan, django_assert_max_num_queries
):
    def listed(expected: int) -> int:
        with django_assert_max_num_queries(MAX_LIST_QUERIES) as captured:
            assert len(api_client(alice).get("/api/v1/tickets/").json()["results"]) == expected
        return len(captured)

    for _ in range(5):
        make_ticket(ivan, team=billing, assignee=alice, tags=["vip"])
    few = listed(5)
    for _ in range(25):
        make_ticket(ivan, team=billing, assignee=alice, tags=["vip"])

    assert listed(30) == few


def test_ticket_detail_query_count_does_not_grow_with_messages(
    api_client, carol, alice, ivan, django_assert_max_num_queries
):
    def detail_queries(ticket: Ticket) -> int:
        with django_assert_max_num_queries(12) as captured:
            assert api_client(carol).get(f"/api/v1/tickets/{ticket.pk}/").status_code == 200
        return len(captured)

    def busy_ticket(messages: int) -> Ticket:
        root = inbound.receive(inbound_message(new_conversation=True))
        ticket = root.ticket
        for i in range(messages):
            attachment = InboundAttachment(f"{i}.txt", "text/plain", b"x")
            inbound.receive(
                inbound_message(in_reply_to=(root.message.external_id,), attachments=(attachment,))
            )
            replies.send_reply(ticket, actor=alice, text=f"answer {i}")
            lifecycle.update(ticket, actor=alice, tags=[f"t{i}"])
        assert ticket.messages.count() == 1 + 2 * messages
        return ticket

    quiet = detail_queries(busy_ticket(1))
    busy = detail_queries(busy_ticket(10))

    assert busy == quiet


def test_customer_list_and_detail_query_counts_do_not_grow(api_client, alice, django_assert_max_num_queries):
    def counts() -> tuple[int, int]:
        customer = Customer.objects.order_by("id").first()
        with django_assert_max_num_queries(MAX_LIST_QUERIES) as listing:
            api_client(alice).get("/api/v1/customers/")
        with django_assert_max_num_queries(MAX_LIST_QUERIES) as detail:
            api_client(alice).get(f"/api/v1/customers/{customer.pk}/")
        return len(listing), len(detail)

    add_busy_tickets(5)
    few = counts()
    add_busy_tickets(25)
    first = Customer.objects.order_by("id").first()
    for _ in range(10):
        make_ticket(first, assignee=alice)

    assert counts() == few


def test_portal_list_query_count_does_not_grow(api_client, ivan, django_assert_max_num_queries):
    def portal_queries() -> int:
        with django_assert_max_num_queries(MAX_LIST_QUERIES) as captured:
            assert api_client(ivan.user).get("/api/v1/portal/tickets/").status_code == 200
        return len(captured)

    make_ticket(ivan)
    few = portal_queries()
    for _ in range(20):
        make_ticket(ivan)

    assert portal_queries() == few


def test_fast_ticket_list_rows_equal_the_generic_serializer(alice, bob, billing, ivan, captured_events):
    plain = inbound.receive(inbound_message()).ticket
    routed = inbound.receive(
        inbound_message(new_conversation=True, external_id="<routed@customer.test>")
    ).ticket
    lifecycle.update(routed, actor=alice, team=billing, assignee=alice, tags=["vip", "refund"])
    replies.send_reply(routed, actor=alice, text="Looking into it", status="solved")
    lifecycle.change_status(routed, status="closed", actor=alice)
    follow_up = inbound.receive(inbound_message(in_reply_to=("<routed@customer.test>",))).ticket
    assert follow_up.follow_up_of_id == routed.pk

    rows = selectors.ticket_inbox(alice).filter(pk__in=[plain.pk, routed.pk, follow_up.pk])
    assert len(rows) == 3
    for ticket in rows:
        assert TicketListRowSerializer(ticket).data == TicketRowSerializer(ticket).data
    assert any(row.first_response_at and row.solved_at and row.assignee for row in rows)
