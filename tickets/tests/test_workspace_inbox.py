"""The workspace's ticket list: views of the left rail with counts, filters in the URL, keyset pages."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from conftest import inbound_message
from tickets import inbound, lifecycle
from tickets.models import Channel, Priority, Status, Ticket

pytestmark = pytest.mark.django_db


def open_ticket(subject: str, **fields) -> Ticket:
    return inbound.receive(inbound_message(subject=subject, new_conversation=True, **fields)).ticket


def listed(response) -> list[str]:
    return [ticket.subject for ticket in response.context["rows"]]


def test_anonymous_visitor_is_sent_to_sign_in(client):
    response = client.get(reverse("inbox"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")


def test_unassigned_view_lists_open_tickets_nobody_took_with_their_count(client, alice, ivan):
    waiting = open_ticket("Where is my invoice")
    taken = open_ticket("Taken already")
    lifecycle.assign(taken, agent=alice, actor=alice)
    client.force_login(alice)

    response = client.get(reverse("inbox"), {"view": "unassigned"})

    assert response.status_code == 200
    assert listed(response) == [waiting.subject]
    rail = {link.label: link.count for section in response.context["rail"] for link in section.links}
    assert rail["Unassigned"] == 1 and rail["My open"] == 1


def test_urgent_view_holds_urgent_and_long_waiting_tickets_oldest_first(client, alice, ivan):
    urgent = open_ticket("Card payments down")
    lifecycle.update(urgent, actor=alice, priority=Priority.URGENT)
    stale = open_ticket("Nobody answered me")
    Ticket.objects.filter(pk=stale.pk).update(updated_at=timezone.now() - timedelta(hours=5))
    open_ticket("Just arrived")
    client.force_login(alice)

    response = client.get(reverse("inbox"), {"view": "urgent"})

    assert listed(response) == [stale.subject, urgent.subject]


def test_filters_in_the_url_narrow_the_list(client, alice, ivan):
    open_ticket("By email")
    telegram = open_ticket("By Telegram", channel=Channel.TELEGRAM, sender_address="5550001")
    lifecycle.update(telegram, actor=alice, tags=["Refund"])
    client.force_login(alice)

    by_channel = client.get(reverse("inbox"), {"view": "all", "channel": "telegram"})
    by_tag = client.get(reverse("inbox"), {"view": "all", "tag": "refund"})

    assert listed(by_channel) == ["By Telegram"]
    assert listed(by_tag) == ["By Telegram"]


@pytest.mark.parametrize(
    "query",
    [{"view": "everything"}, {"status": "lost"}, {"team": "x"}, {"assignee": "robert'"}, {"cursor": "!!"}],
)
def test_unusable_filters_are_a_400_that_says_so(client, alice, query):
    client.force_login(alice)

    response = client.get(reverse("inbox"), query)

    assert response.status_code == 400
    assert b"These filters cannot be used" in response.content


def test_pages_follow_each_other_without_repeating_or_skipping_a_ticket(client, alice, ivan, monkeypatch):
    monkeypatch.setattr("tickets.views.inbox.PAGE_SIZE", 2)
    same_moment = timezone.now()
    tickets = [open_ticket(f"Question {number}") for number in range(5)]
    Ticket.objects.filter(pk__in=[ticket.pk for ticket in tickets]).update(updated_at=same_moment)
    client.force_login(alice)

    seen, query = [], {"view": "all"}
    while True:
        response = client.get(reverse("inbox"), query)
        seen += listed(response)
        if not response.context["next_page"]:
            break
        query = response.context["next_page"]
        query = dict(part.split("=") for part in query.split("&"))

    assert sorted(seen) == sorted(ticket.subject for ticket in tickets)
    assert len(seen) == 5


def test_the_list_costs_the_same_queries_for_three_rows_as_for_thirty(client, alice, bob, ivan):
    client.force_login(alice)

    def queries_for_the_list() -> int:
        client.get(reverse("inbox"), {"view": "all"})  # the session and user are cached after the first
        with CaptureQueriesContext(connection) as captured:
            response = client.get(reverse("inbox"), {"view": "all"})
        assert response.status_code == 200
        return len(captured), len(response.context["rows"])

    for number in range(3):
        lifecycle.assign(open_ticket(f"First {number}"), agent=bob, actor=alice)
    few, rows = queries_for_the_list()
    assert rows == 3
    for number in range(27):
        ticket = open_ticket(f"More {number}", channel=Channel.TELEGRAM, sender_address=f"77{number}")
        lifecycle.update(ticket, actor=alice, assignee=alice, priority=Priority.HIGH, status=Status.OPEN)
    many, rows = queries_for_the_list()

    assert rows == 30
    assert many == few


def test_rows_show_channel_customer_snippet_status_word_and_priority(client, alice, ivan):
    ticket = open_ticket("Не приходит счёт")
    lifecycle.update(ticket, actor=alice, priority=Priority.URGENT)
    client.force_login(alice)

    page = client.get(reverse("inbox"), {"view": "all"}).content.decode()

    assert "Иван Петров" in page
    assert "Здравствуйте, где мой счёт?" in page  # the latest message's snippet
    assert 'class="pill status-new">New<' in page
    assert "priority-urgent" in page and "Urgent" in page
    assert "#mail" in page  # the email channel's icon


def test_empty_view_says_why_and_what_happens_next(client, alice):
    client.force_login(alice)

    response = client.get(reverse("inbox"), {"view": "mine"})

    assert response.status_code == 200
    assert b"New ones appear here live." in response.content
