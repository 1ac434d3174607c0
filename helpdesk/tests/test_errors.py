"""Failures outside the views' own handling: JSON under /api/, a statement timeout as 503 anywhere."""

import json

import pytest
from django.db import OperationalError, connection, transaction
from django.test import Client

from helpdesk.errors import server_error

pytestmark = pytest.mark.django_db


def test_an_unknown_api_url_is_a_json_404(client):
    response = client.get("/api/v1/no-such-thing/")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_an_unknown_page_is_still_an_html_404(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.fixture
def timed_out(db) -> OperationalError:
    """A real statement timeout, as PostgreSQL reports it (SQLSTATE 57014), caught in a savepoint."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 1; SELECT pg_sleep(1)")
    except OperationalError as error:
        return error
    raise AssertionError("the statement was not cut off")


@pytest.mark.parametrize("path", ["/api/v1/tickets/", "/admin/"])
def test_a_statement_timeout_while_authenticating_is_a_503(monkeypatch, path, timed_out):
    def load_session(self):
        raise timed_out

    monkeypatch.setattr("django.contrib.sessions.backends.db.SessionStore.load", load_session)
    client = Client(raise_request_exception=False)
    client.cookies["sessionid"] = "a" * 32

    response = client.get(path)

    assert response.status_code == 503
    assert response["Retry-After"] == "5"


def test_other_api_failures_are_a_json_500(monkeypatch):
    def load_session(self):
        raise RuntimeError("boom")

    monkeypatch.setattr("django.contrib.sessions.backends.db.SessionStore.load", load_session)
    client = Client(raise_request_exception=False)
    client.cookies["sessionid"] = "a" * 32

    response = client.get("/api/v1/tickets/")

    assert response.status_code == 500
    assert response.json() == {"detail": "A server error occurred."}
    assert "boom" not in response.content.decode()


def test_a_statement_timeout_outside_any_view_is_a_503(rf, timed_out):
    # Django's handler500 runs while the exception is being handled, e.g. one raised by a middleware.
    try:
        raise timed_out
    except OperationalError:
        response = server_error(rf.get("/api/v1/tickets/"))

    assert response.status_code == 503
    assert json.loads(response.content)["code"] == "timeout"
