"""Who may see what through the API: the IDOR sweep over every URL with an id, and the access rules.

The sweep walks `tickets.api.urls.urlpatterns`, so a new endpoint with a ticket, customer or attachment
id in its URL is covered without touching this file.
"""

import re

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from conftest import inbound_message
from tickets import inbound, lifecycle, replies
from tickets.api import urls as api_urls
from tickets.channels import InboundAttachment
from tickets.models import Attachment, Channel, Customer, Identity, Message, Status, Ticket, TicketEvent

pytestmark = pytest.mark.django_db

ID_KWARGS = ("ticket_id", "customer_id", "attachment_id")
METHODS = ("get", "post", "put", "patch", "delete")
SECRET_SUBJECT = "TECH-ONLY subject 7f3a"
SECRET_NOTE = "TECH-ONLY internal note 7f3a"
SECRET_FILE = b"TECH-ONLY file content 7f3a"
# Valid for every write endpoint, so a missing access check would let the request through.
WRITE_BODY = {
    "text": "hijacked",
    "status": "solved",
    "priority": "urgent",
    "subject": "hijacked",
    "tags": ["x"],
}
_PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>")


def api_prefix() -> str:
    return reverse("api:ticket-list").removesuffix("tickets/")


def route(pattern) -> str:
    return str(pattern.pattern)


def url_parameters(pattern) -> set[str]:
    return set(_PARAMETER.findall(route(pattern)))


def url_for(pattern, ids: dict[str, int]) -> str:
    return api_prefix() + _PARAMETER.sub(lambda match: str(ids[match.group(1)]), route(pattern))


def patterns_with_ids() -> list:
    return [pattern for pattern in api_urls.urlpatterns if url_parameters(pattern) & set(ID_KWARGS)]


def is_portal(pattern) -> bool:
    return route(pattern).startswith("portal/")


