"""Password guessing: every way to sign in (API token, admin, Django auth views) shares one lockout, per
client address and per account, told apart behind the trusted proxies only, kept in PostgreSQL (not Redis)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import F
from django.test import Client, override_settings
from rest_framework.test import APIClient

from conftest import free_port

TOKEN_URL = "/api/v1/auth/token/"
ADMIN_LOGIN_URL = "/admin/login/?next=/admin/"
LIMIT = 5
COOL_OFF = timedelta(minutes=15)
UNTRUSTED_CLIENT = "203.0.113.7"
PROXY = "10.0.0.2"


@pytest.fixture(autouse=True)
def lockout_after_five_failures(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.AXES_COOLOFF_TIME = COOL_OFF
    settings.TRUSTED_PROXIES = ["127.0.0.1", "::1", PROXY]


def token_sign_in(username: str, password: str, *, peer: str = UNTRUSTED_CLIENT, forwarded_for: str = ""):
    headers = {"REMOTE_ADDR": peer}
    if forwarded_for:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return APIClient().post(TOKEN_URL, {"username": username, "password": password}, format="json", **headers)


def admin_sign_in(client: Client, username: str, password: str, *, peer: str = UNTRUSTED_CLIENT):
    return client.post(ADMIN_LOGIN_URL, {"username": username, "password": password}, REMOTE_ADDR=peer)


def varied_addresses(count: int) -> list[str]:
    """Addresses as a guesser would make them up, one per request."""
    return [f"{(n * 37) % 223 + 1}.{(n * 91) % 256}.{(n * 53) % 256}.{n % 254 + 1}" for n in range(count)]


def cool_off_passes() -> None:
    """Every recorded failure becomes older than the cool-off, as if the locked-out client waited it out."""
    from axes.models import AccessAttempt

    AccessAttempt.objects.update(attempt_time=F("attempt_time") - COOL_OFF - timedelta(seconds=1))


def test_token_sign_in_is_locked_after_repeated_wrong_passwords(alice):
    statuses = [token_sign_in("alice", f"guess-{n}").status_code for n in range(LIMIT + 1)]

    assert statuses == [400] * (LIMIT - 1) + [429, 429]


def test_random_forwarded_for_from_an_untrusted_client_does_not_escape_the_lockout(alice, bob):
    # Other accounts each time, so only the client's own counter can lock it.
    guesses = [
        token_sign_in(f"agent-{n}", "guess", forwarded_for=address).status_code
        for n, address in enumerate(varied_addresses(LIMIT))
    ]
    assert guesses == [400] * (LIMIT - 1) + [429]

    assert token_sign_in("bob", "pw", forwarded_for="198.51.100.99").status_code == 429
    assert token_sign_in("bob", "pw", peer="203.0.113.8").status_code == 200


def test_a_forged_proxy_hop_from_an_untrusted_client_does_not_escape_the_lockout(alice, bob):
    for n, address in enumerate(varied_addresses(LIMIT)):
        token_sign_in(f"agent-{n}", "guess", forwarded_for=f"{address}, {PROXY}")

    assert token_sign_in("bob", "pw", forwarded_for=f"198.51.100.99, {PROXY}").status_code == 429


def test_a_trusted_proxys_forwarded_for_tells_clients_apart(alice, bob):
    guesses = [
        token_sign_in(f"agent-{n}", "guess", peer=PROXY, forwarded_for="198.51.100.1").status_code
        for n in range(LIMIT)
    ]
    assert guesses == [400] * (LIMIT - 1) + [429]

    assert token_sign_in("bob", "pw", peer=PROXY, forwarded_for="198.51.100.1").status_code == 429
    # Another client behind the same proxy, even one that sent its own X-Forwarded-For on to it.
    assert (
        token_sign_in("bob", "pw", peer=PROXY, forwarded_for="198.51.100.1, 198.51.100.2").status_code == 200
    )


def test_an_account_is_locked_against_guesses_from_many_client_addresses(alice, bob):
    guesses = [
        token_sign_in("alice", f"guess-{n}", peer=address).status_code
        for n, address in enumerate(varied_addresses(LIMIT))
    ]
    assert guesses == [400] * (LIMIT - 1) + [429]

    locked = token_sign_in("alice", "pw", peer="198.51.100.200")
    assert locked.status_code == 429
    assert "token" not in locked.json()
    assert token_sign_in("bob", "pw", peer="198.51.100.201").status_code == 200


def test_a_locked_out_token_sign_in_is_429_with_retry_after(alice):
    for n in range(LIMIT):
        token_sign_in("alice", f"guess-{n}")

    locked = token_sign_in("alice", "pw")

    assert locked.status_code == 429
    assert 0 < int(locked["Retry-After"]) <= COOL_OFF.total_seconds()
    assert locked.json()["detail"]


def test_the_right_password_after_the_cool_off_gets_a_token(alice):
    for n in range(LIMIT):
        token_sign_in("alice", f"guess-{n}")
    assert token_sign_in("alice", "pw").status_code == 429

    cool_off_passes()

    signed_in = token_sign_in("alice", "pw")
    assert signed_in.status_code == 200
    assert signed_in.json()["token"]


def test_admin_login_is_locked_after_repeated_wrong_passwords(dave):
    client = Client()

    statuses = [admin_sign_in(client, "dave", f"guess-{n}").status_code for n in range(LIMIT)]
    locked = admin_sign_in(client, "dave", "pw")

    assert statuses == [200] * (LIMIT - 1) + [429]
    assert locked.status_code == 429
    assert client.get("/admin/").status_code == 302, "the right password during the lockout signs nobody in"


def test_a_locked_out_admin_login_is_a_page_saying_when_to_try_again(dave):
    client = Client()
    for n in range(LIMIT):
        admin_sign_in(client, "dave", f"guess-{n}")

    locked = admin_sign_in(client, "dave", "pw")

    assert locked.status_code == 429
    assert locked["Content-Type"].startswith("text/html")
    assert 0 < int(locked["Retry-After"]) <= COOL_OFF.total_seconds()
    page = locked.content.decode()
    assert "Too many failed sign-ins" in page
    assert "15 minutes" in page


def test_admin_login_works_again_after_the_cool_off(dave):
    client = Client()
    for n in range(LIMIT):
        admin_sign_in(client, "dave", f"guess-{n}")

    cool_off_passes()

    assert admin_sign_in(client, "dave", "pw").status_code == 302
    assert client.get("/admin/").status_code == 200


def test_failures_on_the_admin_count_against_the_token_endpoint_too(alice, dave):
    client = Client()
    for n in range(LIMIT):
        admin_sign_in(client, "dave", f"guess-{n}", peer=f"198.51.100.{n + 1}")

    assert token_sign_in("dave", "pw", peer="198.51.100.100").status_code == 429


def production_cache_on_a_closed_port() -> dict:
    """settings.py's Redis cache, pointed where nothing listens (Redis down)."""
    from django.conf import settings

    from helpdesk import settings as production

    assert settings.CACHES != production.CACHES, "tests run on a per-process cache"
    cache = dict(production.CACHES["default"], LOCATION=f"redis://127.0.0.1:{free_port()}/0")
    return {"default": cache}


def test_signing_in_works_while_redis_is_down(alice, dave):
    admin = Client()
    with override_settings(CACHES=production_cache_on_a_closed_port()):
        signed_in = token_sign_in("alice", "pw")
        wrong = token_sign_in("alice", "guess")
        admin_signed_in = admin_sign_in(admin, "dave", "pw")
        admin_page = admin.get("/admin/")

    assert signed_in.status_code == 200
    assert signed_in.json()["token"]
    assert wrong.status_code == 400
    assert (admin_signed_in.status_code, admin_page.status_code) == (302, 200)


def test_a_username_longer_than_any_account_is_a_400(alice):
    from axes.models import AccessAttempt

    response = token_sign_in("a" * 300, "guess")

    assert response.status_code == 400
    assert "username" in response.json()
    assert not AccessAttempt.objects.exists()
