"""Project-wide request middleware."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from helpdesk.errors import unavailable_response


class DatabaseUnavailableMiddleware:
    """A view whose SQL ran past DATABASE_STATEMENT_TIMEOUT, or found the database out of reach, answers 503
    with Retry-After, not 500, with DEBUG on too.

    Either way the transaction was rolled back and the client may try again. Other database errors stay what
    they are. Failures outside views go through helpdesk.errors.server_error.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        return unavailable_response(request, exception)
