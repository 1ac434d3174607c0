"""The Russian workspace shows no English of ours: each page's visible text, walked node by node, is compared
with the English msgids of locale/ru (an untranslated or missing entry shows its English)."""

import re
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.urls import reverse

from conftest import inbound_message
from tickets import inbound, lifecycle, replies
from tickets.models import Priority

pytestmark = pytest.mark.django_db

# Words that read the same in both languages.
SAME_IN_BOTH = {"API", "HTML", "Telegram", "English"}


def catalogue_msgids() -> set[str]:
    text = (settings.BASE_DIR / "locale" / "ru" / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8")
    msgids = set()
    for block in text.split("\n\n"):
        found = re.search(r'^msgid ((?:".*"\n?)+)', block, re.MULTILINE)
        if found:
            msgid = "".join(re.findall(r'"(.*)"', found.group(1))).replace('\\"', '"')
            if msgid and "%(" not in msgid and msgid not in SAME_IN_BOTH:
                msgids.add(msgid)
    return msgids


class VisibleText(HTMLParser):
    """Text nodes and the attributes people read (placeholders, titles, labels for screen readers)."""

    HIDDEN = {"script", "style", "title"}

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.HIDDEN:
            self._hidden += 1
        for name, value in attrs:
            if name in ("placeholder", "title", "aria-label") and value:
                self.texts.append(value)

    def handle_endtag(self, tag):
        if tag in self.HIDDEN:
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden and data.strip():
            self.texts.append(" ".join(data.split()))


def english_on(page: str, msgids: set[str]) -> list[str]:
    parser = VisibleText()
    parser.feed(page)
    return [text for text in parser.texts if text in msgids]


def test_the_russian_list_ticket_and_account_pages_show_no_english_of_ours(client, alice, billing, ivan):
    ticket = inbound.receive(
        inbound_message(html='<p>Счёт</p><img src="https://tracker.example/p.gif">')
    ).ticket
    lifecycle.update(ticket, actor=alice, priority=Priority.HIGH, team=billing, tags=["invoice"])
    replies.add_note(ticket, actor=alice, text="Проверить тариф")
    replies.send_reply(ticket, actor=alice, text="Отправили счёт", status="pending")
    alice.locale = "ru"
    alice.save()
    client.force_login(alice)
    msgids = catalogue_msgids()
    pages = {
        "list": reverse("inbox") + "?view=all",
        "empty list": reverse("inbox") + "?view=solved",
        "bad filter": reverse("inbox") + "?view=nope",
        "ticket": reverse("ticket", args=[ticket.pk]),
        "search": reverse("search") + "?q=%D1%81%D1%87%D1%91%D1%82",
        "empty search": reverse("search") + "?q=chandelier",
        "blank search": reverse("search"),
        "bad search": reverse("search") + "?q=" + "x" * 300,
        "preferences": reverse("preferences"),
        "password change": reverse("password_change"),
    }

    for name, url in pages.items():
        page = client.get(url).content.decode()
        assert english_on(page, msgids) == [], name
        assert 'lang="ru"' in page, name

    client.logout()
    sign_in = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert english_on(sign_in, msgids) == []


def test_the_check_finds_an_english_string_when_one_is_left():
    msgids = catalogue_msgids()

    assert english_on("<p>Assign to me</p><input placeholder='Write your answer…'>", msgids) == [
        "Assign to me",
        "Write your answer…",
    ]
