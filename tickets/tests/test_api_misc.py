"""The rest of the API: teams, users/me, token auth, schema and docs, attachments."""

import json
import re

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from rest_framework.test import APIClient

from conftest import inbound_message
from tickets import inbound
from tickets.channels import InboundAttachment
from tickets.models import Attachment, InboundEnvelope, Message, Ticket

pytestmark = pytest.mark.django_db

API = "/api/v1/"


# --- teams and users/me ---


def test_teams_lists_every_team_with_its_members(api_client, alice, bob, billing, tech):
    response = api_client(alice).get(f"{API}teams/")

    assert response.status_code == 200
    teams = {team["name"]: [member["username"] for member in team["members"]] for team in response.json()}
    assert teams == {"Billing": ["alice"], "Tech": ["bob"]}


def test_me_describes_the_signed_in_agent(api_client, alice, billing):
    response = api_client(alice).get(f"{API}users/me/")

    assert response.status_code == 200
    me = response.json()
    assert (me["id"], me["username"], me["name"], me["role"]) == (alice.pk, "alice", "Alice", "agent")
    assert me["email"] == "alice@support.test"
    assert me["teams"] == [{"id": billing.pk, "name": "Billing"}]


def test_me_without_teams_and_name_falls_back_to_the_username(api_client, carol):
    me = api_client(carol).get(f"{API}users/me/").json()

    assert (me["name"], me["role"], me["teams"]) == ("carol", "supervisor", [])


# --- token auth ---


def token_for(username: str, password: str = "pw"):  # noqa: S107 (the cast's test password)
    return APIClient().post(f"{API}auth/token/", {"username": username, "password": password}, format="json")


def test_token_from_username_and_password_authenticates_later_requests(alice):
    response = token_for("alice")

    assert response.status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    me = client.get(f"{API}users/me/")
    assert me.status_code == 200 and me.json()["username"] == "alice"


def test_the_same_user_gets_the_same_token_twice(alice):
    assert token_for("alice").json()["token"] == token_for("alice").json()["token"]


@pytest.mark.parametrize("username, password", [("alice", "wrong"), ("nobody", "pw"), ("alice", "")])
def test_wrong_credentials_get_no_token(alice, username, password):
    response = token_for(username, password)

    assert response.status_code == 400
    assert "token" not in response.json()


def test_an_unknown_token_is_401(alice):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")

    response = client.get(f"{API}users/me/")

    assert response.status_code == 401


def test_the_token_of_a_deactivated_user_is_401(alice):
    token = token_for("alice").json()["token"]
    alice.is_active = False
    alice.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    response = client.get(f"{API}users/me/")

    assert response.status_code == 401
    assert response.json() == {"detail": "User inactive or deleted."}


def test_without_credentials_the_api_answers_401_asking_for_a_token(db):
    response = APIClient().get(f"{API}tickets/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")


def test_a_customers_token_opens_the_portal_only(ivan):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for('ivan').json()['token']}")

    assert client.get(f"{API}portal/tickets/").status_code == 200
    assert client.get(f"{API}tickets/").status_code == 403


# --- schema and docs ---


def test_schema_is_an_openapi_3_document_of_the_whole_api(db):
    response = APIClient().get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Helpdesk API"
    for path in (
        "/api/v1/tickets/",
        "/api/v1/tickets/{ticket_id}/",
        "/api/v1/tickets/{ticket_id}/reply/",
        "/api/v1/tickets/{ticket_id}/notes/",
        "/api/v1/customers/",
        "/api/v1/customers/{customer_id}/",
        "/api/v1/teams/",
        "/api/v1/users/me/",
        "/api/v1/auth/token/",
        "/api/v1/inbound/messages/",
        "/api/v1/attachments/{attachment_id}/",
        "/api/v1/portal/tickets/",
    ):
        assert path in schema["paths"], path


def request_schema(schema: dict, path: str, method: str) -> dict:
    reference = schema["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return schema["components"]["schemas"][reference.rsplit("/", 1)[1]]


def test_schema_describes_each_request_body_with_its_own_fields(db):
    schema = json.loads(APIClient().get("/api/schema/", {"format": "json"}).content)

    new_ticket = request_schema(schema, "/api/v1/tickets/", "post")
    new_customer = request_schema(schema, "/api/v1/customers/", "post")
    ticket_change = request_schema(schema, "/api/v1/tickets/{ticket_id}/", "patch")

    assert {"customer", "subject", "text"} <= set(new_ticket["properties"])
    assert {"name", "identities"} <= set(new_customer["properties"])
    assert "subject" not in new_customer["properties"]
    assert ticket_change["properties"]["assignee"]["type"] == "integer"


def test_schema_generates_without_warnings_and_validates(db, tmp_path):
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(tmp_path / "schema.yml"))

    assert (tmp_path / "schema.yml").read_text().startswith("openapi: 3.")


