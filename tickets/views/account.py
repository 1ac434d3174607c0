"""Signing in with "remember me"; the rest of the account pages are Django's auth views (views/urls.py)."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.http import HttpResponse

from tickets.forms import SignInForm


class SignInView(auth_views.LoginView):
    """Django's LoginView (django-axes counts its failures and answers a lockout, helpdesk.signin)."""

    form_class = SignInForm
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form: SignInForm) -> HttpResponse:
        response = super().form_valid(form)
        if not form.cleaned_data["remember_me"]:
            # The session ends when the browser closes; remembered ones last SESSION_COOKIE_AGE.
            self.request.session.set_expiry(0)
        return response
