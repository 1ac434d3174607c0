"""Who may open a workspace page: agents, supervisors and admins. Anyone else is asked to sign in (anonymous)
or gets the 404 a missing page gets (customers): the workspace does not exist for them."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse

# Defence in depth for customer-written HTML shown inline: even if something slipped past the sanitizer, no
# script of theirs runs (ours are files under /static/), no form posts elsewhere, nothing frames the page.
# Remote images are allowed here because the agent may ask to see them; until then they have no src.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: https: http:",
        "connect-src 'self' ws: wss:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

View = Callable[..., HttpResponse]


def agent_required(view: View) -> View:
    @wraps(view)
    def checked(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_agent:
            raise Http404
        response = view(request, *args, **kwargs)
        response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response

    return checked
