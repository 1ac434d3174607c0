from django.contrib.auth import views as auth_views
from django.urls import include, path

from tickets.views.account import SignInView
from tickets.views.home import home
from tickets.views.inbox import inbox
from tickets.views.preferences import preferences
from tickets.views.search import search
from tickets.views.ticket import assign_to_me, compose, ticket_page, update_fields

urlpatterns = [
    path("", home, name="home"),
    # Django's auth views (password change and reset) with our templates; sign-in has "remember me".
    path("account/login/", SignInView.as_view(), name="login"),
    path("account/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/preferences/", preferences, name="preferences"),
    path("account/", include("django.contrib.auth.urls")),
    path("tickets/", inbox, name="inbox"),
    path("search/", search, name="search"),
    path("tickets/<int:ticket_id>/", ticket_page, name="ticket"),
    path("tickets/<int:ticket_id>/compose/", compose, name="ticket-compose"),
    path("tickets/<int:ticket_id>/fields/", update_fields, name="ticket-fields"),
    path("tickets/<int:ticket_id>/assign-to-me/", assign_to_me, name="ticket-assign-to-me"),
]
