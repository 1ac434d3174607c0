"""Ticket search: word forms in both languages, exact numbers and addresses, access, ranking, pages, and
the queries a stranger types (tickets.search, selectors.search_tickets, GET /api/v1/search/)."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from conftest import inbound_message, unique
from tickets import inbound, search, selectors
from tickets.api.serializers import TicketListRowSerializer
from tickets.models import Channel, Customer, Identity, Ticket, User
from tickets.models.search import SEARCHED_CHARACTERS

pytestmark = pytest.mark.django_db

URL = reverse("api:ticket-search")


def received(text: str, *, subject: str = "", **fields) -> Ticket:
    """A new ticket as a customer's email opens it (through receive(), the one way in)."""
    fields.setdefault("sender_address", f"{unique('customer')}@example.com")
    message = inbound_message(
        text=text, subject=subject or unique("Subject"), new_conversation=True, **fields
    )
    return inbound.receive(message).ticket


def routed(ticket: Ticket, **fields) -> Ticket:
    Ticket.objects.filter(pk=ticket.pk).update(**fields)
    ticket.refresh_from_db()
    return ticket


def found(agent: User, query: str) -> list[int]:
    return [hit.ticket.pk for hit in selectors.search_tickets(agent, query, limit=100).hits]


# --- what a query finds ---


def test_russian_word_forms_find_each_other(carol):
    refund = received("Прошу оформить возврат денег за заказ.")
    delivery = received("Когда будет доставка?")

    assert found(carol, "возврата") == [refund.pk]
    assert found(carol, "возвратом денег") == [refund.pk]
    assert found(carol, "доставку") == [delivery.pk]


def test_english_word_forms_find_each_other(carol):
    refunds = received("Where are my refunds? I asked twice.")
    received("The parcel arrived damaged.")

    assert found(carol, "refund") == [refunds.pk]
    assert found(carol, "asking") == [refunds.pk]


def test_every_message_of_a_ticket_is_searched_as_it_arrives(carol):
    ticket = received("Hello, a question about my order.", external_id="<first@example.com>")
    assert found(carol, "warranty") == []

    sender = ticket.customer.identities.get().address
    inbound.receive(
        inbound_message(
            sender_address=sender,
            text="It is about the warranty repair.",
            in_reply_to=("<first@example.com>",),
        )
    )

    assert found(carol, "warranty") == [ticket.pk]


def test_subject_and_customer_name_are_searched(carol):
    by_subject = received("Здравствуйте!", subject="Не работает роутер")
    by_name = received("Hello!", sender_name="Ольга Смирнова")

    assert found(carol, "роутеры") == [by_subject.pk]
    assert found(carol, "Смирнова") == [by_name.pk]


def test_a_ticket_number_finds_its_ticket_first(carol):
    ticket = received("Nothing special here.")
    mentioning = received(f"Please see ticket {ticket.number + 1000} too.")
    other = routed(received("Another ticket."), number=ticket.number + 1000)

    for query in (str(ticket.number), f"#{ticket.number}", f"# {ticket.number}"):
        assert found(carol, query) == [ticket.pk]
    assert found(carol, str(other.number)) == [other.pk, mentioning.pk]


def test_an_email_address_finds_the_customers_tickets_in_any_case(carol, ivan):
    first = received("First question.", sender_address="ivan@customer.test")
    second = received("Second question.", sender_address="ivan@customer.test")
    received("Someone else's question.")

    assert set(found(carol, "Ivan@Customer.TEST")) == {first.pk, second.pk}


@pytest.mark.parametrize(
    "written", ["+7 916 123-45-67", "8 (916) 123-45-67", "79161234567", "+7(916)1234567", "8-916-123-45-67"]
)
def test_a_phone_number_in_any_common_format_finds_the_caller(carol, written):
    call = received("", channel=Channel.PHONE, sender_address="+79161234567", kind="call")
    received("", channel=Channel.PHONE, sender_address="+79161234568", kind="call")

    assert found(carol, written) == [call.pk]


