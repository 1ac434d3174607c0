"""The workspace in a real browser: headless Chromium (Debian's package) driven by Playwright, against the
production web server (gunicorn) and a real Celery worker. Screenshots go to var/screenshots/."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connections

from conftest import (
    REPO,
    free_port,
    gunicorn_command,
    inbound_message,
    realtime_command,
    running_server,
    server_environment,
)
from tickets import inbound, lifecycle
from tickets.models import Message, Priority, Role, User

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOTS = REPO / "var" / "screenshots"
PASSWORD = "Kvitancia-2026!"

if not CHROMIUM.exists():
    pytest.skip("chromium is not installed (make test installs it)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def realtime_url() -> Iterator[str]:
    """The realtime service (uvicorn, Channels on the shared Redis with this run's own prefix)."""
    port = free_port()
    with running_server(realtime_command(port), port=port, env=server_environment()):
        yield f"ws://127.0.0.1:{port}"


@pytest.fixture
def web_server(celery_queue, realtime_url) -> Iterator[str]:
    with started_web_server(celery_queue, realtime_url) as base_url:
        yield base_url


@contextlib.contextmanager
def started_web_server(queue: str, realtime_url: str) -> Iterator[str]:
    """The production web command on this run's test database; replies go to the worker's queue."""
    port = free_port()
    env = server_environment(
        CELERY_QUEUE=queue,
        DELIVER_TO_LOG="true",
        REALTIME_URL=realtime_url,
        # Plain HTTP on 127.0.0.1: cookies cannot be Secure here (production keeps them Secure).
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
    )
    with running_server(gunicorn_command(port, threads=8), port=port, env=env):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def browser(monkeypatch) -> Iterator:
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
        # The test's queries ran beside Playwright's event loop, on connections of that context (asgiref's
        # Local): close them here, or the test database cannot be dropped at the end of the run.
        connections.close_all()


@pytest.fixture
def anna(billing) -> User:
    """An agent with a real password, as seed_demo's agents have."""
    user = User.objects.create_user(
        "anna", "anna@support.test", PASSWORD, role=Role.AGENT, first_name="Анна", last_name="Волкова"
    )
    billing.members.add(user)
    return user


def sign_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/account/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/tickets/")


def wait_until(condition: Callable[[], bool], *, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_agent_signs_in_takes_an_unassigned_ticket_replies_and_sees_it_delivered(
    web_server, browser, anna, ivan, celery_worker
):
    ticket = inbound.receive(inbound_message(subject="Не пришёл счёт за март")).ticket
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    sign_in(page, web_server, "anna")

    page.click("nav.rail a[href$='view=unassigned']")
    page.click(f"a[href='/tickets/{ticket.pk}/']")
    page.get_by_role("button", name="Assign to me").click()
    page.locator(".ticket-header").get_by_text("Анна Волкова").wait_for()
    page.fill("#composer-text", "Здравствуйте! Отправили счёт повторно.")
    page.keyboard.press("Control+Enter")

    page.locator(".entry.outbound").get_by_text("Отправили счёт повторно").wait_for()
    # Delivered by the worker; the page learns it live from the realtime service, without a reload.
    page.locator(".entry.outbound [data-delivery='sent']").wait_for(timeout=30_000)
    assert Message.objects.get(ticket=ticket, direction="out").delivery_status == "sent"
    ticket.refresh_from_db()
    assert ticket.assignee == anna and ticket.status == "open"


def test_a_new_customer_message_appears_on_the_open_ticket_and_keeps_the_draft(
    web_server, browser, anna, ivan, celery_worker
):
    ticket = inbound.receive(inbound_message(subject="Не пришёл счёт")).ticket
    page = browser.new_page()
    sign_in(page, web_server, "anna")
    page.goto(f"{web_server}/tickets/{ticket.pk}/")
    page.fill("#composer-text", "Черновик ответа")
    page.locator("html[data-live='on']").wait_for(state="attached")  # the page's socket is open

    inbound.receive(inbound_message(subject="Re: Не пришёл счёт", text="Нашёл счёт в спаме, спасибо!"))

    page.locator(".entry.inbound").get_by_text("Нашёл счёт в спаме").wait_for(timeout=30_000)
    assert page.input_value("#composer-text") == "Черновик ответа"
    assert page.locator("#live-banner").is_hidden()


def test_a_new_ticket_appears_in_the_list_and_its_count_without_a_reload(
    web_server, browser, anna, ivan, celery_worker
):
    page = browser.new_page()
    sign_in(page, web_server, "anna")
    page.goto(f"{web_server}/tickets/?view=unassigned")
    page.locator("html[data-live='on']").wait_for(state="attached")
    assert page.locator(".empty").is_visible()

    inbound.receive(inbound_message(subject="Возврат за двойное списание", new_conversation=True))

    page.locator(".ticket-row").get_by_text("Возврат за двойное списание").wait_for(timeout=30_000)
    unassigned = page.locator("#rail a[href$='view=unassigned'] .count")
    assert unassigned.inner_text() == "1"


def test_without_the_realtime_service_the_page_says_live_updates_are_paused(
    celery_queue, browser, anna, ivan
):
    closed = f"ws://127.0.0.1:{free_port()}"  # nothing listens there
    with started_web_server(celery_queue, closed) as base_url:
        page = browser.new_page()
        sign_in(page, base_url, "anna")

        page.locator("#live-banner").wait_for(state="visible", timeout=10_000)
        assert "Live updates are paused" in page.inner_text("#live-banner")
        assert page.locator(".ticket-list, .empty").count() == 1  # the page itself still works


def test_the_keyboard_moves_through_the_list_opens_takes_and_answers_a_ticket(
    web_server, browser, anna, ivan
):
    older = inbound.receive(inbound_message(subject="Старый вопрос", new_conversation=True)).ticket
    inbound.receive(inbound_message(subject="Новый вопрос", new_conversation=True))
    page = browser.new_page()
    sign_in(page, web_server, "anna")
    page.goto(f"{web_server}/tickets/?view=unassigned")

    page.keyboard.press("?")
    assert page.locator("#shortcuts").is_visible()
    page.keyboard.press("Escape")
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("o")
    page.wait_for_url(f"{web_server}/tickets/{older.pk}/")
    page.keyboard.press("a")
    page.locator(".ticket-header").get_by_text("Анна Волкова").wait_for()
    page.keyboard.press("n")
    page.keyboard.type("nj")  # typed into the note: no shortcut fires while typing

    assert page.is_checked("input[name=mode][value=note]")
    assert page.input_value("#composer-text") == "nj"
    assert page.url == f"{web_server}/tickets/{older.pk}/"


def test_a_customer_message_with_script_payloads_renders_inert(web_server, browser, anna, ivan):
    received = inbound.receive(
        inbound_message(
            subject="<img src=x onerror=window.pwned=1>",
            text="<script>window.pwned=2</script>",
            html='<p onmouseover="window.pwned=3">Hover</p><script>window.pwned=4</script>'
            '<img src="x" onerror="window.pwned=5"><a href="javascript:window.pwned=6">link</a>'
            '<img src="https://tracker.example/pixel.gif">',
        )
    )
    page = browser.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    sign_in(page, web_server, "anna")

    page.goto(f"{web_server}/tickets/{received.ticket.pk}/")
    page.hover("text=Hover")
    page.click("text=link")

    assert page.evaluate("window.pwned === undefined")
    assert not any("tracker.example" in url for url in requested)  # the pixel waits for "Show images"


@pytest.mark.parametrize("language", ["en", "ru"])
def test_a_reply_after_a_customer_message_arrived_asks_for_confirmation_and_keeps_the_draft(
    web_server, browser, anna, ivan, language
):
    ticket = inbound.receive(inbound_message(subject="Не пришёл счёт за март")).ticket
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale=language)
    page = context.new_page()
    sign_in(page, web_server, "anna")
    page.goto(f"{web_server}/tickets/{ticket.pk}/")
    page.fill("#composer-text", "Отправили счёт повторно.")

    inbound.receive(inbound_message(subject="Re: Не пришёл счёт за март", text="Нашёл счёт в спаме!"))
    page.keyboard.press("Control+Enter")

    page.locator("[data-arrived]").get_by_text("Нашёл счёт в спаме").wait_for(timeout=30_000)
    assert page.input_value("#composer-text") == "Отправили счёт повторно."
    assert not Message.objects.filter(ticket=ticket, direction="out").exists()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"stale-reply-{language}-1280.png", full_page=True)

    page.click("[data-send-anyway]")

    page.locator(".entry.outbound").get_by_text("Отправили счёт повторно.").wait_for(timeout=30_000)
    assert page.locator("[data-arrived]").count() == 0
    assert Message.objects.get(ticket=ticket, direction="out").author == anna
    context.close()


