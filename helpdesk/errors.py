"""Answers for requests that fail outside any view's own error handling (Django's handler400/404/500).

Under /api/ they are JSON, like every other API answer; a statement cut off by DATABASE_STATEMENT_TIMEOUT is
a 503 wherever it happened (a view, or a middleware loading the session or the user).
"""

from __future__ import annotations

import logging
import sys

from django.core.exceptions import RequestDataTooBig
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views import defaults
from psycopg2 import errors as pg_errors

logger = logging.getLogger(__name__)


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def is_statement_timeout(error: BaseException | None) -> bool:
    return isinstance(error, OperationalError) and isinstance(error.__cause__, pg_errors.QueryCanceled)


def statement_timeout_response(request: HttpRequest) -> HttpResponse:
    """503 with Retry-After: PostgreSQL cancelled the statement and rolled its transaction back."""
    logger.warning("Statement timeout in %s %s", request.method, request.path)
    detail = _("The server took too long to answer. Please try again.")
    if is_api(request):
        response: HttpResponse = JsonResponse({"code": "timeout", "detail": detail}, status=503)
    else:
        response = HttpResponse(detail, status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = "5"
    return response


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Refused before any view ran: a body past DATA_UPLOAD_MAX_MEMORY_SIZE (413), a bad Host header (400)."""
    if not is_api(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse({"detail": _("The request body is too large.")}, status=413)
    return JsonResponse({"detail": _("Bad request.")}, status=400)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request):
        return JsonResponse({"detail": _("Not found.")}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    # Django calls this while handling the exception, so it is still the current one.
    if is_statement_timeout(sys.exc_info()[1]):
        return statement_timeout_response(request)
    if is_api(request):
        return JsonResponse({"detail": _("A server error occurred.")}, status=500)
    return defaults.server_error(request)