def test_a_telegram_user_id_or_handle_finds_the_customer(carol):
    customer = Customer.objects.create(name="Pavel")
    Identity.objects.create(
        customer=customer, channel=Channel.TELEGRAM, address="424242", display_name="@Pavel_K"
    )
    ticket = Ticket.objects.create(customer=customer, channel=Channel.TELEGRAM, subject="Chat")

    assert found(carol, "424242") == [ticket.pk]
    assert found(carol, "@pavel_k") == [ticket.pk]


# --- ranking and pages ---


def test_exact_matches_outrank_words_and_the_newest_wins_among_equals(carol):
    older = received("refund please")
    newer = received("refund please")
    routed(older, updated_at=timezone.now() - timedelta(days=2))
    routed(newer, updated_at=timezone.now() - timedelta(days=1))
    by_address = received("Hello.", sender_address="refund@example.com")

    assert found(carol, "refund") == [newer.pk, older.pk]
    assert found(carol, "refund@example.com")[0] == by_address.pk


def test_pages_follow_each_other_without_repeats_or_gaps(carol):
    tickets = {received(f"refund number {n}").pk for n in range(7)}

    seen: list[int] = []
    page = selectors.search_tickets(carol, "refund", limit=3)
    while True:
        seen += [hit.ticket.pk for hit in page.hits]
        if page.next_position is None:
            break
        page = selectors.search_tickets(carol, "refund", limit=3, after=page.next_position)

    assert sorted(seen) == sorted(tickets)
    assert len(seen) == len(set(seen))


def test_queries_per_page_do_not_grow_with_the_rows(alice):
    def queries_for(rows: int) -> int:
        for _ in range(rows):
            received(f"refund {unique('row')}")
        with CaptureQueriesContext(connection) as captured:
            assert len(selectors.search_tickets(alice, "refund", limit=50).hits) >= rows
        return len(captured)

    few, many = queries_for(2), queries_for(20)
    # The agent's teams, the ranking (in a savepoint, planner settings set and reset), who may see which,
    # the rows, the highlights.
    assert few == many <= 8


# --- who finds what ---


def test_agents_find_only_what_their_ticket_list_shows(alice, bob, carol, dave, billing, tech, ivan):
    billing_ticket = routed(received("secret refund of billing"), team=billing)
    tech_ticket = routed(received("secret refund of tech"), team=tech)
    tech_for_alice = routed(received("secret refund assigned"), team=tech, assignee=alice)
    unrouted = received("secret refund unrouted")

    assert set(found(alice, "secret refund")) == {billing_ticket.pk, tech_for_alice.pk, unrouted.pk}
    assert set(found(bob, "secret refund")) == {tech_ticket.pk, tech_for_alice.pk, unrouted.pk}
    everything = {billing_ticket.pk, tech_ticket.pk, tech_for_alice.pk, unrouted.pk}
    assert set(found(carol, "secret refund")) == set(found(dave, "secret refund")) == everything
    assert found(ivan.user, "secret refund") == found(AnonymousUser(), "secret refund") == []
    # By number and by address too: bob learns nothing of billing's ticket.
    assert found(bob, str(billing_ticket.number)) == []
    billing_address = billing_ticket.customer.identities.get().address
    assert found(bob, billing_address) == []


def test_the_api_answers_agents_only(api_client, alice, ivan):
    received("refund")

    assert api_client(None).get(URL, {"q": "refund"}).status_code == 401
    assert api_client(ivan.user).get(URL, {"q": "refund"}).status_code == 403
    assert api_client(alice).get(URL, {"q": "refund"}).status_code == 200


# --- the answer ---


def test_results_are_ticket_list_rows_with_the_fragment_highlighted(api_client, carol):
    ticket = received("Добрый день. Прошу оформить возврат денег за заказ A-123456.")

    answer = api_client(carol).get(URL, {"q": "возврата"})

    assert answer.status_code == 200
    (row,) = answer.json()["results"]
    highlight = row.pop("highlight")
    listed = TicketListRowSerializer(selectors.ticket_inbox(carol).get(pk=ticket.pk)).data
    assert row == dict(listed)
    assert "<mark>возврат</mark>" in highlight
    assert answer.json()["next"] is None


