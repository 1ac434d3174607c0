"""Identity addresses from real-world payloads (../shared/realdata) normalize to one canonical form."""

import json
import re
from pathlib import Path

import pytest

from tickets.exceptions import InvalidIdentity
from tickets.identities import normalize_address
from tickets.models import Channel

# ../shared beside the checkout, in development and in CI alike.
REALDATA = Path(__file__).resolve().parents[3] / "shared" / "realdata"

TELEGRAM_UPDATES = sorted((REALDATA / "telegram" / "nutgram" / "Updates").glob("*.json"))
TWILIO_SMS = sorted((REALDATA / "cti" / "zammad-twilio-sms").glob("*.json"))
ZAMMAD_EXPECTED = sorted((REALDATA / "email" / "zammad").glob("*.yml"))


def senders_in(update: dict) -> list[int]:
    """Every `from.id` in a Telegram update, wherever the update type nests it."""
    found = []
    stack = [update]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            sender = node.get("from")
            if isinstance(sender, dict) and isinstance(sender.get("id"), int):
                found.append(sender["id"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def test_realdata_is_present():
    assert TELEGRAM_UPDATES and TWILIO_SMS and ZAMMAD_EXPECTED


@pytest.mark.parametrize("path", TELEGRAM_UPDATES, ids=lambda p: p.stem)
def test_telegram_sender_ids_are_identities(path):
    for user_id in senders_in(json.loads(path.read_text())):
        assert normalize_address(Channel.TELEGRAM, str(user_id)) == str(user_id)


@pytest.mark.parametrize("path", TWILIO_SMS, ids=lambda p: p.stem)
def test_phone_numbers_from_twilio_are_e164(path):
    sms = json.loads(path.read_text())
    number = normalize_address(Channel.PHONE, sms["From"])
    assert re.fullmatch(r"\+[1-9][0-9]{6,14}", number)
    spaced = f"{sms['From'][:3]} {sms['From'][3:6]} {sms['From'][6:]}"
    assert normalize_address(Channel.PHONE, spaced) == number


def test_email_senders_from_real_mail_normalize_to_lower_case():
    addresses = []
    for path in ZAMMAD_EXPECTED:
        match = re.search(r"^from_email: (\S+@\S+)$", path.read_text(errors="replace"), re.MULTILINE)
        if match:
            addresses.append(match.group(1).strip("'\""))
    assert len(addresses) > 50
    for address in addresses:
        assert normalize_address(Channel.EMAIL, address) == address.lower().rstrip(".")


@pytest.mark.parametrize(
    ("channel", "address"),
    [
        (Channel.EMAIL, "not-an-address"),
        (Channel.EMAIL, "a@b@c"),
        (Channel.TELEGRAM, "-100123"),
        (Channel.TELEGRAM, "12abc"),
        (Channel.PHONE, "12"),
        (Channel.PHONE, "call me"),
        (Channel.WIDGET, "short"),
        (Channel.WIDGET, "<script>alert(1)</script>"),
        ("fax", "123"),
        # A line feed inside an address would end up in a mail header (header injection).
        (Channel.EMAIL, "bob\n@example.com"),
        (Channel.EMAIL, "a@exa\n.com"),
        (Channel.EMAIL, "a@example\n.com"),
        (Channel.WIDGET, "visitor-12345\n@x"),
        (Channel.API, "crm-customer-1\nX"),
    ],
)
def test_invalid_addresses_are_refused(channel, address):
    with pytest.raises(InvalidIdentity):
        normalize_address(channel, address)
