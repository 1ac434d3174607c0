"""One mapping from domain errors to HTTP for the whole API."""

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from tickets.exceptions import DomainError


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response({"code": exc.code, "detail": str(exc), **exc.details}, status=exc.http_status)
    return drf_exception_handler(exc, context)
