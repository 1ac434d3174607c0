"""`manage.py seed_demo`: a demo workspace on first run; afterwards only the URL and logins again.

Everything goes through the real services: customers write in through `tickets.inbound.receive()`,
agents answer with `tickets.replies.send_reply()`, route with `tickets.lifecycle.update()`. The
passwords are random, printed once and kept in a private file (mode 600) so later runs can print
them again; the data is never touched after the first run.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token

from tickets import inbound, lifecycle, replies
from tickets.channels import InboundMessage
from tickets.models import Channel, Customer, MessageKind, Priority, Role, Status, Team, Ticket, User

ADMIN_USERNAME = "admin"


@dataclass(frozen=True, slots=True)
class DemoLogin:
    username: str
    password: str
    role: str


@dataclass(frozen=True, slots=True)
class DemoUser:
    username: str
    role: str
    first_name: str
    last_name: str
    locale: str
    is_staff: bool = False
    is_superuser: bool = False


# Everyone signs in to the workspace (/tickets/) with the printed password; only the admin to /admin/ too.
STAFF = (
    DemoUser(ADMIN_USERNAME, Role.ADMIN, "Demo", "Admin", "en", is_staff=True, is_superuser=True),
    DemoUser("olga", Role.SUPERVISOR, "Ольга", "Иванова", "ru"),
    DemoUser("anna", Role.AGENT, "Анна", "Волкова", "ru"),
    DemoUser("mike", Role.AGENT, "Mike", "Brown", "en"),
)
PORTAL_CUSTOMER = DemoUser("ivan", Role.CUSTOMER, "Иван", "Петров", "ru")
TEAMS = {"Billing": ("olga", "anna"), "Support": ("olga", "mike")}


def default_logins_file() -> Path:
    configured = getattr(settings, "DEMO_LOGINS_FILE", None)
    if configured:
        return Path(configured)
    return Path(getattr(settings, "VAR_DIR", Path(settings.BASE_DIR) / "var")) / "demo-logins.txt"


def demo_url() -> str:
    port = os.environ.get("PORT", "").strip() or "8000"
    if not port.isdigit():
        raise CommandError(f"PORT must be a number, not {port!r}")
    return f"http://127.0.0.1:{port}/"


class Command(BaseCommand):
    help = (
        "Create a demo workspace (users, teams, customers, tickets on every channel) on first run; "
        "on later runs only print the URL and the logins again."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--logins-file",
            type=Path,
            default=None,
            help="Where the passwords are kept (default: settings.DEMO_LOGINS_FILE or var/demo-logins.txt)",
        )

    def handle(self, *args, logins_file: Path | None, **options) -> None:
        logins_file = Path(logins_file) if logins_file else default_logins_file()
        if User.objects.filter(username=ADMIN_USERNAME).exists():
            self.stdout.write("The demo workspace already exists; nothing changed.")
            logins = read_logins(logins_file)
            if not logins:
                self.stderr.write(
                    f"No demo logins in {logins_file}: the passwords were printed on the first run. "
                    f"Set a new one with: manage.py changepassword {ADMIN_USERNAME}"
                )
        else:
            taken = User.objects.filter(username__in=[user.username for user in (*STAFF, PORTAL_CUSTOMER)])
            if taken.exists():
                raise CommandError(
                    f"Users {sorted(taken.values_list('username', flat=True))} exist but {ADMIN_USERNAME!r} "
                    "does not: this database is not empty, refusing to seed a demo into it."
                )
            with transaction.atomic():
                logins = seed_workspace()
                # Inside the transaction: if the file cannot be written, no data is left without passwords.
                write_logins(logins_file, logins)
            self.stdout.write(self.style.SUCCESS("Demo workspace created."))
        self.print_access(logins, logins_file)

    def print_access(self, logins: list[DemoLogin], logins_file: Path) -> None:
        url = demo_url()
        self.stdout.write(f"Helpdesk demo: {url}")
        self.stdout.write(
            f"  Workspace: {url}tickets/ (agents and the supervisor sign in with the logins below)"
        )
        self.stdout.write(f"  Admin:     {url}admin/")
        self.stdout.write(f"  API docs:  {url}api/docs/")
        self.stdout.write(f"  API:       {url}api/v1/tickets/")
        if settings.REALTIME_URL:
            self.stdout.write(
                f"  Live:      {settings.REALTIME_URL.rstrip('/')}/ws/events/ (realtime service)"
            )
        if logins:
            self.stdout.write(f"Logins (kept in {logins_file}, readable by you only):")
            width = max(len(login.username) for login in logins)
            for login in logins:
                self.stdout.write(f"  {login.username.ljust(width)}  {login.password}  ({login.role})")
        token = Token.objects.filter(user__username=ADMIN_USERNAME).values_list("key", flat=True).first()
        if token:
            self.stdout.write(f"API token of {ADMIN_USERNAME}: {token}")
            self.stdout.write(f'  curl -H "Authorization: Token {token}" {url}api/v1/tickets/')


def read_logins(path: Path) -> list[DemoLogin]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    logins = []
    for line in text.splitlines():
        fields = line.split("\t")
        if line.startswith("#") or len(fields) != 3:
            continue
        logins.append(DemoLogin(*fields))
    return logins


def write_logins(path: Path, logins: list[DemoLogin]) -> None:
    """Write the file readable by its owner only, from the first byte on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Demo helpdesk logins, written by `manage.py seed_demo` on its first run. Keep this file private.",
        "# username<TAB>password<TAB>role",
        *(f"{login.username}\t{login.password}\t{login.role}" for login in logins),
    ]
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # the file may have existed with wider permissions
    with os.fdopen(descriptor, "w", encoding="utf-8") as logins_file:
        logins_file.write("\n".join(lines) + "\n")


