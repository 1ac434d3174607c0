"""Normalizing the addresses customers write from, so one person has one identity per channel."""

import re

import phonenumbers

from tickets.exceptions import InvalidIdentity
from tickets.models import Channel

# Used with fullmatch: `$` would also match before a final line feed ("bob\n@example.com").
_TELEGRAM_USER_ID = re.compile(r"[1-9][0-9]{0,19}")
# Widget visitors and API-channel customers; public because the API schema documents it as a pattern.
VISITOR_ID = re.compile(r"[A-Za-z0-9_.:-]{8,128}")
_EMAIL_LOCAL_PART = re.compile(r"[^\s@<>()\[\],;:\"\\]{1,64}")
_DOMAIN_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def normalize_address(channel: str, address: str, *, default_region: str | None = None) -> str:
    """The canonical form of `address` on `channel`, or InvalidIdentity.

    Email: lower-cased. Telegram: the numeric user id. Phone: E.164. Widget: the visitor id.
    """
    address = (address or "").strip()
    if channel == Channel.EMAIL:
        return _normalize_email(address)
    if channel == Channel.TELEGRAM:
        if not _TELEGRAM_USER_ID.fullmatch(address):
            raise InvalidIdentity(f"{address!r} is not a Telegram user id")
        return address
    if channel == Channel.PHONE:
        try:
            number = phonenumbers.parse(address, default_region)
        except phonenumbers.NumberParseException:
            raise InvalidIdentity(f"{address!r} is not a phone number") from None
        if not phonenumbers.is_possible_number(number):
            raise InvalidIdentity(f"{address!r} is not a possible phone number")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if channel in (Channel.WIDGET, Channel.API):
        if not VISITOR_ID.fullmatch(address):
            raise InvalidIdentity(f"{address!r} is not a valid visitor id")
        return address
    raise InvalidIdentity(f"unknown channel {channel!r}")


def _normalize_email(address: str) -> str:
    """Lower-cased. Lenient where real mail is (single-label intranet domains, a trailing root dot),
    strict where it matters (one @, no spaces or brackets, valid host labels)."""
    local, at, domain = address.lower().rpartition("@")
    domain = domain.rstrip(".")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_domain = ""
    labels = ascii_domain.split(".") if ascii_domain else []
    if (
        not at
        or not _EMAIL_LOCAL_PART.fullmatch(local)
        or not labels
        or not all(map(_DOMAIN_LABEL.fullmatch, labels))
    ):
        raise InvalidIdentity(f"{address!r} is not an email address")
    return f"{local}@{domain}"
