"""Each signed-in user's language and time zone: kept on the User, applied to every request, edited here."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from helpdesk.errors import unavailable_response
from tickets.forms import PreferencesForm
from tickets.models import User
from tickets.models.people import time_zone_names


class UserPreferencesMiddleware:
    """Activates the signed-in user's language and time zone.

    Runs after LocaleMiddleware (which chose from the language cookie, then the browser's Accept-Language)
    and after authentication: a language set on the user wins; without one the browser's choice stands.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.languages = {code for code, _name in settings.LANGUAGES}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            self._activate(getattr(request, "user", None), request)
        except DatabaseError as error:
            # Loading the session and the user is the first query: a database out of reach is a 503 here too.
            unavailable = unavailable_response(request, error)
            if unavailable is None:
                raise
            return unavailable
        try:
            return self.get_response(request)
        finally:
            # Threads serve many users: the next request starts from the deployment's time zone.
            timezone.deactivate()

    def _activate(self, user: User | None, request: HttpRequest) -> None:
        if user is None or not user.is_authenticated:
            return
        if user.locale in self.languages:
            translation.activate(user.locale)
            request.LANGUAGE_CODE = user.locale
        if user.timezone in time_zone_names():
            timezone.activate(zoneinfo.ZoneInfo(user.timezone))


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    form = PreferencesForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        translation.activate(form.instance.locale or translation.get_language_from_request(request))
        messages.success(request, _("Your preferences are saved."))
        return redirect("preferences")
    status = 400 if form.errors else 200
    return render(request, "workspace/preferences.html", {"form": form}, status=status)
