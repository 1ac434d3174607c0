"""While PostgreSQL is out of reach (restarting, failing over), requests answer 503 with Retry-After, not 500.

No test database here: the connection goes to a port nobody listens on, as a web thread's would.
"""

import json
from collections.abc import Iterator

import pytest
from django.db import OperationalError, connection
from django.test import Client

from conftest import free_port
from helpdesk.errors import server_error


@pytest.fixture
def database_unreachable(django_db_blocker) -> Iterator[None]:
    """This process's database at a port nobody listens on, as while PostgreSQL restarts or fails over."""
    with django_db_blocker.unblock():
        reachable = dict(connection.settings_dict)
        connection.close()
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(free_port()))
        try:
            yield
        finally:
            connection.close()
            connection.settings_dict.update(reachable)


def test_a_page_answers_503_with_retry_after_while_the_database_is_unreachable(database_unreachable):
    client = Client()
    client.cookies["sessionid"] = "a" * 32  # the page loads the visitor's session: a query

    response = client.get("/")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "try again" in response.content.decode()


@pytest.mark.parametrize(
    ("method", "path"), [("get", "/api/v1/tickets/"), ("post", "/api/v1/inbound/messages/")]
)
def test_the_api_answers_503_json_with_retry_after_while_the_database_is_unreachable(
    database_unreachable, method, path
):
    client = Client(HTTP_AUTHORIZATION="Token " + "a" * 40)

    response = getattr(client, method)(path, {"text": "hi"}, content_type="application/json")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "code": "unavailable",
        "detail": "The service is briefly unavailable. Please try again.",
    }


def test_an_unreachable_database_outside_any_view_is_a_503(database_unreachable, rf):
    try:
        connection.ensure_connection()
    except OperationalError:
        response = server_error(rf.get("/api/v1/tickets/"))

    assert response.status_code == 503
    assert json.loads(response.content)["code"] == "unavailable"
