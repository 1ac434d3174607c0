"""The workspace's ticket page: the timeline, the composer, the side panel's fields, "Assign to me"."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from conftest import inbound_message
from tickets import inbound, lifecycle, replies
from tickets.channels import InboundAttachment
from tickets.models import DeliveryStatus, Message, MessageKind, Priority, Status, Ticket
from tickets.views.timeline import without_remote_images

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def ticket(ivan) -> Ticket:
    return inbound.receive(inbound_message()).ticket


def page_of(client, ticket: Ticket) -> str:
    response = client.get(reverse("ticket", args=[ticket.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_timeline_tells_customer_message_reply_note_and_field_change_apart(client, alice, ticket):
    lifecycle.update(ticket, actor=alice, priority=Priority.HIGH)
    replies.send_reply(ticket, actor=alice, text="Счёт отправлен повторно")
    replies.add_note(ticket, actor=alice, text="He is on the old tariff")
    client.force_login(alice)

    page = page_of(client, ticket)

    assert 'class="entry inbound"' in page and "Здравствуйте, где мой счёт?" in page
    assert 'class="entry outbound"' in page and "Счёт отправлен повторно" in page
    assert 'class="entry note"' in page and "Internal note" in page and "#lock" in page
    assert "Priority: Normal → High" in page
    assert 'data-delivery="queued"' in page


def test_reply_goes_out_on_the_tickets_channel_and_can_set_pending(client, alice, ticket, captured_events):
    client.force_login(alice)

    response = client.post(
        reverse("ticket-compose", args=[ticket.pk]),
        {"mode": "reply", "text": "Отправили счёт ещё раз", "then_status": "pending"},
    )

    assert response.status_code == 302 and response["Location"] == reverse("ticket", args=[ticket.pk])
    reply = Message.objects.get(ticket=ticket, direction="out")
    assert reply.body_text == "Отправили счёт ещё раз" and reply.channel == ticket.channel
    assert reply.delivery_status == DeliveryStatus.QUEUED and reply.author == alice
    assert Ticket.objects.get(pk=ticket.pk).status == Status.PENDING
    assert "message.queued" in captured_events.names


def test_composer_says_where_the_reply_goes(client, alice, ticket):
    client.force_login(alice)

    assert "Reply by email to ivan@customer.test" in page_of(client, ticket)


def test_internal_note_over_htmx_answers_with_the_ticket_region(client, alice, ticket):
    client.force_login(alice)

    response = client.post(
        reverse("ticket-compose", args=[ticket.pk]), {"mode": "note", "text": "Check the tariff"}, **HTMX
    )

    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<div class="ticket-page" id="ticket">')
    assert b"Check the tariff" in response.content
    note = Message.objects.get(ticket=ticket, kind=MessageKind.INTERNAL_NOTE)
    assert note.delivery_status == ""


def test_empty_reply_is_a_400_and_nothing_is_sent(client, alice, ticket):
    client.force_login(alice)

    response = client.post(reverse("ticket-compose", args=[ticket.pk]), {"mode": "reply", "text": "  "})

    assert response.status_code == 400
    assert not Message.objects.filter(ticket=ticket, direction="out").exists()


def test_reply_to_a_closed_ticket_is_refused_with_the_reason_and_the_draft_kept(client, alice, ticket):
    lifecycle.change_status(ticket, status=Status.CLOSED, actor=alice)
    client.force_login(alice)

    response = client.post(
        reverse("ticket-compose", args=[ticket.pk]), {"mode": "reply", "text": "Late answer"}, **HTMX
    )

    assert response.status_code == 409
    assert b"Late answer" in response.content  # the draft survives
    assert b"closed" in response.content
    assert not Message.objects.filter(ticket=ticket, direction="out").exists()


def test_reply_after_a_new_customer_message_comes_back_for_confirmation_with_the_draft_kept(
    client, alice, ticket
):
    client.force_login(alice)
    seen = Message.objects.get(ticket=ticket).pk
    assert f'name="seen_message_id" value="{seen}"' in page_of(client, ticket)
    arrived = inbound.receive(inbound_message(text="Нашёл счёт в спаме, спасибо!")).message

    response = client.post(
        reverse("ticket-compose", args=[ticket.pk]),
        {"mode": "reply", "text": "Отправили счёт ещё раз", "seen_message_id": seen},
        **HTMX,
    )

    assert response.status_code == 409
    page = response.content.decode()
    assert "Отправили счёт ещё раз" in page  # the draft survives
    arrived_list = page.split("data-arrived>")[1].split("</ol>")[0]
    assert "Нашёл счёт в спаме" in arrived_list
    assert 'name="confirm" value="1"' in page and "Send anyway" in page
    assert f'name="seen_message_id" value="{arrived.pk}"' in page
    assert not Message.objects.filter(ticket=ticket, direction="out").exists()

    client.post(
        reverse("ticket-compose", args=[ticket.pk]),
        {"mode": "reply", "text": "Отправили счёт ещё раз", "seen_message_id": seen, "confirm": "1"},
        **HTMX,
    )

    assert Message.objects.get(ticket=ticket, direction="out").body_text == "Отправили счёт ещё раз"


def test_send_anyway_keeps_the_status_the_refused_reply_asked_for(client, alice, ticket):
    client.force_login(alice)
    seen = Message.objects.get(ticket=ticket).pk
    inbound.receive(inbound_message(text="И ещё вопрос по договору"))
    reply = {"mode": "reply", "text": "Ждём ваш ответ", "seen_message_id": seen, "then_status": "pending"}

    refused = client.post(reverse("ticket-compose", args=[ticket.pk]), reply, **HTMX)

    assert refused.status_code == 409
    assert '<input type="hidden" name="then_status" value="pending">' in refused.content.decode()
    client.post(reverse("ticket-compose", args=[ticket.pk]), {**reply, "confirm": "1"}, **HTMX)
    ticket.refresh_from_db()
    assert ticket.status == "pending"


def test_a_note_is_added_whatever_arrived_since_the_page_loaded(client, alice, ticket):
    client.force_login(alice)
    seen = Message.objects.get(ticket=ticket).pk
    inbound.receive(inbound_message(text="Нашёл счёт в спаме"))

    response = client.post(
        reverse("ticket-compose", args=[ticket.pk]),
        {"mode": "note", "text": "Проверить тариф", "seen_message_id": seen},
        **HTMX,
    )

    assert response.status_code == 200
    assert Message.objects.filter(ticket=ticket, kind=MessageKind.INTERNAL_NOTE).exists()


def test_side_panel_changes_fields_through_the_lifecycle_service(client, alice, billing, ticket):
    client.force_login(alice)

    response = client.post(
        reverse("ticket-fields", args=[ticket.pk]),
        {
            "status": "open",
            "priority": "urgent",
            "assignee": alice.pk,
            "team": billing.pk,
            "tags": "Refund, vip",
        },
    )

    assert response.status_code == 302
    ticket.refresh_from_db()
    assert (ticket.status, ticket.priority, ticket.assignee, ticket.team) == (
        "open",
        "urgent",
        alice,
        billing,
    )
    assert ticket.tags == ["refund", "vip"]
    event = ticket.events.get(name="ticket.updated")
    assert event.actor == alice and set(event.changes) >= {"status", "priority", "assignee", "team", "tags"}


def test_side_panel_refuses_a_status_that_does_not_exist(client, alice, ticket):
    client.force_login(alice)

    response = client.post(
        reverse("ticket-fields", args=[ticket.pk]), {"status": "lost", "priority": "normal", "tags": ""}
    )

    assert response.status_code == 400
    assert Ticket.objects.get(pk=ticket.pk).status == Status.NEW


def test_assign_to_me_takes_the_ticket(client, alice, ticket):
    client.force_login(alice)

    response = client.post(reverse("ticket-assign-to-me", args=[ticket.pk]), **HTMX)

    assert response.status_code == 200
    assert Ticket.objects.get(pk=ticket.pk).assignee == alice
    assert b"Assign to me" not in response.content


def test_customer_html_is_shown_with_remote_images_waiting_for_show_images(client, alice, ivan):
    received = inbound.receive(
        inbound_message(
            html='<p>See <img src="https://tracker.example/pixel.gif" alt="logo">'
            ' and <img src="cid:part1"></p>'
        )
    )
    client.force_login(alice)

    page = page_of(client, received.ticket)

    assert 'data-remote-src="https://tracker.example/pixel.gif"' in page
    assert ' src="https://tracker.example' not in page
    assert 'src="cid:part1"' in page
    assert "Show images" in page


def test_remote_images_of_a_message_stored_before_they_were_marked_also_wait(client, alice, ivan):
    received = inbound.receive(inbound_message(html="<p>Old mail</p>"))
    Message.objects.filter(ticket=received.ticket).update(
        body_html='<p>Old mail <img src="http://tracker.example/open.gif"></p>'
    )
    client.force_login(alice)

    page = page_of(client, received.ticket)

    assert 'data-remote-src="http://tracker.example/open.gif"' in page
    assert ' src="http://tracker.example' not in page


def test_remote_image_blocking_keeps_the_rest_of_the_html_as_it_was():
    shown = without_remote_images(
        '<p title="a &amp; b">1 &lt; 2 &#169;<img src="//cdn.example/x.png" alt="x"><br></p>'
    )

    assert shown.html == (
        '<p title="a &amp; b">1 &lt; 2 &#169;'
        '<img data-remote-src="https://cdn.example/x.png" alt="x"><br></p>'
    )
    assert shown.remote_images == 1


def test_a_customer_message_with_scripts_and_handlers_renders_inert(client, alice, ivan):
    received = inbound.receive(
        inbound_message(
            html='<p onclick="alert(1)">Hi</p><script>alert(2)</script><img src="x" onerror="alert(3)">'
            '<a href="javascript:alert(4)">link</a><svg onload="alert(5)"></svg>',
            text="<script>alert(6)</script>",
        )
    )
    client.force_login(alice)

    response = client.get(reverse("ticket", args=[received.ticket.pk]))
    page = response.content.decode()

    for payload in ("onclick", "onerror", "onload", "javascript:", "<script>alert"):
        assert payload not in page
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_attachments_link_to_the_access_checked_download(client, alice, ivan):
    received = inbound.receive(
        inbound_message(attachments=(InboundAttachment("invoice.pdf", "application/pdf", b"%PDF"),))
    )
    client.force_login(alice)

    page = page_of(client, received.ticket)
    attachment = received.ticket.messages.get().attachments.get()

    assert reverse("api:attachment", args=[attachment.pk]) in page and "invoice.pdf" in page


def test_the_ticket_page_costs_the_same_queries_for_two_messages_as_for_twenty(
    client, alice, bob, billing, ticket
):
    client.force_login(alice)

    def queries_for_the_page() -> int:
        client.get(reverse("ticket", args=[ticket.pk]))
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("ticket", args=[ticket.pk])).status_code == 200
        return len(captured)

    replies.send_reply(ticket, actor=alice, text="First answer")
    lifecycle.update(ticket, actor=alice, assignee=alice, team=billing)  # names looked up: people, teams
    few = queries_for_the_page()
    for number in range(6):
        replies.add_note(ticket, actor=bob, text=f"Note {number}")
        replies.send_reply(ticket, actor=alice, text=f"Answer {number}")
        lifecycle.update(ticket, actor=bob, assignee=bob if number % 2 else alice, tags=[f"t{number}"])
        inbound.receive(
            inbound_message(attachments=(InboundAttachment(f"log{number}.txt", "text/plain", b"x"),))
        )
    many = queries_for_the_page()

    assert Message.objects.filter(ticket=ticket).count() >= 20
    assert many == few


def test_saving_the_side_panel_keeps_what_another_agent_changed_meanwhile(client, alice, bob, carol, ticket):
    client.force_login(alice)
    panel = client.get(reverse("ticket", args=[ticket.pk])).context["fields"]
    shown = {name: panel[name].value() for name in ("status", "priority", "assignee", "team", "tags")}
    as_loaded = {f"initial-{name}": value or "" for name, value in shown.items()}
    lifecycle.update(ticket, actor=carol, priority=Priority.URGENT)  # while alice's page is open

    client.post(
        reverse("ticket-fields", args=[ticket.pk]),
        {**{name: value or "" for name, value in shown.items()}, **as_loaded, "status": "open"},
    )

    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN
    assert ticket.priority == Priority.URGENT
