"""The OpenAPI schema tells the truth: every answer an operation gives is documented, with its shape."""

import json
from urllib.parse import urlencode

import pytest
from rest_framework.test import APIClient

from conftest import inbound_message
from tickets import inbound, lifecycle
from tickets.models import Customer, InboundEnvelope, Message, Organization, Status, Ticket

pytestmark = pytest.mark.django_db

ERROR = "#/components/schemas/Error"
VALIDATION_ERROR = "#/components/schemas/ValidationError"


@pytest.fixture
def schema(db) -> dict:
    return json.loads(APIClient().get("/api/schema/", {"format": "json"}).content)


def documented_error(schema: dict, path: str, method: str, status: int) -> str:
    answer = schema["paths"][path][method]["responses"][str(status)]
    return answer["content"]["application/json"]["schema"]["$ref"]


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        ("/api/v1/tickets/", "get", {400: VALIDATION_ERROR, 401: ERROR, 403: ERROR, 404: ERROR, 503: ERROR}),
        ("/api/v1/tickets/", "post", {400: VALIDATION_ERROR, 401: ERROR, 403: ERROR, 415: ERROR}),
        ("/api/v1/tickets/{ticket_id}/", "get", {401: ERROR, 403: ERROR, 404: ERROR, 503: ERROR}),
        (
            "/api/v1/tickets/{ticket_id}/",
            "patch",
            {400: VALIDATION_ERROR, 404: ERROR, 409: ERROR, 415: ERROR},
        ),
        ("/api/v1/tickets/{ticket_id}/reply/", "post", {400: VALIDATION_ERROR, 404: ERROR, 409: ERROR}),
        ("/api/v1/customers/", "post", {400: VALIDATION_ERROR, 409: ERROR, 415: ERROR}),
        ("/api/v1/auth/token/", "post", {400: VALIDATION_ERROR, 429: ERROR}),
        ("/api/v1/auth/token/current/", "get", {401: ERROR, 404: ERROR}),
        ("/api/v1/inbound/messages/", "post", {400: VALIDATION_ERROR, 403: ERROR, 415: ERROR}),
    ],
)
def test_the_schema_lists_each_operations_errors_with_the_shared_shapes(schema, path, method, statuses):
    documented = {status: documented_error(schema, path, method, status) for status in statuses}

    assert documented == statuses


def test_the_error_shapes_require_what_every_error_answer_carries(schema):
    shapes = schema["components"]["schemas"]

    assert shapes["Error"]["required"] == ["detail"]
    assert set(shapes["ValidationError"]["properties"]) == {"detail", "code", "non_field_errors"}
    assert "additionalProperties" in shapes["ValidationError"]


def test_operations_without_input_or_ids_document_no_400_or_404(schema):
    for path, method in [("/api/v1/users/me/", "get"), ("/api/v1/teams/", "get")]:
        assert not {"400", "404"} & set(schema["paths"][path][method]["responses"]), path


def test_error_answers_are_the_documented_ones(documented_call, alice, ivan):
    ticket = inbound.receive(inbound_message()).ticket
    lifecycle.update(ticket, actor=alice, status=Status.CLOSED)

    answers = [
        documented_call("GET", "/api/v1/tickets/", None),
        documented_call("GET", "/api/v1/tickets/", ivan.user),
        documented_call("GET", "/api/v1/tickets/{ticket_id}/", alice, path_parameters={"ticket_id": 10**9}),
        documented_call("GET", "/api/v1/tickets/", alice, query={"cursor": "not-a-cursor"}),
        documented_call("GET", "/api/v1/tickets/", alice, query={"assignee": "someone"}),
        documented_call(
            "POST",
            "/api/v1/customers/",
            alice,
            body={"name": "Olga", "identities": [{"channel": "email", "address": "not an address"}]},
            media_type="application/json",
        ),
        documented_call(
            "POST",
            "/api/v1/tickets/{ticket_id}/reply/",
            alice,
            path_parameters={"ticket_id": ticket.pk},
            body={"text": "Anything else?"},
            media_type="application/json",
        ),
    ]

    assert [answer.status_code for answer in answers] == [401, 403, 404, 404, 400, 400, 409]
    assert answers[5].json()["identities"]["0"]["address"]
    assert answers[6].json()["code"] == "ticket_closed"


@pytest.mark.parametrize("organization", [None, "Acme"])
def test_a_customers_organization_is_answered_as_documented(documented_call, alice, ivan, organization):
    if organization:
        ivan.organization = Organization.objects.create(name=organization)
        ivan.save()

    detail = documented_call(
        "GET", "/api/v1/customers/{customer_id}/", alice, path_parameters={"customer_id": ivan.pk}
    )
    listed = documented_call("GET", "/api/v1/customers/", alice)

    assert detail.json()["organization"] == organization
    assert [customer["organization"] for customer in listed.json()["results"]] == [organization]


@pytest.mark.parametrize("encoding", ["multipart", "form"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "tickets/"),
        ("patch", "tickets/{ticket}/"),
        ("post", "tickets/{ticket}/reply/"),
        ("post", "customers/"),
    ],
)
def test_a_form_body_where_json_is_documented_is_415_and_changes_nothing(
    api_client, alice, ivan, captured_events, encoding, method, path
):
    ticket = inbound.receive(inbound_message()).ticket
    before = (Ticket.objects.values().get(pk=ticket.pk), Message.objects.count(), Customer.objects.count())
    body = {
        "customer": ivan.pk,
        "subject": "Form",
        "text": "sent as a form",
        "name": "Form",
        "status": "open",
    }
    url = f"/api/v1/{path.format(ticket=ticket.pk)}"

    if encoding == "form":
        response = getattr(api_client(alice), method)(
            url, urlencode(body), content_type="application/x-www-form-urlencoded"
        )
    else:
        response = getattr(api_client(alice), method)(url, body, format="multipart")

    assert response.status_code == 415
    assert "Unsupported media type" in response.json()["detail"]
    assert (
        Ticket.objects.values().get(pk=ticket.pk),
        Message.objects.count(),
        Customer.objects.count(),
    ) == before


def test_the_schema_documents_json_bodies_only(schema):
    bodies = {
        f"{method.upper()} {path}": sorted(operation["requestBody"]["content"])
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation and path != "/api/v1/auth/token/"
    }

    assert bodies == {operation: ["application/json"] for operation in bodies}
    assert len(bodies) == 6


def test_a_body_past_the_upload_limit_is_a_documented_413_and_stores_nothing(documented_call, settings, dave):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    message = {"id": "crm-1", "customer": {"id": "crm-customer-42"}, "text": "x" * 2000}

    response = documented_call(
        "POST", "/api/v1/inbound/messages/", dave, body=message, media_type="application/json"
    )

    assert response.status_code == 413
    assert InboundEnvelope.objects.count() == 0


def test_a_bad_request_django_refuses_before_the_api_is_a_json_400(client):
    # A Host header Django refuses never reaches a view: handler400 answers.
    response = client.get("/api/v1/tickets/", HTTP_HOST="evil.example")

    assert response.status_code == 400
    assert response.json() == {"detail": "Bad request."}
