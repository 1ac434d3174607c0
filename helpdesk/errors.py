"""Answers for requests that fail outside any view's own error handling (Django's handler400/404/500).

Under /api/ they are JSON, like every other API answer. A statement cut off by DATABASE_STATEMENT_TIMEOUT and
a database out of reach (restarting, failing over) are a 503 with Retry-After wherever they happened (a view,
or a middleware loading the session or the user): the client may simply try again.
"""

from __future__ import annotations

import logging
import sys

from django.core.exceptions import RequestDataTooBig
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views import defaults

from helpdesk.sqlstate import QUERY_CANCELED, connection_failed, sqlstate

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def is_statement_timeout(error: BaseException | None) -> bool:
    return isinstance(error, OperationalError) and sqlstate(error) == QUERY_CANCELED


def unavailable_response(request: HttpRequest, error: BaseException | None) -> HttpResponse | None:
    """503 with Retry-After for a statement timeout or an unreachable database; None for any other error."""
    if is_statement_timeout(error):
        logger.warning("Statement timeout in %s %s", request.method, request.path)
        code, detail = "timeout", _("The server took too long to answer. Please try again.")
    elif error is not None and connection_failed(error):
        logger.error("Database unreachable in %s %s: %s", request.method, request.path, error)
        code, detail = "unavailable", _("The service is briefly unavailable. Please try again.")
    else:
        return None
    if is_api(request):
        response: HttpResponse = JsonResponse({"code": code, "detail": detail}, status=503)
    else:
        response = HttpResponse(detail, status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
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
    unavailable = unavailable_response(request, sys.exc_info()[1])
    if unavailable is not None:
        return unavailable
    if is_api(request):
        return JsonResponse({"detail": _("A server error occurred.")}, status=500)
    return defaults.server_error(request)
