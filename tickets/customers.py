"""Services for customers and their identities."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from tickets.exceptions import IdentityTaken
from tickets.identities import normalize_address
from tickets.models import Customer, Identity, User


def create_customer(
    *,
    actor: User,
    name: str,
    identities: list[dict[str, str]],
    locale: str = "",
    timezone: str = "",
    notes: str = "",
) -> Customer:
    """A customer with their addresses (each normalized, each unique across customers)."""
    normalized = [
        (item["channel"], normalize_address(item["channel"], item["address"]), item.get("display_name", ""))
        for item in identities
    ]
    try:
        with transaction.atomic():
            customer = Customer.objects.create(name=name, locale=locale, timezone=timezone, notes=notes)
            Identity.objects.bulk_create(
                Identity(customer=customer, channel=channel, address=address, display_name=display_name)
                for channel, address, display_name in normalized
            )
    except IntegrityError:
        raise IdentityTaken("One of these addresses already belongs to another customer") from None
    return customer
