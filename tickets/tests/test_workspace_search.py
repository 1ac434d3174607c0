"""The workspace search page: the top bar's box, results as the list's rows with the matched words marked,
keyset "Show more", and a clear 400 for a query that cannot be searched (tickets.views.search)."""

import pytest
from django.urls import reverse

from conftest import inbound_message, unique
from tickets import inbound, lifecycle
from tickets.models import Ticket
from tickets.views import search as search_view

pytestmark = pytest.mark.django_db

URL = reverse("search")


def received(text: str, *, subject: str = "") -> Ticket:
    message = inbound_message(
        text=text,
        subject=subject or unique("Subject"),
        sender_address=f"{unique('customer')}@example.com",
        new_conversation=True,
    )
    return inbound.receive(message).ticket


def found(response) -> list[int]:
    return [ticket.pk for ticket in response.context["rows"]]


def test_anonymous_visitor_is_sent_to_sign_in(client):
    response = client.get(URL, {"q": "refund"})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")


def test_an_agent_never_finds_another_teams_ticket_a_supervisor_does(client, alice, bob, carol, tech):
    tech_ticket = received("The router firmware refund is overdue")
    lifecycle.update(tech_ticket, actor=bob, team=tech)

    client.force_login(alice)
    for_alice = client.get(URL, {"q": "firmware"})
    client.force_login(bob)
    for_bob = client.get(URL, {"q": "firmware"})
    client.force_login(carol)
    for_carol = client.get(URL, {"q": "firmware"})

    assert for_alice.status_code == 200 and found(for_alice) == []
    assert tech_ticket.subject not in for_alice.content.decode()
    assert found(for_bob) == [tech_ticket.pk]
    assert found(for_carol) == [tech_ticket.pk]


def test_results_are_list_rows_with_the_matched_words_marked_and_customer_text_escaped(client, alice, ivan):
    ticket = received(
        'My refunds: <script>alert("x")</script> <b onclick="x()">2 < 3 & 4</b> and the parcel never came'
    )
    client.force_login(alice)

    response = client.get(URL, {"q": "refund"})

    page = response.content.decode()
    fragment = page.split('<span class="snippet highlight">')[1].split("</span>")[0]
    assert found(response) == [ticket.pk]
    assert 'class="ticket-row"' in page and reverse("ticket", args=[ticket.pk]) in page
    assert "<mark>refunds</mark>" in fragment
    assert "2 &lt; 3 &amp; 4" in fragment  # the customer's text, escaped
    assert "<script" not in fragment and "onclick" not in fragment and "<b" not in fragment


def test_highlighted_keeps_only_bare_mark_elements():
    fragment = '<mark class="x" onclick="y()">refund</mark> <img src=x onerror=alert(1)> &lt;b&gt;'

    assert search_view.highlighted(fragment) == "<mark>refund</mark>  &lt;b&gt;"


def test_show_more_fetches_the_next_keyset_page_as_rows_only(client, alice, ivan, monkeypatch):
    monkeypatch.setattr(search_view, "PAGE_SIZE", 2)
    tickets = [received(f"Parcel {n} was never delivered") for n in range(3)]
    client.force_login(alice)

    first = client.get(URL, {"q": "parcel"})
    more = client.get(f"{URL}?{first.context['next_page']}", headers={"HX-Request": "true"})

    assert len(found(first)) == 2 and "Show more" in first.content.decode()
    assert more.status_code == 200 and "<html" not in more.content.decode()
    assert sorted(found(first) + found(more)) == sorted(ticket.pk for ticket in tickets)
    assert more.context["next_page"] == ""


def test_htmx_search_gets_the_results_region_only(client, alice, ivan):
    received("Invoice for March is missing")
    client.force_login(alice)

    response = client.get(URL, {"q": "invoice"}, headers={"HX-Request": "true"})

    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="search-region"' in page and "<html" not in page and "<mark>" in page


def test_a_search_without_matches_says_so_and_what_to_try(client, alice, ivan):
    received("Invoice for March is missing")
    client.force_login(alice)

    response = client.get(URL, {"q": "chandelier"})

    page = response.content.decode()
    assert response.status_code == 200
    assert "No tickets match “chandelier”." in page
    assert "Try fewer or other words" in page


def test_an_empty_search_asks_what_to_look_for(client, alice):
    client.force_login(alice)

    response = client.get(URL, {"q": "   "})

    assert response.status_code == 200
    assert "What are you looking for?" in response.content.decode()


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"q": "refund\x00"}, "A search cannot contain control characters."),
        ({"q": "refund " * 50}, "A search is at most 200 characters long; shorten this one."),
        ({"q": "refund", "cursor": "not-a-cursor"}, "This page of results has expired; search again."),
    ],
    ids=["nul", "300 characters", "forged cursor"],
)
def test_a_query_that_cannot_be_searched_is_a_400_page_that_says_why(client, alice, query, reason):
    client.force_login(alice)

    response = client.get(URL, query)

    page = response.content.decode()
    assert response.status_code == 400
    assert "This search cannot be run:" in page and reason in page
    assert 'id="search-box"' in page  # the whole page, so the agent can search again at once
    assert "\x00" not in page


def test_the_top_bar_has_a_labelled_search_box_and_the_shortcut_list_names_slash(client, alice):
    client.force_login(alice)

    page = client.get(reverse("inbox")).content.decode()

    assert f'action="{URL}"' in page
    assert '<label class="visually-hidden" for="search-box">Search tickets</label>' in page
    assert 'aria-keyshortcuts="/"' in page
    assert "<dt><kbd>/</kbd></dt><dd>Search tickets</dd>" in page


def test_the_search_box_keeps_the_query_being_shown(client, alice, ivan):
    client.force_login(alice)

    page = client.get(URL, {"q": 'refund "march"'}).content.decode()

    assert 'name="q" value="refund &quot;march&quot;"' in page
