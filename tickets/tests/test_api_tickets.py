"""The agent ticket API at /api/v1/tickets/: list and filters, pages, detail, create, reply, notes, PATCH."""

from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import unique
from helpdesk import events
from tickets import lifecycle, replies
from tickets.models import (
    Channel,
    Customer,
    DeliveryStatus,
    Direction,
    Identity,
    Message,
    MessageKind,
    Priority,
    Role,
    Status,
    Ticket,
    TicketEvent,
    User,
)

pytestmark = pytest.mark.django_db

TICKETS = "/api/v1/tickets/"


def make_ticket(customer: Customer, **fields) -> Ticket:
    fields.setdefault("subject", unique("Ticket"))
    fields.setdefault("channel", Channel.EMAIL)
    return Ticket.objects.create(customer=customer, **fields)


def listed_ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def all_pages(client, url: str) -> list[int]:
    ids: list[int] = []
    while url:
        response = client.get(url)
        ids.extend(listed_ids(response))
        url = response.json()["next"]
    return ids


@pytest.fixture
def olga(db) -> Customer:
    """A second customer, without a portal login."""
    customer = Customer.objects.create(name="Olga")
    Identity.objects.create(customer=customer, channel=Channel.TELEGRAM, address="424242")
    return customer


# --- list, filters, ordering, pages ---


def test_list_shows_tickets_with_customer_assignee_and_team_newest_activity_first(
    api_client, carol, alice, billing, ivan
):
    now = timezone.now()
    older = make_ticket(ivan, updated_at=now - timedelta(hours=2))
    newer = make_ticket(ivan, updated_at=now - timedelta(hours=1), assignee=alice, team=billing)

    response = api_client(carol).get(TICKETS)

    assert listed_ids(response) == [newer.pk, older.pk]
    row = response.json()["results"][0]
    assert row["number"] == newer.number
    assert row["customer"] == {"id": ivan.pk, "name": ivan.name, "locale": "ru"}
    assert row["assignee"]["username"] == "alice"
    assert row["team"] == {"id": billing.pk, "name": "Billing"}


def test_status_filter_takes_several_statuses(api_client, carol, ivan):
    new = make_ticket(ivan)
    pending = make_ticket(ivan, status=Status.PENDING)
    make_ticket(ivan, status=Status.SOLVED)

    response = api_client(carol).get(TICKETS, {"status": ["new", "pending"]})

    assert sorted(listed_ids(response)) == sorted([new.pk, pending.pk])


def test_assignee_filter_understands_me_none_and_an_id(api_client, carol, alice, bob, ivan):
    mine = make_ticket(ivan, assignee=carol)
    alices = make_ticket(ivan, assignee=alice)
    unassigned = make_ticket(ivan)
    client = api_client(carol)

    assert listed_ids(client.get(TICKETS, {"assignee": "me"})) == [mine.pk]
    assert listed_ids(client.get(TICKETS, {"assignee": "none"})) == [unassigned.pk]
    assert listed_ids(client.get(TICKETS, {"assignee": alice.pk})) == [alices.pk]
    assert listed_ids(client.get(TICKETS, {"assignee": bob.pk})) == []


def test_filters_by_team_channel_priority_tag_and_customer(api_client, carol, billing, tech, ivan, olga):
    billing_ticket = make_ticket(ivan, team=billing)
    tech_ticket = make_ticket(ivan, team=tech, priority=Priority.URGENT, tags=["vip"])
    telegram_ticket = make_ticket(olga, channel=Channel.TELEGRAM, tags=["refund", "vip"])
    client = api_client(carol)

    assert listed_ids(client.get(TICKETS, {"team": billing.pk})) == [billing_ticket.pk]
    assert listed_ids(client.get(TICKETS, {"channel": "telegram"})) == [telegram_ticket.pk]
    assert listed_ids(client.get(TICKETS, {"priority": "urgent"})) == [tech_ticket.pk]
    assert listed_ids(client.get(TICKETS, {"tag": "refund"})) == [telegram_ticket.pk]
    assert sorted(listed_ids(client.get(TICKETS, {"tag": " VIP "}))) == sorted(
        [tech_ticket.pk, telegram_ticket.pk]
    )
    assert listed_ids(client.get(TICKETS, {"customer": olga.pk})) == [telegram_ticket.pk]
    assert listed_ids(client.get(TICKETS, {"customer": ivan.pk, "team": tech.pk})) == [tech_ticket.pk]


