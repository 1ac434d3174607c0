"""The API channel plugs into the core the way every channel does: through the registry's dotted paths."""

import ast
from pathlib import Path

from django.conf import settings
from django.test import override_settings

from channels_in.api.inbound import parse_api_payload
from channels_in.api.outbound import ApiAdapter
from tickets.channels import OutboundMessage, adapter_class_for, parser_for

TICKETS = Path(settings.BASE_DIR) / "tickets"


@override_settings(DELIVER_TO_LOG=False, CHANNEL_ADAPTERS={})
def test_the_registry_finds_the_api_channels_parser_and_adapter():
    assert parser_for("api") is parse_api_payload
    assert adapter_class_for("api") is ApiAdapter


def test_a_reply_on_an_api_ticket_is_delivered_by_naming_it():
    reply = OutboundMessage(
        message_id=7,
        ticket_id=3,
        ticket_number=1003,
        channel="api",
        recipient_address="crm-customer-42",
        recipient_name="Ivan Petrov",
        subject="Re: Order not delivered",
        text="It left the warehouse today.",
    )

    assert ApiAdapter.for_message(reply).deliver(reply) == "api-7"


def imported_modules(source: Path) -> set[str]:
    tree = ast.parse(source.read_text(), filename=str(source))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_core_never_imports_a_channel_app():
    offenders = {
        str(source.relative_to(TICKETS.parent)): module
        for source in TICKETS.rglob("*.py")
        for module in imported_modules(source)
        if module == "channels_in" or module.startswith("channels_in.")
    }

    assert offenders == {}
