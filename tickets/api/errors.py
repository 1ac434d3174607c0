"""One mapping from domain errors to HTTP for the whole API, and the shapes of its error answers.

The shapes are what the OpenAPI schema documents (tickets.api.schema adds them to every operation): DRF's
own answers, this handler's domain errors and helpdesk.errors' JSON 404/500/503 all fit them.
"""

from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from tickets.exceptions import DomainError

# Every error but invalid input: `detail` for people; `code` for programs, on domain errors and timeouts.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "What went wrong. Domain refusals (409 and some 400s) add a stable `code`.",
    "properties": {
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "e.g. ticket_closed, invalid_transition, timeout"},
        "arrived": {
            "type": "array",
            "items": {"type": "integer"},
            "description": "On stale_reply: ids of the messages that arrived since the one the agent saw.",
        },
    },
    "required": ["detail"],
}

# Invalid input (400): messages by field name, nested like the input (a list of objects for a list of
# objects), or only `detail` when the body could not be read at all.
VALIDATION_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Messages by input field, nested like the input; `detail` when the body is unreadable.",
    "properties": {
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "non_field_errors": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": {
        "anyOf": [
            {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "object"}]}},
            {"type": "object"},
        ]
    },
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        return Response({"code": exc.code, "detail": str(exc), **exc.details}, status=exc.http_status)
    return drf_exception_handler(exc, context)
