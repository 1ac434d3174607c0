"""manage.py seed_demo (a demo workspace through the real services, once) and the landing page."""

import stat
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.authtoken.models import Token

from tickets.management.commands.seed_demo import read_logins
from tickets.models import (
    Channel,
    Customer,
    DeliveryStatus,
    Direction,
    Identity,
    Message,
    MessageKind,
    Role,
    Status,
    Team,
    Ticket,
    TicketEvent,
    User,
)
from tickets.views.home import open_tickets_by_channel


@pytest.fixture
def logins_file(tmp_path):
    return tmp_path / "private" / "demo-logins.txt"


@pytest.fixture
def seed(db, settings, logins_file, monkeypatch):
    settings.DELIVER_TO_LOG = True
    monkeypatch.delenv("PORT", raising=False)

    def run() -> str:
        out = StringIO()
        call_command("seed_demo", logins_file=logins_file, stdout=out, stderr=StringIO())
        return out.getvalue()

    return run


def row_counts() -> dict[str, int]:
    models = (User, Team, Customer, Identity, Ticket, Message, TicketEvent, Token)
    return {model.__name__: model.objects.count() for model in models}


def test_first_run_creates_the_cast_with_roles_teams_and_tokens(seed):
    seed()

    admin = User.objects.get(username="admin")
    assert admin.role == Role.ADMIN and admin.is_staff and admin.is_superuser
    assert User.objects.filter(role=Role.SUPERVISOR).count() == 1
    agents = User.objects.filter(role=Role.AGENT)
    assert agents.count() == 2
    assert Team.objects.count() == 2
    for agent in agents:
        assert agent.teams.exists()
    assert Token.objects.count() == User.objects.count()


def test_first_run_creates_tickets_on_every_channel_through_the_pipeline(seed):
    seed()

    assert set(Ticket.objects.values_list("channel", flat=True)) == set(Channel.values)
    # Every ticket started with a customer's message, received (not written) with its events.
    for ticket in Ticket.objects.all():
        first = ticket.messages.order_by("created_at", "id").first()
        assert first.direction == Direction.IN and first.external_id
        assert ticket.events.filter(name="ticket.created").exists()
    assert Message.objects.filter(channel=Channel.PHONE, kind=MessageKind.CALL).exists()
    assert Message.objects.filter(kind=MessageKind.INTERNAL_NOTE).count() == 1
    replies = Message.objects.filter(direction=Direction.OUT, kind=MessageKind.MESSAGE)
    assert replies.count() >= 3
    assert set(replies.values_list("delivery_status", flat=True)) == {DeliveryStatus.QUEUED}
    assert Ticket.objects.filter(status=Status.SOLVED).exists()
    closed = Ticket.objects.get(status=Status.CLOSED)
    assert closed.follow_ups.count() == 1
    assert Ticket.objects.exclude(assignee=None).exists()
    assert Ticket.objects.exclude(tags=[]).exists()
    assert Ticket.objects.filter(priority="urgent").exists()


def test_customers_speak_russian_and_english_and_one_has_a_portal_login(seed):
    seed()

    assert set(Customer.objects.values_list("locale", flat=True)) >= {"ru", "en"}
    portal = Customer.objects.get(user__isnull=False)
    assert portal.user.role == Role.CUSTOMER
    assert portal.tickets.exists()


def test_passwords_are_random_printed_and_kept_in_a_private_file(seed, logins_file):
    output = seed()

    assert stat.S_IMODE(logins_file.stat().st_mode) == 0o600
    logins = {login.username: login for login in read_logins(logins_file)}
    assert set(logins) == set(User.objects.values_list("username", flat=True))
    for login in logins.values():
        assert len(login.password) >= 16
        assert login.password in output
        assert User.objects.get(username=login.username).check_password(login.password)
    assert "http://127.0.0.1:8000/" in output
    assert Token.objects.get(user__username="admin").key in output


def test_second_run_changes_nothing_and_prints_the_same_logins(seed, logins_file, monkeypatch):
    first_output = seed()
    counts = row_counts()
    passwords = {login.password for login in read_logins(logins_file)}
    token = Token.objects.get(user__username="admin").key
    monkeypatch.setenv("PORT", "8123")

    second_output = seed()

    assert row_counts() == counts
    assert {login.password for login in read_logins(logins_file)} == passwords
    assert "already exists" in second_output
    assert "http://127.0.0.1:8123/" in second_output
    for password in passwords:
        assert password in first_output and password in second_output
    assert token in second_output


def test_refuses_a_database_with_demo_usernames_but_no_admin(seed):
    User.objects.create_user("anna", role=Role.AGENT)

    with pytest.raises(CommandError, match="not empty"):
        seed()

    assert Ticket.objects.count() == 0


def test_landing_page_speaks_english_and_russian(client, db):
    english = client.get("/", HTTP_ACCEPT_LANGUAGE="en")
    russian = client.get("/", HTTP_ACCEPT_LANGUAGE="ru")

    assert english.status_code == russian.status_code == 200
    assert "Open tickets by channel" in english.text
    assert "Открытые обращения по каналам" in russian.text
    assert '<html lang="ru">' in russian.text
    for link in ("/admin/", "/api/docs/", "/api/v1/tickets/"):
        assert f'href="{link}"' in english.text


def test_language_switch_remembers_russian(client, db):
    response = client.post("/i18n/setlang/", {"language": "ru", "next": "/"})

    assert response.status_code == 302
    assert "Служба поддержки" in client.get("/", HTTP_ACCEPT_LANGUAGE="en").text


def test_landing_page_counts_open_tickets_per_channel_for_agents_only(client, seed):
    seed()
    anonymous = client.get("/", HTTP_ACCEPT_LANGUAGE="en")
    # The browser's language counts for a user without a language of their own (the admin's is English).
    User.objects.filter(username="admin").update(locale="")
    client.force_login(User.objects.get(username="admin"))

    signed_in = client.get("/", HTTP_ACCEPT_LANGUAGE="ru")

    assert "Sign in" in anonymous.text and "<table>" not in anonymous.text
    assert "Чат-виджет" in signed_in.text
    open_count = Ticket.objects.exclude(status__in=[Status.SOLVED, Status.CLOSED]).count()
    assert signed_in.context["total_open"] == open_count
    assert all(count >= 1 for _label, count in signed_in.context["channels"])


def test_open_ticket_counts_take_one_query(seed, django_assert_num_queries):
    seed()
    admin = User.objects.get(username="admin")

    with django_assert_num_queries(1):
        counts = open_tickets_by_channel(admin)

    assert set(counts) == set(Channel.values)
    assert sum(counts.values()) == Ticket.objects.exclude(status__in=[Status.SOLVED, Status.CLOSED]).count()