@pytest.mark.parametrize("language", ["en", "ru"])
def test_screenshots_of_sign_in_list_and_ticket_at_desktop_and_phone_width(
    web_server, browser, anna, ivan, olga_supervisor, language
):
    ticket = demo_tickets(anna, olga_supervisor)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in ((1280, 800), (375, 740)):
        context = browser.new_context(
            viewport={"width": width, "height": height}, locale=language, extra_http_headers={}
        )
        page = context.new_page()
        page.goto(f"{web_server}/account/login/")
        page.screenshot(path=SCREENSHOTS / f"signin-{language}-{width}.png", full_page=True)
        sign_in(page, web_server, "anna")
        page.goto(f"{web_server}/tickets/?view=open")
        page.screenshot(path=SCREENSHOTS / f"list-{language}-{width}.png", full_page=True)
        page.goto(f"{web_server}/tickets/{ticket.pk}/")
        page.screenshot(path=SCREENSHOTS / f"ticket-{language}-{width}.png", full_page=True)
        # Nothing scrolls sideways, even at 375 px with Russian's longer words.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        context.close()
    assert (SCREENSHOTS / f"ticket-{language}-375.png").stat().st_size > 0
    shutil.rmtree(SCREENSHOTS / "tmp", ignore_errors=True)


def test_slash_focuses_the_search_box_and_the_result_shows_the_match_highlighted(
    web_server, browser, anna, ivan
):
    inbound.receive(
        inbound_message(
            subject="Не пришёл счёт за март",
            text="Здравствуйте! Счёт за март так и не пришёл на почту. Пришлите, пожалуйста, ещё раз.",
        )
    )
    page = browser.new_page()
    sign_in(page, web_server, "anna")

    page.focus("#filter-tag")
    page.keyboard.press("/")  # typed in a field, "/" is just a character
    assert page.evaluate("document.activeElement.id") == "filter-tag"
    assert page.input_value("#filter-tag") == "/"
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "search-box"
    page.keyboard.type("счета")  # another form of the word: full-text search, not a substring
    page.keyboard.press("Enter")
    page.wait_for_url("**/search/?q=*")

    marks = page.locator(".ticket-row .highlight mark")
    assert marks.count() >= 1
    assert marks.first.inner_text().lower() == "счёт"
    assert page.locator(".ticket-row .subject").first.inner_text() == "Не пришёл счёт за март"
    assert page.input_value("#search-box") == "счета"