def test_updated_since_keeps_tickets_changed_at_or_after_the_time(api_client, carol, ivan):
    now = timezone.now()
    make_ticket(ivan, updated_at=now - timedelta(days=3))
    recent = make_ticket(ivan, updated_at=now - timedelta(hours=1))

    since = (now - timedelta(days=1)).isoformat()
    response = api_client(carol).get(TICKETS, {"updated_since": since})

    assert listed_ids(response) == [recent.pk]


def test_updated_since_takes_any_utc_offset_python_reads(api_client, carol, ivan):
    # -22:40 is a valid ISO 8601 offset that PostgreSQL refuses (it stops at ±15:59): compared in UTC.
    now = timezone.now().replace(microsecond=0)
    make_ticket(ivan, updated_at=now - timedelta(days=3))
    recent = make_ticket(ivan, updated_at=now - timedelta(hours=1))
    far_west = timezone.get_fixed_timezone(-(22 * 60 + 40))

    since = (now - timedelta(days=1)).astimezone(far_west).isoformat()
    response = api_client(carol).get(TICKETS, {"updated_since": since})

    assert since.endswith("-22:40")
    assert listed_ids(response) == [recent.pk]


@pytest.mark.parametrize("field", ["updated_at", "created_at", "number"])
def test_ordering_by_a_field_both_ways(api_client, carol, ivan, field):
    now = timezone.now()
    # Created in number order; created_at and updated_at run the other way round.
    tickets = [
        make_ticket(ivan, created_at=now - timedelta(minutes=i), updated_at=now - timedelta(minutes=i))
        for i in range(3)
    ]
    ascending = sorted(tickets, key=lambda ticket: getattr(ticket, field) if field != "number" else ticket.pk)
    client = api_client(carol)

    assert listed_ids(client.get(TICKETS, {"ordering": field})) == [t.pk for t in ascending]
    assert listed_ids(client.get(TICKETS, {"ordering": f"-{field}"})) == [t.pk for t in reversed(ascending)]


@pytest.mark.parametrize("ordering", ["subject", "-updated_at,customer__name", "updated_at;drop"])
def test_an_order_the_list_does_not_offer_is_refused_with_the_choices(api_client, carol, ivan, ordering):
    make_ticket(ivan)

    response = api_client(carol).get(TICKETS, {"ordering": ordering})

    assert response.status_code == 400
    message = response.json()["ordering"][0]
    assert "updated_at, created_at, number" in message
    assert ordering.split(",")[-1] in message


def test_empty_ordering_terms_are_ignored(api_client, carol, ivan):
    tickets = [make_ticket(ivan) for _ in range(2)]
    client = api_client(carol)

    assert listed_ids(client.get(TICKETS, {"ordering": "number,"})) == [t.pk for t in tickets]
    assert client.get(TICKETS, {"ordering": " "}).status_code == 200


