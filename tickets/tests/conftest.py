"""The API's own OpenAPI schema, loaded with schemathesis, answering from the app in this process."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from rest_framework.authtoken.models import Token
from schemathesis.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from helpdesk.wsgi import application
from tickets.models import User

# What "the answer is the one the schema documents" means: a documented status, media type and body.
CONFORMANCE = [status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def in_process_wsgi(db) -> Iterator[None]:
    """Requests through the WSGI app keep this test's connection, as Django's test client does.

    Django closes connections at each request's start and end; inside a test's transaction that would
    close the connection the test's rows live on.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def openapi(in_process_wsgi) -> schemathesis.schemas.BaseSchema:
    """The schema /api/schema/ serves, its operations called in-process through the WSGI app."""
    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


def token_header(user: User | None) -> dict[str, str]:
    if user is None:
        return {}
    return {"Authorization": f"Token {Token.objects.get_or_create(user=user)[0].key}"}


@pytest.fixture
def documented_call(openapi) -> Callable[..., Any]:
    """Call one operation as `user` and fail unless its answer is what the schema documents."""

    def call(method: str, path: str, user: User | None, **case: Any) -> Any:
        operation = openapi[path][method]
        request = operation.Case(**case)
        response = request.call(headers=token_header(user))
        request.validate_response(response, checks=CONFORMANCE)
        return response

    return call
