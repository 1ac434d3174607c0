import zoneinfo
from functools import cache

from django.contrib.auth.models import AbstractUser
from django.contrib.postgres.indexes import GinIndex
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from tickets.models.choices import Channel, Role
from tickets.models.search import SearchDocument

# The workspace's languages, as settings.LANGUAGES; a user without one gets the browser's language
# (Accept-Language), then LANGUAGE_CODE.
WORKSPACE_LANGUAGES = [("en", "English"), ("ru", "Русский")]


@cache
def time_zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(name: str) -> None:
    """An IANA time zone name (Europe/Moscow); the empty string means the deployment's TIME_ZONE."""
    if name and name not in time_zone_names():
        raise ValidationError(_("Unknown time zone: %(name)s"), params={"name": name}, code="invalid")


class User(AbstractUser):
    """Anyone who signs in: agents, supervisors and admins work tickets; customers use the portal."""

    # Least privilege unless said otherwise: a user created anywhere without a role sees no tickets.
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.CUSTOMER)
    # The workspace's language and time zone for this user; empty: the browser's language, TIME_ZONE.
    locale = models.CharField(_("language"), max_length=8, blank=True, choices=WORKSPACE_LANGUAGES)
    timezone = models.CharField(_("time zone"), max_length=64, blank=True, validators=[validate_time_zone])

    def save(self, *args, **kwargs) -> None:
        # set_password() leaves the new password in _password until saved; signed-in sessions end through
        # the session hash, but an API token would outlive the password it was issued under.
        password_changed = self._password is not None and not self._state.adding
        super().save(*args, **kwargs)
        if password_changed:
            from rest_framework.authtoken.models import Token

            Token.objects.filter(user=self).delete()

    @property
    def is_agent(self) -> bool:
        """True for everyone who works tickets (agents, supervisors, admins)."""
        return self.is_active and (
            self.role in (Role.AGENT, Role.SUPERVISOR, Role.ADMIN) or self.is_superuser
        )

    @property
    def sees_all_tickets(self) -> bool:
        return self.role in (Role.SUPERVISOR, Role.ADMIN) or self.is_superuser


class Team(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    members = models.ManyToManyField(User, related_name="teams", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Organization(models.Model):
    name = models.CharField(_("name"), max_length=200, unique=True)
    notes = models.TextField(_("notes"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Customer(models.Model):
    name = models.CharField(_("name"), max_length=200, blank=True)
    locale = models.CharField(_("language"), max_length=8, blank=True)
    timezone = models.CharField(_("time zone"), max_length=64, blank=True)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.SET_NULL, related_name="customers"
    )
    notes = models.TextField(_("notes"), blank=True)
    # Set when the customer has a portal login; customers without one still have tickets.
    user = models.OneToOneField(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="customer_profile"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_contact_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["-last_contact_at"], name="customer_last_contact"),
            GinIndex(SearchDocument("name"), name="customer_name_search"),
        ]

    def __str__(self) -> str:
        return self.name or f"Customer #{self.pk}"


class Identity(models.Model):
    """One address a customer writes from. The address is stored normalized (see tickets.identities)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="identities")
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    address = models.CharField(_("address"), max_length=320)
    display_name = models.CharField(_("display name"), max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "identities"
        constraints = [
            models.UniqueConstraint(fields=["channel", "address"], name="identity_unique_address"),
        ]
        indexes = [
            # A Telegram identity's address is the numeric user id; people search by the @handle.
            models.Index(
                Lower("display_name"), name="identity_telegram_handle", condition=Q(channel=Channel.TELEGRAM)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.address}"