@pytest.mark.parametrize(("language", "query"), [("en", "annual plan"), ("ru", "счёт")])
def test_screenshots_of_search_results_at_desktop_and_phone_width(
    web_server, browser, anna, ivan, olga_supervisor, language, query
):
    demo_tickets(anna, olga_supervisor)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in ((1280, 800), (375, 740)):
        context = browser.new_context(viewport={"width": width, "height": height}, locale=language)
        page = context.new_page()
        sign_in(page, web_server, "anna")
        page.fill("#search-box", query)
        page.press("#search-box", "Enter")
        page.wait_for_selector(".ticket-row .highlight mark")
        page.screenshot(path=SCREENSHOTS / f"search-{language}-{width}.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        context.close()


@pytest.fixture
def olga_supervisor(db) -> User:
    return User.objects.create_user(
        "olga", "olga@support.test", PASSWORD, role=Role.SUPERVISOR, first_name="Ольга", last_name="Иванова"
    )


def demo_tickets(anna: User, olga: User):
    """A few conversations on several channels, as an agent's morning looks."""
    from tickets import replies
    from tickets.models import Channel, Status

    invoice = inbound.receive(
        inbound_message(
            subject="Не пришёл счёт за март",
            text="Здравствуйте! Счёт за март так и не пришёл на почту. Пришлите, пожалуйста, ещё раз.",
            html="<p>Здравствуйте! Счёт за март так и не пришёл на почту.</p>"
            '<p>Пришлите, пожалуйста, ещё раз.</p><img src="https://tracker.example/p.gif" alt="">',
        )
    ).ticket
    lifecycle.update(invoice, actor=olga, assignee=anna, priority=Priority.HIGH, tags=["invoice"])
    replies.add_note(invoice, actor=anna, text="Клиент на старом тарифе, счёт уходит на старый адрес.")
    replies.send_reply(invoice, actor=anna, text="Иван, отправили счёт повторно. Напишите, дошёл ли он.")
    inbound.receive(
        inbound_message(
            channel=Channel.TELEGRAM,
            sender_address="100000001",
            sender_name="Мария Соколова",
            subject="",
            text="Не могу войти в личный кабинет: пишет «неверный код подтверждения».",
            new_conversation=True,
        )
    )
    call = inbound.receive(
        inbound_message(
            channel=Channel.PHONE,
            sender_address="+74951234567",
            sender_name="Алексей Кузнецов",
            subject="",
            kind="call",
            text="Звонок: интернет-магазин не принимает оплату картой с утра.",
            new_conversation=True,
        )
    ).ticket
    lifecycle.update(call, actor=olga, priority=Priority.URGENT)
    plan = inbound.receive(
        inbound_message(
            sender_address="sarah.johnson@example.com",
            sender_name="Sarah Johnson",
            subject="Question about the annual plan",
            text="Hello, can we switch from the monthly to the annual plan mid-period?",
            new_conversation=True,
        )
    ).ticket
    lifecycle.update(plan, actor=olga, status=Status.PENDING)
    return invoice
