"""Normalizing the addresses customers write from, so one person has one identity per channel."""

import re

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from tickets.exceptions import InvalidIdentity
from tickets.models import Channel

_TELEGRAM_USER_ID = re.compile(r"^[1-9][0-9]{0,19}$")
_VISITOR_ID = re.compile(r"^[A-Za-z0-9_.:-]{8,128}$")


def normalize_address(channel: str, address: str, *, default_region: str | None = None) -> str:
    """The canonical form of `address` on `channel`, or InvalidIdentity.

    Email: lower-cased. Telegram: the numeric user id. Phone: E.164. Widget: the visitor id.
    """
    address = (address or "").strip()
    if channel == Channel.EMAIL:
        address = address.lower()
        try:
            validate_email(address)
        except ValidationError:
            raise InvalidIdentity(f"{address!r} is not an email address") from None
        return address
    if channel == Channel.TELEGRAM:
        if not _TELEGRAM_USER_ID.match(address):
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
        if not _VISITOR_ID.match(address):
            raise InvalidIdentity(f"{address!r} is not a valid visitor id")
        return address
    raise InvalidIdentity(f"unknown channel {channel!r}")