@pytest.mark.parametrize("ordering", [None, "updated_at", "-created_at", "number"])
def test_next_links_walk_every_ticket_once_even_when_times_are_equal(api_client, carol, ivan, ordering):
    now = timezone.now()
    # 120 tickets over 3 pages of 50; groups of 7 share one updated_at and created_at.
    Ticket.objects.bulk_create(
        Ticket(
            customer=ivan,
            channel=Channel.EMAIL,
            subject=f"bulk {i}",
            created_at=now - timedelta(minutes=i // 7),
            updated_at=now - timedelta(minutes=i // 7),
        )
        for i in range(120)
    )
    url = TICKETS + (f"?ordering={ordering}" if ordering else "")

    first_page = api_client(carol).get(url).json()
    walked = all_pages(api_client(carol), url)

    assert len(first_page["results"]) == 50
    assert first_page["next"] is not None and "cursor=" in first_page["next"]
    assert len(walked) == 120
    assert set(walked) == set(Ticket.objects.values_list("id", flat=True))


@pytest.mark.parametrize(
    "query, field",
    [
        ({"status": "bogus"}, "status"),
        ({"status": ["open", "bogus"]}, "status"),
        ({"priority": "whenever"}, "priority"),
        ({"channel": "fax"}, "channel"),
        ({"updated_since": "garbage"}, "updated_since"),
        ({"updated_since": ""}, "updated_since"),
        ({"updated_since": "0001-01-01T00:00:00+05:00"}, "updated_since"),
        ({"updated_since": "9999-12-31T23:00:00-05:00"}, "updated_since"),
        ({"team": ""}, "team"),
        ({"customer": ""}, "customer"),
        ({"assignee": "xyz"}, "assignee"),
        ({"assignee": "-1"}, "assignee"),
        ({"team": "abc"}, "team"),
        ({"customer": "ivan"}, "customer"),
        ({"tag": "a\x00b"}, "tag"),
    ],
)
def test_invalid_filter_values_are_400_naming_the_filter(api_client, carol, ivan, query, field):
    make_ticket(ivan)

    response = api_client(carol).get(TICKETS, query)

    assert response.status_code == 400
    assert field in response.json()


def test_huge_ids_in_filters_find_nothing_instead_of_failing(api_client, carol, ivan):
    make_ticket(ivan)
    huge = "99999999999999999999"

    for query in ({"assignee": huge}, {"team": huge}, {"customer": huge}):
        assert listed_ids(api_client(carol).get(TICKETS, query)) == []


# --- detail ---


def test_detail_includes_messages_and_events(api_client, carol, alice, ivan, captured_events):
    ticket = make_ticket(ivan, status=Status.OPEN)
    Message.objects.create(
        ticket=ticket, direction=Direction.IN, channel=Channel.EMAIL, customer=ivan, body_text="Где счёт?"
    )
    replies.add_note(ticket, actor=alice, text="Checking with finance")
    lifecycle.update(ticket, actor=alice, priority=Priority.HIGH)

    response = api_client(carol).get(f"{TICKETS}{ticket.pk}/")

    assert response.status_code == 200
    detail = response.json()
    assert detail["id"] == ticket.pk and detail["subject"] == ticket.subject
    assert [(m["direction"], m["kind"], m["body_text"]) for m in detail["messages"]] == [
        ("in", "message", "Где счёт?"),
        ("out", "internal_note", "Checking with finance"),
    ]
    assert [e["name"] for e in detail["events"]] == [events.NOTE_ADDED, events.TICKET_UPDATED]
    assert detail["events"][1]["changes"] == {"priority": ["normal", "high"]}
    assert detail["events"][1]["actor"]["username"] == "alice"


@pytest.mark.parametrize("ticket_id", ["0", "99999999999999999999", "missing"])
def test_unknown_ticket_is_404(api_client, carol, ivan, ticket_id):
    make_ticket(ivan)
    if ticket_id == "missing":
        ticket_id = str(Ticket.objects.order_by("-id").first().pk + 1000)

    response = api_client(carol).get(f"{TICKETS}{ticket_id}/")

    assert response.status_code == 404


# --- create ---


def test_create_ticket_for_a_customer_queues_the_first_message(
    api_client, alice, billing, ivan, captured_events
):
    response = api_client(alice).post(
        TICKETS,
        {
            "customer": ivan.pk,
            "subject": "Ваш счёт",
            "text": "Счёт во вложении",
            "channel": "email",
            "priority": "high",
            "team": billing.pk,
            "assignee": alice.pk,
            "tags": ["Invoice", "invoice ", "Late Payment"],
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    created = response.json()
    ticket = Ticket.objects.get(pk=created["id"])
    assert ticket.customer == ivan
    assert (ticket.subject, ticket.channel, ticket.priority) == ("Ваш счёт", "email", "high")
    assert (ticket.team, ticket.assignee) == (billing, alice)
    assert ticket.tags == ["invoice", "late_payment"]
    assert ticket.status == Status.OPEN
    assert ticket.first_response_at is not None
    [message] = created["messages"]
    assert message["direction"] == "out" and message["body_text"] == "Счёт во вложении"
    assert message["delivery_status"] == DeliveryStatus.QUEUED
    assert events.TICKET_CREATED in captured_events.names
    assert events.MESSAGE_QUEUED in captured_events.names


def test_created_ticket_defaults_to_the_api_channel(api_client, alice, ivan):
    response = api_client(alice).post(
        TICKETS, {"customer": ivan.pk, "subject": "Hi", "text": "Hello"}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["channel"] == Channel.API


@pytest.mark.parametrize(
    "body, field",
    [
        ({"subject": "No customer", "text": "x"}, "customer"),
        ({"customer": "CUSTOMER", "text": "x"}, "subject"),
        ({"customer": "CUSTOMER", "subject": "Empty", "text": "  "}, "text"),
        ({"customer": "CUSTOMER", "subject": "s", "text": "x", "priority": "asap"}, "priority"),
        ({"customer": "CUSTOMER", "subject": "s", "text": "x", "channel": "fax"}, "channel"),
        ({"customer": "CUSTOMER", "subject": "s", "text": "x", "tags": "vip"}, "tags"),
        ({"customer": "CUSTOMER", "subject": "s", "text": "x", "team": 99999999999999999999}, "team"),
        ({"customer": 99999999999999999999, "subject": "s", "text": "x"}, "customer"),
        ({"customer": "ghost", "subject": "s", "text": "x"}, "customer"),
    ],
)
def test_create_with_missing_or_invalid_fields_is_400_with_field_messages(
    api_client, alice, ivan, body, field
):
    body = {key: ivan.pk if value == "CUSTOMER" else value for key, value in body.items()}
    if body.get("customer") == "ghost":
        body["customer"] = Customer.objects.order_by("-id").first().pk + 1000

    response = api_client(alice).post(TICKETS, body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert Ticket.objects.count() == 0


def test_create_with_a_customer_user_as_assignee_is_400(api_client, alice, ivan):
    response = api_client(alice).post(
        TICKETS, {"customer": ivan.pk, "subject": "s", "text": "x", "assignee": ivan.user.pk}, format="json"
    )

    assert response.status_code == 400
    assert "assignee" in response.json()
    assert Ticket.objects.count() == 0


# --- reply and notes ---


def test_reply_creates_a_queued_outbound_message_and_a_queued_event(api_client, alice, ivan, captured_events):
    ticket = make_ticket(ivan)

    response = api_client(alice).post(
        f"{TICKETS}{ticket.pk}/reply/", {"text": "Счёт отправлен"}, format="json"
    )

    assert response.status_code == 201, response.content
    reply = response.json()
    assert reply["direction"] == "out" and reply["kind"] == "message"
    assert reply["delivery_status"] == DeliveryStatus.QUEUED
    assert reply["author"]["username"] == "alice"
    message = Message.objects.get(pk=reply["id"])
    assert message.ticket == ticket and message.channel == Channel.EMAIL
    queued = TicketEvent.objects.get(ticket=ticket, name=events.MESSAGE_QUEUED)
    assert queued.message == message and queued.actor == alice
    assert captured_events.names == [events.MESSAGE_QUEUED, events.TICKET_UPDATED]
    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN


def test_reply_after_a_new_customer_message_answers_409_with_what_arrived(api_client, alice, bob, ivan):
    ticket = make_ticket(ivan)
    seen = replies.send_reply(ticket, actor=alice, text="Проверим").pk
    bobs_reply = replies.send_reply(ticket, actor=bob, text="Уже проверил")

    response = api_client(alice).post(
        f"{TICKETS}{ticket.pk}/reply/", {"text": "Счёт отправлен", "seen_message_id": seen}, format="json"
    )

    assert response.status_code == 409, response.content
    assert response.json() == {
        "code": "stale_reply",
        "detail": response.json()["detail"],
        "arrived": [bobs_reply.pk],
    }
    assert response.json()["detail"]
    assert Message.objects.filter(ticket=ticket).count() == 2


def test_confirmed_reply_is_sent_after_a_stale_reply_refusal(api_client, alice, bob, ivan):
    ticket = make_ticket(ivan)
    seen = replies.send_reply(ticket, actor=alice, text="Проверим").pk
    replies.send_reply(ticket, actor=bob, text="Уже проверил")

    response = api_client(alice).post(
        f"{TICKETS}{ticket.pk}/reply/",
        {"text": "Счёт отправлен", "seen_message_id": seen, "confirm": True},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert Message.objects.get(pk=response.json()["id"]).body_text == "Счёт отправлен"


def test_reply_can_set_the_status_too(api_client, alice, ivan):
    ticket = make_ticket(ivan, status=Status.OPEN)

    response = api_client(alice).post(
        f"{TICKETS}{ticket.pk}/reply/",
        {"text": "Waiting for your answer", "status": "pending"},
        format="json",
    )

    assert response.status_code == 201
    ticket.refresh_from_db()
    assert ticket.status == Status.PENDING
    updated = TicketEvent.objects.get(ticket=ticket, name=events.TICKET_UPDATED)
    assert updated.changes["status"] == ["open", "pending"]


@pytest.mark.parametrize("status", ["closed", "new", "bogus"])
def test_reply_refuses_statuses_a_reply_cannot_set(api_client, alice, ivan, status):
    ticket = make_ticket(ivan, status=Status.OPEN)

    response = api_client(alice).post(
        f"{TICKETS}{ticket.pk}/reply/", {"text": "x", "status": status}, format="json"
    )

    assert response.status_code == 400
    assert "status" in response.json()
    assert not ticket.messages.exists()


@pytest.mark.parametrize("endpoint", ["reply", "notes"])
@pytest.mark.parametrize("body", [{}, {"text": ""}, {"text": "   \n"}, {"html": "  "}])
def test_empty_reply_or_note_is_400(api_client, alice, ivan, endpoint, body):
    ticket = make_ticket(ivan)

    response = api_client(alice).post(f"{TICKETS}{ticket.pk}/{endpoint}/", body, format="json")

    assert response.status_code == 400
    assert "text" in response.json()
    assert not ticket.messages.exists()


def test_reply_to_a_closed_ticket_is_409_ticket_closed(api_client, alice, ivan):
    ticket = make_ticket(ivan, status=Status.CLOSED)

    response = api_client(alice).post(f"{TICKETS}{ticket.pk}/reply/", {"text": "Too late?"}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "ticket_closed"
    assert not ticket.messages.exists()


def test_reply_html_is_sanitized(api_client, alice, ivan):
    ticket = make_ticket(ivan)

    response = api_client(alice).post(
        f"{TICKETS}{ticket.pk}/reply/",
        {"html": "<p>Hi <img src=x onerror=alert(1)><script>x()</script></p>"},
        format="json",
    )

    assert response.status_code == 201
    assert "onerror" not in response.json()["body_html"]
    assert "script" not in response.json()["body_html"]
    assert response.json()["body_text"] == "Hi"


def test_note_is_internal_and_never_queued_for_delivery(api_client, alice, ivan, captured_events):
    ticket = make_ticket(ivan)

    response = api_client(alice).post(
        f"{TICKETS}{ticket.pk}/notes/", {"text": "Customer is VIP"}, format="json"
    )

    assert response.status_code == 201
    note = response.json()
    assert note["kind"] == MessageKind.INTERNAL_NOTE
    assert note["delivery_status"] == ""
    assert captured_events.names == [events.NOTE_ADDED]
    ticket.refresh_from_db()
    assert ticket.status == Status.NEW
    assert ticket.first_response_at is None


def test_note_on_a_closed_ticket_is_allowed(api_client, alice, ivan):
    ticket = make_ticket(ivan, status=Status.CLOSED)

    response = api_client(alice).post(
        f"{TICKETS}{ticket.pk}/notes/", {"text": "For the record"}, format="json"
    )

    assert response.status_code == 201


# --- PATCH ---


def test_patch_changes_several_fields_in_one_event_with_before_and_after(
    api_client, carol, alice, billing, tech, ivan, captured_events
):
    ticket = make_ticket(ivan, status=Status.OPEN, team=billing, tags=["old"])

    response = api_client(carol).patch(
        f"{TICKETS}{ticket.pk}/",
        {
            "status": "pending",
            "priority": "urgent",
            "assignee": alice.pk,
            "team": tech.pk,
            "tags": ["VIP", "b c"],
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    detail = response.json()
    assert (detail["status"], detail["priority"]) == ("pending", "urgent")
    assert detail["assignee"]["id"] == alice.pk and detail["team"]["id"] == tech.pk
    assert detail["tags"] == ["b_c", "vip"]
    [updated] = TicketEvent.objects.filter(ticket=ticket, name=events.TICKET_UPDATED)
    assert updated.actor == carol
    assert updated.changes == {
        "status": ["open", "pending"],
        "priority": ["normal", "urgent"],
        "assignee": [None, alice.pk],
        "team": [billing.pk, tech.pk],
        "tags": [["old"], ["b_c", "vip"]],
    }
    assert detail["events"][-1]["changes"] == updated.changes
    assert captured_events.names == [events.TICKET_UPDATED]


def test_patch_can_unassign_and_unroute(api_client, carol, alice, billing, ivan):
    ticket = make_ticket(ivan, assignee=alice, team=billing)

    response = api_client(carol).patch(
        f"{TICKETS}{ticket.pk}/", {"assignee": None, "team": None}, format="json"
    )

    assert response.status_code == 200
    ticket.refresh_from_db()
    assert ticket.assignee is None and ticket.team is None


def test_patch_that_changes_nothing_writes_no_event(api_client, carol, ivan):
    ticket = make_ticket(ivan, priority=Priority.HIGH, tags=["vip"])
    before = ticket.updated_at

    response = api_client(carol).patch(
        f"{TICKETS}{ticket.pk}/", {"priority": "high", "tags": ["VIP"]}, format="json"
    )

    assert response.status_code == 200
    assert not TicketEvent.objects.filter(ticket=ticket).exists()
    ticket.refresh_from_db()
    assert ticket.updated_at == before


@pytest.mark.parametrize(
    "body, field",
    [
        ({"status": "bogus"}, "status"),
        ({"priority": 3}, "priority"),
        ({"assignee": "alice"}, "assignee"),
        ({"assignee": 99999999999999999999}, "assignee"),
        ({"team": 99999999999999999999}, "team"),
        ({"tags": "vip"}, "tags"),
        ({"tags": ["x" * 65]}, "tags"),
        ({"subject": "x" * 256}, "subject"),
        ({"custom_fields": ["not", "a", "dict"]}, "custom_fields"),
    ],
)
def test_patch_with_invalid_fields_is_400_with_field_messages(api_client, carol, ivan, body, field):
    ticket = make_ticket(ivan)

    response = api_client(carol).patch(f"{TICKETS}{ticket.pk}/", body, format="json")

    assert response.status_code == 400
    assert isinstance(response.json()[field], list | dict)
    assert not TicketEvent.objects.filter(ticket=ticket).exists()


def test_patch_assigning_a_customer_user_is_400(api_client, carol, ivan):
    ticket = make_ticket(ivan)

    response = api_client(carol).patch(f"{TICKETS}{ticket.pk}/", {"assignee": ivan.user.pk}, format="json")

    assert response.status_code == 400
    assert "assignee" in response.json()
    ticket.refresh_from_db()
    assert ticket.assignee is None


def test_patch_assigning_a_deactivated_agent_is_400(api_client, carol, ivan):
    gone = User.objects.create_user("gone", role=Role.AGENT, is_active=False)
    ticket = make_ticket(ivan)

    response = api_client(carol).patch(f"{TICKETS}{ticket.pk}/", {"assignee": gone.pk}, format="json")

    assert response.status_code == 400
    assert "assignee" in response.json()


@pytest.mark.parametrize(
    "body, code",
    [
        ({"status": "open"}, "invalid_transition"),
        ({"priority": "urgent"}, "ticket_closed"),
        ({"tags": ["late"]}, "ticket_closed"),
    ],
)
def test_changing_a_closed_ticket_is_409_with_a_code(api_client, carol, ivan, body, code):
    ticket = make_ticket(ivan, status=Status.CLOSED)

    response = api_client(carol).patch(f"{TICKETS}{ticket.pk}/", body, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == code
    ticket.refresh_from_db()
    assert (ticket.status, ticket.priority, ticket.tags) == (Status.CLOSED, Priority.NORMAL, [])
    assert not TicketEvent.objects.filter(ticket=ticket).exists()


def test_moving_a_ticket_back_to_new_is_409(api_client, carol, ivan):
    ticket = make_ticket(ivan, status=Status.OPEN)

    response = api_client(carol).patch(f"{TICKETS}{ticket.pk}/", {"status": "new"}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"


@pytest.mark.parametrize(
    "method, path",
    [("post", ""), ("patch", "{id}/"), ("post", "{id}/reply/"), ("post", "{id}/notes/")],
)
def test_malformed_json_body_is_400(api_client, carol, ivan, method, path):
    ticket = make_ticket(ivan)
    url = TICKETS + path.format(id=ticket.pk)

    response = getattr(api_client(carol), method)(
        url, '{"text": "unterminated', content_type="application/json"
    )

    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


def test_patch_of_an_unknown_ticket_is_404(api_client, carol):
    response = api_client(carol).patch(f"{TICKETS}99999999999999999999/", {"priority": "high"}, format="json")

    assert response.status_code == 404


def test_routing_a_ticket_to_a_team_you_cannot_see_answers_with_the_result_not_404(
    api_client, alice, tech, ivan, captured_events
):
    created = api_client(alice).post(
        TICKETS,
        {
            "customer": ivan.pk,
            "subject": "For Tech",
            "text": "Handing over",
            "channel": "email",
            "team": tech.pk,
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    ticket_id = created.json()["id"]
    assert created.json()["team"]["id"] == tech.pk

    unassigned = api_client(alice).patch(f"{TICKETS}{ticket_id}/", {"priority": "high"}, format="json")
    assert unassigned.status_code == 404  # now Tech's, no longer alice's to see


def test_opening_a_ticket_on_a_channel_the_customer_has_no_address_on_is_refused(api_client, alice, ivan):
    response = api_client(alice).post(
        TICKETS, {"customer": ivan.pk, "subject": "Hi", "text": "Hello", "channel": "telegram"}, format="json"
    )

    assert response.status_code == 400
    assert "channel" in response.json()
