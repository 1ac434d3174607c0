"""Who may open which workspace page: the sweep walks `tickets.views.urls`, so a new screen with a ticket id
in its URL is covered without touching this file (as the API's sweep in test_api_access.py)."""

import re

import pytest
from django.urls import reverse

from conftest import inbound_message
from tickets import inbound, lifecycle, replies
from tickets.models import Channel, Message, Ticket, TicketEvent
from tickets.views import urls as workspace_urls

pytestmark = pytest.mark.django_db

SECRET = "TECH-ONLY 5d1c"
# Valid for every action, so a missing access check would let the request change the ticket.
WRITE_BODY = {"mode": "reply", "text": "hijacked", "status": "solved", "priority": "urgent", "tags": "x"}
_PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>")


def ticket_patterns() -> list:
    return [pattern for pattern in workspace_urls.urlpatterns if "ticket_id" in str(pattern.pattern)]


def url_for(pattern, ticket_id: int) -> str:
    return reverse(pattern.name, kwargs={"ticket_id": ticket_id})


@pytest.fixture
def tech_ticket(tech, bob) -> Ticket:
    ticket = inbound.receive(
        inbound_message(channel=Channel.TELEGRAM, sender_address="424242", subject=SECRET, text=SECRET)
    ).ticket
    lifecycle.update(ticket, actor=bob, team=tech)
    replies.add_note(ticket, actor=bob, text=SECRET)
    return ticket


def snapshot(ticket: Ticket) -> tuple:
    row = Ticket.objects.get(pk=ticket.pk)
    return (
        row.status,
        row.priority,
        row.assignee_id,
        row.tags,
        Message.objects.filter(ticket=ticket).count(),
        TicketEvent.objects.filter(ticket=ticket).count(),
    )


def answers(client, ticket_id: int) -> list[tuple[str, int, bytes]]:
    found = []
    for pattern in ticket_patterns():
        for method in ("get", "post"):
            response = getattr(client, method)(
                url_for(pattern, ticket_id), WRITE_BODY if method == "post" else None
            )
            found.append((f"{method.upper()} {pattern.name}", response.status_code, response.content))
    return found


def test_the_sweep_covers_every_ticket_screen():
    assert {pattern.name for pattern in ticket_patterns()} >= {
        "ticket",
        "ticket-compose",
        "ticket-fields",
        "ticket-assign-to-me",
    }
    for pattern in ticket_patterns():
        assert set(_PARAMETER.findall(str(pattern.pattern))) == {"ticket_id"}, "teach the sweep this id"


@pytest.mark.parametrize("who", ["alice", "ivan"])
def test_a_ticket_one_may_not_see_looks_exactly_like_a_missing_one(request, client, tech_ticket, who):
    person = request.getfixturevalue(who)
    client.force_login(person.user if who == "ivan" else person)
    before = snapshot(tech_ticket)
    missing = Ticket.objects.order_by("-pk").values_list("pk", flat=True).first() + 10_000

    forbidden = answers(client, tech_ticket.pk)
    absent = answers(client, missing)

    for (where, status, content), (_where, missing_status, _content) in zip(forbidden, absent, strict=True):
        assert status == missing_status, where
        assert status in (404, 405), where
        assert SECRET.encode() not in content, where
    assert snapshot(tech_ticket) == before


def test_anonymous_visitors_are_sent_to_sign_in_and_change_nothing(client, tech_ticket):
    before = snapshot(tech_ticket)

    for pattern in ticket_patterns():
        response = client.post(url_for(pattern, tech_ticket.pk), WRITE_BODY)
        assert response.status_code == 302, pattern.name
        assert response["Location"].startswith(reverse("login")), pattern.name

    assert client.get(reverse("inbox"))["Location"].startswith(reverse("login"))
    assert snapshot(tech_ticket) == before


def test_the_teams_own_agent_and_a_supervisor_open_the_same_ticket(client, bob, carol, tech_ticket):
    for person in (bob, carol):
        client.force_login(person)
        assert client.get(reverse("ticket", args=[tech_ticket.pk])).status_code == 200


def test_customers_have_no_workspace(client, ivan):
    client.force_login(ivan.user)

    assert client.get(reverse("inbox")).status_code == 404


def test_the_list_shows_an_agent_only_what_the_api_shows(client, alice, tech_ticket, ivan):
    own = inbound.receive(inbound_message(new_conversation=True, subject="Billing question")).ticket
    client.force_login(alice)

    rows = client.get(reverse("inbox"), {"view": "all"}).context["rows"]

    assert [ticket.pk for ticket in rows] == [own.pk]
