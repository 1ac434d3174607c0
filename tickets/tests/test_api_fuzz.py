"""A bounded property-based fuzz of every API operation, generated from the API's own OpenAPI schema.

schemathesis draws requests from /api/schema/ (valid and invalid ones), sends them through the WSGI app in
this process, and fails on any 5xx or any answer the schema does not document (status, media type, body).
A fixed seed and example budget keep it repeatable and well under a minute.
"""

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from conftest import inbound_message
from helpdesk.wsgi import application
from tickets import inbound, replies
from tickets.channels import InboundAttachment
from tickets.models import Attachment, User
from tickets.tests.conftest import CONFORMANCE, token_header

pytestmark = pytest.mark.django_db

# Drawn examples per operation. The coverage phase adds its own boundary and invalid cases and is most of the
# time: about 25 s for the whole fuzz in one process on a loaded 2-core machine.
EXAMPLES = 15


@pytest.fixture
def callers(dave, ivan) -> list[User | None]:
    """An agent who may do everything (dave, the admin: inbound messages too), a customer (the portal, where
    agents are refused) and anonymous. Each caller more adds a third to the fuzz's time."""
    return [dave, ivan.user, None]


@pytest.fixture
def known_ids(alice, ivan) -> dict[str, int]:
    """Rows the fuzz also aims at, so detail answers are checked too, not only 404s."""
    ticket = inbound.receive(
        inbound_message(attachments=(InboundAttachment("invoice.pdf", "application/pdf", b"%PDF-1.7"),))
    ).ticket
    replies.add_note(ticket, actor=alice, text="Checked the invoice")
    return {
        "ticket_id": ticket.pk,
        "customer_id": ivan.pk,
        "attachment_id": Attachment.objects.get(message__ticket=ticket).pk,
    }


# Loaded once, at collection, from the app in this process: one test per operation.
api = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


@api.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_5xx_or_off_schema(case, in_process_wsgi, callers, known_ids):
    # Each drawn request goes out as every caller, and once more at known rows when it names ids.
    targets: list[dict[str, Any]] = [dict(case.path_parameters or {})]
    if case.path_parameters:
        targets.append({name: known_ids.get(name, value) for name, value in case.path_parameters.items()})
    for path_parameters in targets:
        case.path_parameters = path_parameters
        for caller in callers:
            response = case.call(headers=token_header(caller))
            case.validate_response(response, checks=[not_a_server_error, *CONFORMANCE])