def test_docs_page_loads_swagger_from_our_own_static_files(db):
    response = APIClient().get("/api/docs/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    for cdn in ("unpkg", "jsdelivr", "cdnjs", "googleapis", "cloudflare"):
        assert cdn not in page
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert finders.find(asset.removeprefix("/static/")), f"{asset} is not among our static files"


# --- attachments ---


def attachment_on_ivans_ticket(filename: str, content_type: str, content: bytes) -> Attachment:
    received = inbound.receive(
        inbound_message(attachments=(InboundAttachment(filename, content_type, content),))
    )
    return received.message.attachments.get()


def download(client, attachment: Attachment):
    response = client.get(f"{API}attachments/{attachment.pk}/")
    return response, b"".join(response.streaming_content) if response.status_code == 200 else b""


def test_ticket_detail_lists_attachments_that_download_as_files(api_client, alice, ivan):
    attachment = attachment_on_ivans_ticket("счёт март.pdf", "application/pdf", b"%PDF-1.7 invoice")

    detail = api_client(alice).get(f"{API}tickets/{attachment.message.ticket_id}/").json()
    response, content = download(api_client(alice), attachment)

    [listed] = detail["messages"][0]["attachments"]
    assert (listed["id"], listed["filename"], listed["size"]) == (attachment.pk, "счёт март.pdf", 16)
    assert response.status_code == 200
    assert content == b"%PDF-1.7 invoice"
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    assert "filename*=utf-8''%D1%81%D1%87%D1%91%D1%82" in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"


def test_safe_images_are_shown_inline(api_client, alice, ivan):
    attachment = attachment_on_ivans_ticket("screenshot.png", "image/png", b"\x89PNG\r\n\x1a\n")

    response, content = download(api_client(alice), attachment)

    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"].startswith("inline")
    assert content == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "filename, content_type",
    [("page.html", "text/html"), ("logo.svg", "image/svg+xml"), ("x.png", "image/png; charset=x")],
)
def test_active_content_is_only_ever_downloaded(api_client, alice, ivan, filename, content_type):
    attachment = attachment_on_ivans_ticket(filename, content_type, b"<script>alert(1)</script>")

    response, _ = download(api_client(alice), attachment)

    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in response["Content-Security-Policy"]


def test_unknown_attachment_is_404(api_client, carol):
    assert api_client(carol).get(f"{API}attachments/99999999999999999999/").status_code == 404
    assert api_client(carol).get(f"{API}attachments/123456789/").status_code == 404


def test_a_password_change_revokes_the_api_token(alice):
    token = token_for("alice").json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get(f"{API}users/me/").status_code == 200

    alice.set_password("a new password 9!")
    alice.save()

    assert client.get(f"{API}users/me/").status_code == 401
    assert token_for("alice", "a new password 9!").json()["token"] != token


def test_a_user_sees_the_end_of_their_token_and_revokes_it(ivan):
    token = token_for("ivan").json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    shown = client.get(f"{API}auth/token/current/")
    assert shown.status_code == 200 and shown.json()["ends_with"] == token[-4:]
    assert token not in shown.content.decode()

    assert client.delete(f"{API}auth/token/current/").status_code == 204
    assert client.get(f"{API}portal/tickets/").status_code == 401
    assert APIClient().get(f"{API}auth/token/current/").status_code == 401


DEEP_JSON = "[" * 5000 + "]" * 5000


@pytest.mark.parametrize(
    ("method", "path", "user"),
    [
        ("post", "tickets/", "alice"),
        ("patch", "tickets/{ticket}/", "alice"),
        ("post", "tickets/{ticket}/reply/", "alice"),
        ("post", "customers/", "alice"),
        ("post", "inbound/messages/", "dave"),
    ],
)
def test_json_nested_too_deeply_is_400_and_changes_nothing(method, path, user, alice, dave, captured_events):
    ticket = inbound.receive(inbound_message()).ticket
    before = (Ticket.objects.count(), Message.objects.count(), InboundEnvelope.objects.count())
    client = APIClient()
    client.force_authenticate({"alice": alice, "dave": dave}[user])

    response = getattr(client, method)(
        f"{API}{path.format(ticket=ticket.pk)}", DEEP_JSON, content_type="application/json"
    )

    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]
    assert (Ticket.objects.count(), Message.objects.count(), InboundEnvelope.objects.count()) == before


@pytest.mark.parametrize(
    "body",
    [
        {"priority": "a\ud800"},
        {"status": "\ud800"},
        {"team": 1e400},
        {"custom_fields": {"k": "a\u0000b"}},
        {"custom_fields": {"a\u0000b": 1}},
        {"custom_fields": {"k": float("nan")}},
        {"tags": ["ok", "\udfff"]},
    ],
)
def test_values_the_database_cannot_store_are_400_and_change_nothing(body, alice, captured_events):
    ticket = inbound.receive(inbound_message()).ticket
    before = Ticket.objects.values().get(pk=ticket.pk)
    client = APIClient()
    client.force_authenticate(alice)

    response = client.patch(f"{API}tickets/{ticket.pk}/", json.dumps(body), content_type="application/json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error")
    assert Ticket.objects.values().get(pk=ticket.pk) == before


@pytest.mark.parametrize("method", ["options", "post", "put", "delete"])
def test_the_api_docs_page_answers_only_get_and_never_500(client, method):
    # OPTIONS used to crash: DRF's metadata answer went to the page's HTML renderer, which has no template.
    response = getattr(client, method)("/api/docs/")

    assert response.status_code == 405
    assert client.get("/api/docs/").status_code == 200