def seed_workspace() -> list[DemoLogin]:
    """Create the demo people and conversations. Runs inside the caller's transaction."""
    logins: list[DemoLogin] = []
    people: dict[str, User] = {}
    for demo_user in (*STAFF, PORTAL_CUSTOMER):
        people[demo_user.username], password = _create_user(demo_user)
        logins.append(DemoLogin(demo_user.username, password, demo_user.role))
    teams = {}
    for name, usernames in TEAMS.items():
        teams[name], _created = Team.objects.get_or_create(name=name)
        teams[name].members.add(*(people[username] for username in usernames))
    _seed_conversations(people, teams)
    return logins


def _create_user(demo_user: DemoUser) -> tuple[User, str]:
    password = secrets.token_urlsafe(12)
    user = User.objects.create_user(
        demo_user.username,
        f"{demo_user.username}@helpdesk.example",
        password,
        role=demo_user.role,
        first_name=demo_user.first_name,
        last_name=demo_user.last_name,
        locale=demo_user.locale,
        is_staff=demo_user.is_staff,
        is_superuser=demo_user.is_superuser,
    )
    Token.objects.create(user=user)
    return user, password


def _receive(**fields) -> Ticket:
    return inbound.receive(InboundMessage(**fields)).ticket


def _seed_conversations(people: dict[str, User], teams: dict[str, Team]) -> None:
    olga, anna, mike = people["olga"], people["anna"], people["mike"]

    # Email, Russian: routed to Billing, answered, the customer confirms, solved. Ivan has a portal login.
    invoice = _receive(
        channel=Channel.EMAIL,
        external_id="<demo-invoice-1@example.ru>",
        sender_address="ivan.petrov@example.ru",
        sender_name="Иван Петров",
        sender_locale="ru",
        subject="Не пришёл счёт за март",
        text="Здравствуйте! Счёт за март так и не пришёл на почту. Пришлите, пожалуйста, ещё раз.",
        new_conversation=True,
    )
    lifecycle.update(
        invoice, actor=olga, team=teams["Billing"], assignee=anna, priority=Priority.HIGH, tags=["invoice"]
    )
    replies.send_reply(
        invoice,
        actor=anna,
        text="Здравствуйте, Иван! Отправили счёт повторно. Напишите, пожалуйста, дошёл ли он.",
        status=Status.PENDING,
    )
    _receive(
        channel=Channel.EMAIL,
        external_id="<demo-invoice-2@example.ru>",
        sender_address="ivan.petrov@example.ru",
        sender_name="Иван Петров",
        subject="Re: Не пришёл счёт за март",
        text="Получил, спасибо!",
        in_reply_to=("<demo-invoice-1@example.ru>",),
    )
    replies.send_reply(invoice, actor=anna, text="Рады помочь! Хорошего дня.", status=Status.SOLVED)
    Customer.objects.filter(pk=invoice.customer_id).update(user=people[PORTAL_CUSTOMER.username])

    # Email, English: new and unrouted, waiting in the queue.
    _receive(
        channel=Channel.EMAIL,
        external_id="<demo-plan-1@example.com>",
        sender_address="sarah.johnson@example.com",
        sender_name="Sarah Johnson",
        sender_locale="en",
        subject="Question about the annual plan",
        text="Hello, can we switch from the monthly to the annual plan in the middle of a billing period?",
        new_conversation=True,
    )

    # Telegram, Russian: Support, an internal note, then a reply.
    login = _receive(
        channel=Channel.TELEGRAM,
        external_id="100000001:1",
        sender_address="100000001",
        sender_name="Мария Соколова",
        sender_locale="ru",
        text="Не могу войти в личный кабинет: пишет «неверный код подтверждения».",
        thread_key="100000001",
        channel_data={"chat_id": 100000001},
    )
    lifecycle.update(login, actor=olga, team=teams["Support"], assignee=mike, tags=["login", "2fa"])
    replies.add_note(
        login, actor=mike, text="В логах код истёк через 5 минут. Попросить запросить новый код."
    )
    replies.send_reply(
        login,
        actor=mike,
        text="Мария, код действует 5 минут. Запросите, пожалуйста, новый и введите его сразу.",
    )

    # Phone: an inbound call, urgent, in the Billing queue without an assignee.
    call = _receive(
        channel=Channel.PHONE,
        external_id="call-demo-0001",
        sender_address="+7 495 123-45-67",
        sender_name="Алексей Кузнецов",
        sender_locale="ru",
        kind=MessageKind.CALL,
        text="Звонок: интернет-магазин клиента не принимает оплату картой с утра.",
        thread_key="call-demo-0001",
        channel_data={"duration_seconds": 184, "direction": "inbound"},
    )
    lifecycle.update(call, actor=olga, team=teams["Billing"], priority=Priority.URGENT, tags=["payments"])

    # Chat widget, English: answered, waiting on the customer.
    export = _receive(
        channel=Channel.WIDGET,
        external_id="5b0c7c1e-4d2a-4f63-9b8e-0d6f2a9e1c01",
        sender_address="visitor-7f3c2a91",
        sender_name="Emily Clark",
        sender_locale="en",
        text="Hi! How do I export all my tickets to CSV?",
        thread_key="conversation-demo-0001",
    )
    lifecycle.update(export, actor=mike, team=teams["Support"], assignee=mike, tags=["export"])
    replies.send_reply(
        export,
        actor=mike,
        text="Hi Emily! Open Reports → Export and choose CSV. Did that work for you?",
        status=Status.PENDING,
    )

    # API (a CRM integration): solved, closed, then the customer writes again: a follow-up ticket.
    webhook = _receive(
        channel=Channel.API,
        external_id="crm-message-1042-1",
        sender_address="crm-contact-1042",
        sender_name="John Miller",
        sender_locale="en",
        subject="Order webhook returns 500",
        text="Our order webhook has been answering 500 since yesterday's deploy.",
        thread_key="crm-case-1042",
    )
    lifecycle.update(webhook, actor=olga, team=teams["Support"], assignee=mike, tags=["webhook"])
    replies.send_reply(
        webhook, actor=mike, text="Fixed: the endpoint is back. Sorry for the trouble!", status=Status.SOLVED
    )
    lifecycle.update(webhook, actor=olga, status=Status.CLOSED)
    follow_up = _receive(
        channel=Channel.API,
        external_id="crm-message-1042-2",
        sender_address="crm-contact-1042",
        sender_name="John Miller",
        text="The webhook is failing again since this morning.",
        thread_key="crm-case-1042",
    )
    lifecycle.update(
        follow_up, actor=olga, assignee=mike, priority=Priority.HIGH, tags=["webhook", "regression"]
    )
