"""Project-wide request middleware."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from psycopg2 import errors as pg_errors

logger = logging.getLogger(__name__)


class StatementTimeoutMiddleware:
    """A request whose SQL ran past DATABASE_STATEMENT_TIMEOUT answers 503, not 500.

    PostgreSQL cancelled the statement and rolled its transaction back; the client may try again. Other
    database errors stay what they are.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not (
            isinstance(exception, OperationalError)
            and isinstance(exception.__cause__, pg_errors.QueryCanceled)
        ):
            return None
        logger.warning("Statement timeout in %s %s", request.method, request.path)
        detail = _("The server took too long to answer. Please try again.")
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse({"code": "timeout", "detail": detail}, status=503)
        else:
            response = HttpResponse(detail, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = "5"
        return response