def test_the_highlight_escapes_everything_but_its_marks(api_client, carol):
    received('refund <script>alert("x")</script> & <img src=x onerror=alert(1)> \x01 1 < 2 \x02')

    (row,) = api_client(carol).get(URL, {"q": "refund"}).json()["results"]

    without_marks = row["highlight"].replace("<mark>", "").replace("</mark>", "")
    assert "<" not in without_marks and ">" not in without_marks
    assert row["highlight"].count("<mark>") == row["highlight"].count("</mark>") == 1
    assert "&lt;" in without_marks


def test_next_walks_the_pages_through_the_api(api_client, carol):
    for n in range(3):
        received(f"refund {n}")

    first = api_client(carol).get(URL, {"q": "refund", "limit": 2}).json()
    second = api_client(carol).get(first["next"]).json()

    assert len(first["results"]) == 2 and len(second["results"]) == 1
    assert second["next"] is None


# --- what strangers type ---


@pytest.mark.parametrize(
    "query",
    ["", "   ", "refund\x00", "x" * (search.MAX_QUERY_LENGTH + 1)],
    ids=["empty", "blank", "nul", "too-long"],
)
def test_unreadable_queries_are_a_400(api_client, carol, query):
    answer = api_client(carol).get(URL, {"q": query})

    assert answer.status_code == 400
    assert "q" in answer.json()


@pytest.mark.parametrize("cursor", ["nonsense", "W10", "WzEsIDIsIDNd", "WzEuMCwgIjIwMjYtMDEtMDEiLCAxXQ"])
def test_a_cursor_the_search_did_not_give_is_a_400(api_client, carol, cursor):
    answer = api_client(carol).get(URL, {"q": "refund", "cursor": cursor})

    assert answer.status_code == 400
    assert "cursor" in answer.json()


@pytest.mark.parametrize(
    "query",
    [
        "refund & | ! ( ) :* <-> '",
        "'refund':* & !",
        "\\",
        '"unclosed phrase',
        "-",
        "or",
        "the a of",
        "@",
        "#",
        "+",
        "🙂 refund",
        "x" * search.MAX_QUERY_LENGTH,
        "9" * 40,
        "refund\x01\x02\x7f",
    ],
)
def test_odd_queries_search_as_words_never_as_tsquery_syntax(api_client, carol, query):
    received("refund please")

    answer = api_client(carol).get(URL, {"q": query})

    assert answer.status_code == 200
    assert isinstance(answer.json()["results"], list)


def test_the_selector_itself_takes_any_string(carol):
    ticket = received("refund please")

    assert found(carol, "refund\x00please") == [ticket.pk]
    assert found(carol, "refund " * 500) == [ticket.pk]
    assert found(carol, "") == []


# --- the indexes ---


@pytest.mark.parametrize(
    ("table", "index"),
    [
        ("tickets_message", "message_search"),
        ("tickets_ticket", "ticket_subject_search"),
        ("tickets_customer", "customer_name_search"),
    ],
)
def test_the_search_reads_each_document_through_its_index(carol, table, index):
    received("refund please")
    with connection.cursor() as cursor:
        # A few test rows make a sequential scan cheaper; forbid it, and the index must still serve.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            "EXPLAIN " + search.candidates_sql(), search.candidates_params(search.read_query("refund"))
        )
        plan = "\n".join(line for (line,) in cursor.fetchall())
    assert f"on {index}" in plan, plan


def test_a_message_is_searched_up_to_its_first_searched_characters(carol):
    """What the customer wrote comes first; a long email's quoted history is indexed with its own message."""
    filler = "word " * (SEARCHED_CHARACTERS // 5)
    ticket = received(f"beginning {filler} quotedhistory")

    assert found(carol, "beginning") == [ticket.pk]
    assert found(carol, "quotedhistory") == []
