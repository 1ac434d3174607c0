"""The Django admin covers every model and its pages work for setting up a workspace."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from conftest import inbound_message
from tickets import inbound
from tickets.models import Channel, EnvelopeStatus

pytestmark = pytest.mark.django_db


def test_every_tickets_model_is_registered():
    missing = [
        model.__name__
        for model in apps.get_app_config("tickets").get_models()
        if model not in admin.site._registry
    ]
    assert missing == []


def test_every_changelist_and_change_page_renders(client, dave, alice):
    dave.is_superuser = True
    dave.save()
    client.force_login(dave)
    received = inbound.receive(inbound_message(attachments=()))
    inbound.store_envelope(Channel.API, "admin-1", b"{}")
    objects = {
        "ticket": received.ticket,
        "message": received.message,
        "customer": received.ticket.customer,
        "user": alice,
    }

    for model in apps.get_app_config("tickets").get_models():
        name = model._meta.model_name
        changelist = client.get(reverse(f"admin:tickets_{name}_changelist"))
        assert changelist.status_code == 200, name
        if name in objects:
            change = client.get(reverse(f"admin:tickets_{name}_change", args=[objects[name].pk]))
            assert change.status_code == 200, name


def test_admin_action_replays_failed_envelopes(client, dave):
    dave.is_superuser = True
    dave.save()
    client.force_login(dave)
    envelope, _ = inbound.store_envelope(
        Channel.API, "replay-1", b'{"id": "replay-1", "customer": {"id": "admin-customer-1"}, "text": "hi"}'
    )
    envelope.status = EnvelopeStatus.FAILED
    envelope.save()

    response = client.post(
        reverse("admin:tickets_inboundenvelope_changelist"),
        {"action": "replay", "_selected_action": [envelope.pk]},
        follow=True,
    )

    assert response.status_code == 200
    envelope.refresh_from_db()
    assert envelope.status == EnvelopeStatus.PROCESSED


def test_agents_without_staff_flag_cannot_enter_the_admin(client, alice):
    client.force_login(alice)

    response = client.get(reverse("admin:tickets_ticket_changelist"))

    assert response.status_code == 302


def test_identities_entered_in_the_admin_are_stored_normalized(client, dave, ivan):
    dave.is_superuser = True
    dave.save()
    client.force_login(dave)

    saved = client.post(
        reverse("admin:tickets_identity_add"),
        {"customer": ivan.pk, "channel": "phone", "address": "+7 (912) 000-11-22", "display_name": ""},
    )
    refused = client.post(
        reverse("admin:tickets_identity_add"),
        {"customer": ivan.pk, "channel": "email", "address": "no at sign", "display_name": ""},
    )

    assert saved.status_code == 302
    assert ivan.identities.filter(channel="phone", address="+79120001122").exists()
    assert refused.status_code == 200 and "not an email address" in refused.content.decode()