def body_of(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def send(client, method: str, url: str):
    if method == "get":
        return client.get(url)
    return getattr(client, method)(url, WRITE_BODY, format="json")


@pytest.fixture
def olga(db) -> Customer:
    customer = Customer.objects.create(name="Olga")
    Identity.objects.create(customer=customer, channel=Channel.TELEGRAM, address="424242")
    return customer


@pytest.fixture
def tech_ticket(olga, tech, bob) -> Ticket:
    """Olga's ticket, routed to Tech, with an attachment and an internal note."""
    received = inbound.receive(
        inbound_message(
            channel=Channel.TELEGRAM,
            sender_address="424242",
            subject=SECRET_SUBJECT,
            text="My router is broken",
            attachments=(InboundAttachment("router.log", "text/plain", SECRET_FILE),),
        )
    )
    lifecycle.update(received.ticket, actor=bob, team=tech)
    replies.add_note(received.ticket, actor=bob, text=SECRET_NOTE)
    return received.ticket


@pytest.fixture
def ivans_ticket(ivan) -> Ticket:
    return inbound.receive(
        inbound_message(attachments=(InboundAttachment("invoice.pdf", "application/pdf", b"%PDF"),))
    ).ticket


def ids_of(ticket: Ticket) -> dict[str, int]:
    return {
        "ticket_id": ticket.pk,
        "customer_id": ticket.customer_id,
        "attachment_id": Attachment.objects.filter(message__ticket=ticket)
        .values_list("id", flat=True)
        .first(),
    }


def missing_ids() -> dict[str, int]:
    return {
        "ticket_id": (Ticket.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 10_000,
        "customer_id": (Customer.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 10_000,
        "attachment_id": (Attachment.objects.order_by("-id").values_list("id", flat=True).first() or 0)
        + 10_000,
    }


def snapshot(ticket: Ticket) -> tuple:
    ticket = Ticket.objects.get(pk=ticket.pk)
    return (
        ticket.subject,
        ticket.status,
        ticket.priority,
        ticket.tags,
        ticket.team_id,
        ticket.assignee_id,
        ticket.updated_at,
        Message.objects.filter(ticket=ticket).count(),
        TicketEvent.objects.filter(ticket=ticket).count(),
    )


def assert_no_secret(response, where: str) -> None:
    content = body_of(response)
    for secret in (SECRET_SUBJECT.encode(), SECRET_NOTE.encode(), SECRET_FILE):
        assert secret not in content, f"{where} leaked {secret!r}"


# --- the sweep ---


def test_the_sweep_covers_every_endpoint_with_an_id():
    routes = {route(pattern) for pattern in patterns_with_ids()}

    assert {
        "tickets/<int:ticket_id>/",
        "tickets/<int:ticket_id>/reply/",
        "tickets/<int:ticket_id>/notes/",
        "attachments/<int:attachment_id>/",
        "customers/<int:customer_id>/",
        "portal/tickets/<int:ticket_id>/",
    } <= routes
    for pattern in patterns_with_ids():
        assert url_parameters(pattern) <= set(ID_KWARGS), f"teach the sweep the id in {route(pattern)}"


def test_agent_of_another_team_gets_the_same_answer_as_for_a_missing_id(
    api_client, alice, carol, tech_ticket
):
    forbidden, missing = ids_of(tech_ticket), missing_ids()
    before = snapshot(tech_ticket)

    for pattern in patterns_with_ids():
        for method in METHODS:
            where = f"{method.upper()} {url_for(pattern, forbidden)} as alice"
            response = send(api_client(alice), method, url_for(pattern, forbidden))
            assert_no_secret(response, where)
            if url_parameters(pattern) & {"ticket_id", "attachment_id"}:
                # Missing and forbidden look the same: nothing tells alice the ticket exists.
                same_missing = send(api_client(alice), method, url_for(pattern, missing))
                assert response.status_code == same_missing.status_code, where
                assert response.status_code in (403, 404, 405), where

    assert snapshot(tech_ticket) == before
    # The ids were real: a supervisor reaches the same ticket, attachment and customer.
    assert api_client(carol).get(f"{api_prefix()}tickets/{forbidden['ticket_id']}/").status_code == 200
    assert (
        api_client(carol).get(f"{api_prefix()}attachments/{forbidden['attachment_id']}/").status_code == 200
    )
    assert api_client(carol).get(f"{api_prefix()}customers/{forbidden['customer_id']}/").status_code == 200


def test_customer_gets_the_same_answer_for_another_customers_ids_as_for_missing_ones(
    api_client, ivan, ivans_ticket, tech_ticket
):
    forbidden, missing = ids_of(tech_ticket), missing_ids()
    before = snapshot(tech_ticket)

    for pattern in patterns_with_ids():
        for method in METHODS:
            where = f"{method.upper()} {url_for(pattern, forbidden)} as ivan"
            response = send(api_client(ivan.user), method, url_for(pattern, forbidden))
            same_missing = send(api_client(ivan.user), method, url_for(pattern, missing))
            assert response.status_code == same_missing.status_code, where
            assert response.status_code in (403, 404, 405), where
            assert_no_secret(response, where)

    assert snapshot(tech_ticket) == before


def test_customer_gets_403_on_every_agent_endpoint_even_for_his_own_ids(api_client, ivan, ivans_ticket):
    own = ids_of(ivans_ticket)
    before = snapshot(ivans_ticket)

    for pattern in api_urls.urlpatterns:
        if is_portal(pattern) or route(pattern).startswith("auth/"):  # sign-in and own token: everyone's
            continue
        for method in METHODS:
            url = url_for(pattern, own)
            response = send(api_client(ivan.user), method, url)
            assert response.status_code == 403, f"{method.upper()} {url} as ivan"

    assert snapshot(ivans_ticket) == before


def test_unauthenticated_requests_are_refused_everywhere(api_client, ivans_ticket, tech_ticket):
    ids = ids_of(tech_ticket)
    before = snapshot(tech_ticket)

    for pattern in api_urls.urlpatterns:
        if route(pattern) == "auth/token/":
            continue
        for method in METHODS:
            url = url_for(pattern, ids)
            response = send(api_client(None), method, url)
            assert response.status_code in (401, 403), f"{method.upper()} {url} anonymously"
            assert_no_secret(response, url)

    assert snapshot(tech_ticket) == before


# --- the rules, one by one ---


@pytest.mark.parametrize(
    "method, path",
    [("get", ""), ("post", "reply/"), ("post", "notes/"), ("patch", "")],
)
def test_agent_gets_404_for_another_teams_ticket(api_client, alice, tech_ticket, method, path):
    before = snapshot(tech_ticket)

    response = send(api_client(alice), method, f"{api_prefix()}tickets/{tech_ticket.pk}/{path}")

    assert response.status_code == 404
    assert snapshot(tech_ticket) == before


def test_agent_gets_404_for_an_attachment_on_another_teams_ticket(api_client, alice, bob, tech_ticket):
    attachment = Attachment.objects.get(message__ticket=tech_ticket)

    denied = api_client(alice).get(f"{api_prefix()}attachments/{attachment.pk}/")
    allowed = api_client(bob).get(f"{api_prefix()}attachments/{attachment.pk}/")

    assert denied.status_code == 404
    assert allowed.status_code == 200 and body_of(allowed) == SECRET_FILE


def test_agent_sees_own_team_unrouted_and_assigned_tickets_only(api_client, alice, billing, tech, ivan, olga):
    billing_ticket = Ticket.objects.create(customer=ivan, channel=Channel.EMAIL, team=billing)
    unrouted = Ticket.objects.create(customer=ivan, channel=Channel.EMAIL)
    tech_but_hers = Ticket.objects.create(customer=olga, channel=Channel.EMAIL, team=tech, assignee=alice)
    tech_only = Ticket.objects.create(customer=olga, channel=Channel.EMAIL, team=tech)
    client = api_client(alice)

    listed = {row["id"] for row in client.get(f"{api_prefix()}tickets/").json()["results"]}

    assert listed == {billing_ticket.pk, unrouted.pk, tech_but_hers.pk}
    for visible in (billing_ticket, unrouted, tech_but_hers):
        assert client.get(f"{api_prefix()}tickets/{visible.pk}/").status_code == 200
    assert client.get(f"{api_prefix()}tickets/{tech_only.pk}/").status_code == 404


@pytest.mark.parametrize("who", ["carol", "dave"])
def test_supervisor_and_admin_see_every_ticket(request, api_client, billing, tech, ivan, olga, who):
    tickets = [
        Ticket.objects.create(customer=ivan, channel=Channel.EMAIL, team=billing),
        Ticket.objects.create(customer=olga, channel=Channel.EMAIL, team=tech),
        Ticket.objects.create(customer=olga, channel=Channel.EMAIL),
    ]
    client = api_client(request.getfixturevalue(who))

    listed = {row["id"] for row in client.get(f"{api_prefix()}tickets/").json()["results"]}

    assert listed == {ticket.pk for ticket in tickets}
    assert all(client.get(f"{api_prefix()}tickets/{ticket.pk}/").status_code == 200 for ticket in tickets)


def test_customer_history_shows_an_agent_only_the_tickets_they_may_see(api_client, alice, tech_ticket, olga):
    unrouted = Ticket.objects.create(customer=olga, channel=Channel.EMAIL, subject="Where is my parcel")

    response = api_client(alice).get(f"{api_prefix()}customers/{olga.pk}/")

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["tickets"]] == [unrouted.pk]
    assert_no_secret(response, "customer detail")


def test_portal_lists_only_the_customers_own_tickets(api_client, ivan, ivans_ticket, tech_ticket):
    second = inbound.receive(inbound_message(new_conversation=True, subject="Второй вопрос")).ticket

    response = api_client(ivan.user).get(f"{api_prefix()}portal/tickets/")

    assert response.status_code == 200
    assert {row["id"] for row in response.json()["results"]} == {ivans_ticket.pk, second.pk}
    assert_no_secret(response, "portal list")


def test_portal_detail_shows_own_ticket_without_internal_notes(api_client, ivan, alice, ivans_ticket):
    replies.add_note(ivans_ticket, actor=alice, text="He is on the old tariff")
    replies.send_reply(ivans_ticket, actor=alice, text="Счёт отправлен повторно")

    response = api_client(ivan.user).get(f"{api_prefix()}portal/tickets/{ivans_ticket.pk}/")

    assert response.status_code == 200
    texts = [message["body_text"] for message in response.json()["messages"]]
    assert texts == ["Здравствуйте, где мой счёт?", "Счёт отправлен повторно"]
    assert b"old tariff" not in response.content
    assert b"internal_note" not in response.content


def test_portal_detail_of_another_customers_ticket_is_404(api_client, ivan, tech_ticket):
    response = api_client(ivan.user).get(f"{api_prefix()}portal/tickets/{tech_ticket.pk}/")

    assert response.status_code == 404


def test_portal_is_for_customers_only(api_client, alice, ivans_ticket):
    assert api_client(alice).get(f"{api_prefix()}portal/tickets/").status_code == 403
    assert api_client(alice).get(f"{api_prefix()}portal/tickets/{ivans_ticket.pk}/").status_code == 403


def test_deactivated_agent_sees_nothing(api_client, alice, ivans_ticket):
    alice.is_active = False
    alice.save()

    assert api_client(alice).get(f"{api_prefix()}tickets/").status_code in (401, 403)
    assert api_client(alice).get(f"{api_prefix()}tickets/{ivans_ticket.pk}/").status_code in (401, 403)


def test_closed_tickets_stay_readable_in_the_portal(api_client, ivan, alice, ivans_ticket):
    lifecycle.change_status(ivans_ticket, status=Status.CLOSED, actor=alice)

    response = api_client(ivan.user).get(f"{api_prefix()}portal/tickets/{ivans_ticket.pk}/")

    assert response.status_code == 200
    assert response.json()["status"] == Status.CLOSED


def test_a_customer_token_reads_its_own_ticket_and_nothing_else(ivan, ivans_ticket, tech_ticket):
    login = APIClient().post(f"{api_prefix()}auth/token/", {"username": "ivan", "password": "pw"})
    assert login.status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {login.json()['token']}")

    assert client.get(f"{api_prefix()}portal/tickets/{ivans_ticket.pk}/").status_code == 200
    assert client.get(f"{api_prefix()}portal/tickets/{tech_ticket.pk}/").status_code == 404
    assert client.get(f"{api_prefix()}tickets/{ivans_ticket.pk}/").status_code == 403
    assert client.get(f"{api_prefix()}tickets/").status_code == 403
    listed = client.get(f"{api_prefix()}portal/tickets/").json()["results"]
    assert [ticket["id"] for ticket in listed] == [ivans_ticket.pk]
