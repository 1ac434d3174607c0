"""Signing in to the workspace, "remember me", signing out, passwords, the lockout page, preferences."""

import re

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone, translation

from tickets.models import User

pytestmark = pytest.mark.django_db


def sign_in(client, username: str, password: str, **extra):
    return client.post(reverse("login"), {"username": username, "password": password, **extra})


def test_agent_signs_in_and_lands_on_the_ticket_list(client, alice):
    response = sign_in(client, "alice", "pw", remember_me="on")

    assert response.status_code == 302 and response["Location"] == reverse("inbox")
    assert client.get(reverse("inbox")).status_code == 200


def test_without_remember_me_the_session_ends_with_the_browser(client, alice):
    sign_in(client, "alice", "pw")

    assert client.session.get_expire_at_browser_close()


def test_remember_me_keeps_the_session_for_weeks(client, alice, settings):
    sign_in(client, "alice", "pw", remember_me="on")

    assert not client.session.get_expire_at_browser_close()
    assert client.session.get_expiry_age() == settings.SESSION_COOKIE_AGE >= 7 * 24 * 3600


def test_wrong_password_says_so_without_telling_which_part_was_wrong(client, alice):
    response = sign_in(client, "alice", "wrong")

    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_the_sign_in_page_shows_the_lockout_with_when_to_try_again(client, alice, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _attempt in range(3):
        sign_in(client, "alice", "wrong")

    response = sign_in(client, "alice", "pw")

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    page = response.content.decode()
    assert "Too many failed sign-ins" in page and "try again in 15 minutes" in page
    assert 'href="/static/workspace/workspace.css"' in page  # the workspace's own design, not a bare page


def test_sign_out_is_a_post_only(client, alice):
    client.force_login(alice)

    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))

    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert client.get(reverse("inbox")).status_code == 302


def test_csrf_is_checked_on_sign_in(alice):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)

    assert sign_in(strict, "alice", "pw").status_code == 403


def test_password_change_keeps_the_agent_signed_in_with_the_new_password(client, alice):
    client.force_login(alice)

    response = client.post(
        reverse("password_change"),
        {"old_password": "pw", "new_password1": "Kvitancia-2026!", "new_password2": "Kvitancia-2026!"},
    )

    assert response.status_code == 302
    assert User.objects.get(pk=alice.pk).check_password("Kvitancia-2026!")
    assert client.get(reverse("inbox")).status_code == 200


def test_password_reset_mails_a_link_that_sets_a_new_password(client, alice):
    response = client.post(reverse("password_reset"), {"email": "alice@support.test"})

    assert response.status_code == 302
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["alice@support.test"]
    link = re.search(r"https?://[^/]+(/account/reset/\S+)", mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    assert b"Choose a new password" in form_page.content
    client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "Kvitancia-2026!", "new_password2": "Kvitancia-2026!"},
    )
    assert User.objects.get(pk=alice.pk).check_password("Kvitancia-2026!")


def test_the_users_own_language_wins_over_the_browsers(client, alice):
    alice.locale = "ru"
    alice.save()
    client.force_login(alice)

    response = client.get(reverse("inbox"), HTTP_ACCEPT_LANGUAGE="en")

    assert response["Content-Language"] == "ru"
    assert "Мои открытые" in response.content.decode()


def test_without_a_language_of_their_own_the_browsers_is_used(client, alice):
    client.force_login(alice)

    response = client.get(reverse("inbox"), HTTP_ACCEPT_LANGUAGE="ru-RU,ru;q=0.9")

    assert response["Content-Language"] == "ru"


def test_times_are_shown_in_the_users_time_zone(client, alice, ivan):
    from conftest import inbound_message
    from tickets import inbound

    ticket = inbound.receive(inbound_message()).ticket
    alice.timezone = "Asia/Vladivostok"
    alice.save()
    client.force_login(alice)

    page = client.get(reverse("ticket", args=[ticket.pk])).content.decode()

    local = timezone.localtime(
        ticket.created_at, timezone=__import__("zoneinfo").ZoneInfo("Asia/Vladivostok")
    )
    assert f'datetime="{local.isoformat()}"' in page
    assert timezone.get_current_timezone_name() == "UTC"  # nothing leaks to the next request


def test_preferences_save_language_and_time_zone_and_refuse_unknown_ones(client, alice):
    client.force_login(alice)

    refused = client.post(reverse("preferences"), {"locale": "ru", "timezone": "Mars/Olympus"})
    saved = client.post(reverse("preferences"), {"locale": "ru", "timezone": "Europe/Moscow"})

    assert refused.status_code == 400
    assert saved.status_code == 302
    alice.refresh_from_db()
    assert (alice.locale, alice.timezone) == ("ru", "Europe/Moscow")
    translation.activate("en")


def test_seed_demos_agents_and_supervisor_sign_in_with_the_printed_passwords(client, settings, tmp_path):
    from io import StringIO

    from django.core.management import call_command

    from tickets.management.commands.seed_demo import read_logins

    settings.DELIVER_TO_LOG = True
    output = StringIO()
    call_command("seed_demo", logins_file=tmp_path / "logins.txt", stdout=output, stderr=StringIO())
    staff = [login for login in read_logins(tmp_path / "logins.txt") if login.role in ("agent", "supervisor")]

    assert "/tickets/" in output.getvalue()
    assert len(staff) == 3
    for login in staff:
        assert login.password in output.getvalue()
        response = sign_in(client, login.username, login.password)
        assert response.status_code == 302 and response["Location"] == reverse("inbox"), login.username
        assert client.get(reverse("inbox")).status_code == 200
        client.post(reverse("logout"))
