"""tickets.inbound.receive(): idempotency, threading, reopening, follow-ups, envelopes and replay."""

import contextlib
import dataclasses
import hashlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from conftest import inbound_message
from helpdesk import events
from tickets import inbound, lifecycle
from tickets.channels import InboundAttachment
from tickets.exceptions import InvalidIdentity
from tickets.models import (
    Channel,
    Customer,
    EnvelopeStatus,
    Identity,
    InboundEnvelope,
    Message,
    MessageKind,
    Status,
    Ticket,
    TicketEvent,
)

pytestmark = pytest.mark.django_db


def test_first_message_creates_customer_identity_and_ticket(captured_events):
    received = inbound.receive(inbound_message(sender_address="Maria@Example.COM", sender_name="Maria"))

    assert received.ticket_created and not received.duplicate
    ticket = received.ticket
    assert ticket.status == Status.NEW
    assert ticket.channel == Channel.EMAIL
    assert ticket.subject == "Не приходит счёт"
    assert ticket.number >= 1000
    identity = Identity.objects.get(channel=Channel.EMAIL, address="maria@example.com")
    assert ticket.customer == identity.customer
    assert identity.customer.name == "Maria"
    assert received.message.direction == "in"
    assert received.message.customer == identity.customer
    assert captured_events.names == [events.TICKET_CREATED, events.MESSAGE_RECEIVED]


def test_same_external_id_twice_gives_one_message_and_no_error(captured_events):
    message = inbound_message(external_id="<once@customer.test>")

    first = inbound.receive(message)
    second = inbound.receive(message)

    assert second.duplicate
    assert second.message.pk == first.message.pk
    assert Message.objects.filter(external_id="<once@customer.test>").count() == 1
    assert Ticket.objects.count() == 1
    assert captured_events.names == [events.TICKET_CREATED, events.MESSAGE_RECEIVED]


def test_external_ids_are_unique_per_channel_not_globally():
    inbound.receive(inbound_message(external_id="42"))
    other = inbound.receive(
        inbound_message(
            channel=Channel.TELEGRAM, external_id="42", sender_address="123456", thread_key="chat-1"
        )
    )

    assert not other.duplicate
    assert Message.objects.filter(external_id="42").count() == 2


def test_reply_referencing_an_earlier_message_threads_into_its_ticket(ivan):
    first = inbound.receive(inbound_message(external_id="<root@customer.test>"))
    inbound.receive(inbound_message(new_conversation=True, subject="Another question"))

    reply = inbound.receive(
        inbound_message(subject="Re: Не приходит счёт", in_reply_to=("<unknown@x>", "<root@customer.test>"))
    )

    assert reply.ticket.pk == first.ticket.pk
    assert not reply.ticket_created


def test_explicit_thread_key_beats_the_customers_latest_ticket(ivan):
    first = inbound.receive(
        inbound_message(channel=Channel.WIDGET, sender_address="visitor-0001", thread_key="conv-a")
    )
    second = inbound.receive(
        inbound_message(channel=Channel.WIDGET, sender_address="visitor-0001", thread_key="conv-b")
    )

    again = inbound.receive(
        inbound_message(channel=Channel.WIDGET, sender_address="visitor-0001", thread_key="conv-a")
    )

    assert second.ticket.pk != first.ticket.pk
    assert again.ticket.pk == first.ticket.pk


def test_without_a_key_the_message_joins_the_customers_open_ticket_on_that_channel(ivan):
    first = inbound.receive(inbound_message(channel=Channel.TELEGRAM, sender_address="777", text="hi"))
    follow = inbound.receive(inbound_message(channel=Channel.TELEGRAM, sender_address="777", text="anyone?"))
    email = inbound.receive(inbound_message(channel=Channel.EMAIL, sender_address="tg-user@example.com"))

    assert follow.ticket.pk == first.ticket.pk
    assert email.ticket.pk != first.ticket.pk
    assert list(first.ticket.messages.values_list("body_text", flat=True)) == ["hi", "anyone?"]


def test_a_new_conversation_flag_starts_a_new_ticket(ivan):
    first = inbound.receive(inbound_message())
    second = inbound.receive(inbound_message(new_conversation=True, subject="Другой вопрос"))

    assert second.ticket_created
    assert second.ticket.pk != first.ticket.pk
    assert second.ticket.customer == first.ticket.customer == ivan


def test_reply_to_solved_ticket_reopens_it(ivan, alice, captured_events):
    first = inbound.receive(inbound_message(external_id="<s1@customer.test>"))
    lifecycle.change_status(first.ticket, status=Status.SOLVED, actor=alice)
    first.ticket.refresh_from_db()
    assert first.ticket.solved_at is not None

    reply = inbound.receive(inbound_message(in_reply_to=("<s1@customer.test>",)))

    ticket = Ticket.objects.get(pk=first.ticket.pk)
    assert reply.ticket.pk == ticket.pk
    assert ticket.status == Status.OPEN
    assert ticket.solved_at is None
    reopened = TicketEvent.objects.filter(ticket=ticket, name=events.TICKET_UPDATED).last()
    assert reopened.changes["status"] == [Status.SOLVED, Status.OPEN]
    assert events.TICKET_UPDATED in captured_events.names


@pytest.mark.parametrize("waiting", [Status.PENDING, Status.ON_HOLD])
def test_customer_reply_moves_a_waiting_ticket_back_to_open(ivan, alice, waiting):
    first = inbound.receive(inbound_message(channel=Channel.TELEGRAM, sender_address="555"))
    lifecycle.change_status(first.ticket, status=waiting, actor=alice)

    inbound.receive(inbound_message(channel=Channel.TELEGRAM, sender_address="555"))

    assert Ticket.objects.get(pk=first.ticket.pk).status == Status.OPEN


def test_reply_to_closed_ticket_starts_a_new_ticket_linked_to_it(ivan, alice, captured_events):
    first = inbound.receive(inbound_message(external_id="<c1@customer.test>"))
    lifecycle.change_status(first.ticket, status=Status.CLOSED, actor=alice)

    reply = inbound.receive(inbound_message(in_reply_to=("<c1@customer.test>",), text="Опять не работает"))

    assert reply.ticket_created
    assert reply.ticket.pk != first.ticket.pk
    assert reply.ticket.follow_up_of_id == first.ticket.pk
    assert Ticket.objects.get(pk=first.ticket.pk).status == Status.CLOSED
    created = TicketEvent.objects.get(ticket=reply.ticket, name=events.TICKET_CREATED)
    assert created.changes["follow_up_of"] == [None, first.ticket.pk]


def test_phone_numbers_are_one_identity_in_e164():
    one = inbound.receive(
        inbound_message(
            channel=Channel.PHONE,
            sender_address="+7 (912) 345-67-89",
            kind=MessageKind.CALL,
            text="",
            subject="",
        )
    )
    two = inbound.receive(
        inbound_message(channel=Channel.PHONE, sender_address="+79123456789", kind=MessageKind.CALL, text="")
    )

    assert one.ticket.customer_id == two.ticket.customer_id
    assert Identity.objects.get(channel=Channel.PHONE).address == "+79123456789"
    assert one.ticket.subject == "Call from +7 (912) 345-67-89"


def test_invalid_sender_address_is_refused_and_nothing_is_stored():
    with pytest.raises(InvalidIdentity):
        inbound.receive(inbound_message(sender_address="not an email"))

    assert Customer.objects.count() == 0
    assert Ticket.objects.count() == 0


def test_html_is_sanitized_and_text_derived_from_it():
    received = inbound.receive(
        inbound_message(text="", html='<p onclick="steal()">Hi <b>there</b><script>alert(1)</script></p>')
    )

    assert "script" not in received.message.body_html
    assert "onclick" not in received.message.body_html
    assert "<b>there</b>" in received.message.body_html
    assert received.message.body_text == "Hi there"


def test_attachments_are_stored_with_checksum_and_oversized_ones_recorded(settings):
    settings.MAX_ATTACHMENT_BYTES = 10
    received = inbound.receive(
        inbound_message(
            attachments=(
                InboundAttachment("../../etc/passwd.txt", "text/plain", b"small"),
                InboundAttachment("huge.bin", "application/octet-stream", b"x" * 11),
            )
        )
    )

    stored = received.message.attachments.get()
    assert stored.filename == "../../etc/passwd.txt"
    assert ".." not in stored.file.name and stored.file.name.startswith("attachments/")
    assert stored.size == 5
    assert stored.sha256 == hashlib.sha256(b"small").hexdigest()
    assert stored.file.read() == b"small"
    assert received.message.channel_data["rejected_attachments"] == [
        {"filename": "huge.bin", "size": 11, "reason": "too large"}
    ]


def test_envelope_is_processed_once_even_when_stored_twice(captured_events):
    payload = b'{"id": "crm-1", "customer": {"id": "crm-customer-1", "name": "Olga"}, "text": "Hello"}'

    envelope, created = inbound.store_envelope(Channel.API, "crm-1", payload)
    again, created_again = inbound.store_envelope(Channel.API, "crm-1", payload)
    inbound.process_envelope(envelope)

    assert created and not created_again and again.pk == envelope.pk
    envelope.refresh_from_db()
    assert envelope.status == EnvelopeStatus.PROCESSED
    assert envelope.message.body_text == "Hello"
    assert envelope.attempts == 1


def test_processing_that_dies_halfway_keeps_the_envelope_for_replay(monkeypatch, captured_events):
    payload = (
        b'{"id": "crm-2", "customer": {"id": "crm-customer-2"}, "subject": "Refund", "text": "Money back"}'
    )
    envelope, _ = inbound.store_envelope(Channel.API, "crm-2", payload)

    def crash(*args, **kwargs):
        raise RuntimeError("worker died while storing the message")

    # The crash comes after the customer and the ticket rows are written: all of it must roll back.
    with monkeypatch.context() as patch:
        patch.setattr(inbound, "message_body", crash)
        inbound.process_envelope(envelope)

    envelope.refresh_from_db()
    assert envelope.status == EnvelopeStatus.FAILED
    assert "worker died" in envelope.error
    assert bytes(envelope.payload) == payload
    assert Ticket.objects.count() == 0
    assert Customer.objects.count() == 0
    assert captured_events.names == []

    call_command("replay_envelopes")

    envelope.refresh_from_db()
    assert envelope.status == EnvelopeStatus.PROCESSED
    assert envelope.attempts == 2
    assert envelope.message.ticket.subject == "Refund"
    assert captured_events.names == [events.TICKET_CREATED, events.MESSAGE_RECEIVED]


def test_malformed_payload_fails_the_envelope_with_its_error():
    envelope, _ = inbound.store_envelope(Channel.API, "bad-1", b"{not json")

    inbound.process_envelope(envelope)

    envelope.refresh_from_db()
    assert envelope.status == EnvelopeStatus.FAILED
    assert "not JSON" in envelope.error
    assert InboundEnvelope.objects.count() == 1


def test_replay_command_exits_nonzero_when_envelopes_still_fail():
    inbound.store_envelope(Channel.API, "bad-2", b"[]")

    with pytest.raises(SystemExit) as exit_info:
        call_command("replay_envelopes")

    assert exit_info.value.code == 1


def test_first_contact_racing_another_process_joins_the_customer_it_created(monkeypatch, ivan):
    # Our first lookup ran just before an agent committed ivan's identity: our insert conflicts, the
    # transaction rolls back, and the second lookup finds ivan.
    real_look_up = inbound._look_up
    lookups = []

    def first_look_up_before_the_other_commit(*args):
        found = real_look_up(*args)
        lookups.append(found)
        return dataclasses.replace(found, customer_id=None) if len(lookups) == 1 else found

    monkeypatch.setattr(inbound, "_look_up", first_look_up_before_the_other_commit)
    customers_before = Customer.objects.count()

    received = inbound.receive(inbound_message(sender_address="ivan@customer.test"))

    assert len(lookups) == 2
    assert received.ticket.customer_id == ivan.pk
    assert received.message.customer_id == ivan.pk
    assert Customer.objects.count() == customers_before
    assert Message.objects.filter(customer=ivan).count() == 1


@pytest.mark.django_db(transaction=True)
def test_simultaneous_first_messages_from_one_sender_open_one_ticket():
    barrier = threading.Barrier(4)
    results, errors = [], []

    def deliver(number: int) -> None:
        try:
            barrier.wait(timeout=10)
            message = inbound_message(channel=Channel.TELEGRAM, sender_address="4242", text=f"part {number}")
            results.append(inbound.receive(message))
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert Ticket.objects.count() == 1
    assert Customer.objects.count() == 1
    assert Message.objects.count() == 4
    assert sum(result.ticket_created for result in results) == 1


def test_an_inbound_message_needs_its_channel_id():
    with pytest.raises(ValueError, match="external_id"):
        inbound_message(external_id="")


def test_overlong_channel_ids_are_stored_hashed_and_stay_idempotent():
    long_id = "<" + "x" * 400 + "@customer.test>"

    first = inbound.receive(inbound_message(external_id=long_id))
    again = inbound.receive(inbound_message(external_id=long_id))
    reply = inbound.receive(inbound_message(in_reply_to=(long_id,), text="still waiting"))

    assert again.duplicate and again.message.pk == first.message.pk
    assert first.message.external_id.startswith("sha256:") and len(first.message.external_id) < 255
    assert reply.ticket.pk == first.ticket.pk


def test_an_inbound_id_equal_to_one_of_our_outbound_ids_is_a_new_message(alice):
    received = inbound.receive(
        inbound_message(channel=Channel.API, sender_address="crm-contact-77", text="hi")
    )
    Message.objects.create(
        ticket=received.ticket, direction="out", channel=Channel.API, author=alice, external_id="api-500"
    )

    customer_message = inbound.receive(
        inbound_message(channel=Channel.API, sender_address="crm-contact-77", external_id="api-500")
    )

    assert not customer_message.duplicate
    assert customer_message.message.direction == "in"


def test_a_reference_to_another_customers_message_does_not_thread_into_their_ticket(ivan):
    victim = inbound.receive(inbound_message(external_id="<private@customer.test>"))

    stranger = inbound.receive(
        inbound_message(sender_address="stranger@elsewhere.test", in_reply_to=("<private@customer.test>",))
    )

    assert stranger.ticket_created
    assert stranger.ticket.pk != victim.ticket.pk
    assert victim.ticket.messages.count() == 1


def test_without_a_key_an_open_ticket_wins_over_a_more_recently_closed_one(ivan, alice):
    still_open = inbound.receive(inbound_message(channel=Channel.TELEGRAM, sender_address="9001", text="a"))
    other = inbound.receive(
        inbound_message(channel=Channel.TELEGRAM, sender_address="9001", text="b", new_conversation=True)
    )
    lifecycle.change_status(other.ticket, status=Status.CLOSED, actor=alice)

    follow = inbound.receive(inbound_message(channel=Channel.TELEGRAM, sender_address="9001", text="c"))

    assert follow.ticket.pk == still_open.ticket.pk


def test_every_reply_to_a_closed_ticket_goes_to_its_one_open_follow_up(ivan, alice):
    first = inbound.receive(inbound_message(external_id="<closed-root@customer.test>"))
    lifecycle.change_status(first.ticket, status=Status.CLOSED, actor=alice)

    one = inbound.receive(inbound_message(in_reply_to=("<closed-root@customer.test>",)))
    two = inbound.receive(inbound_message(in_reply_to=("<closed-root@customer.test>",)))

    assert one.ticket_created and not two.ticket_created
    assert two.ticket.pk == one.ticket.pk
    assert Ticket.objects.filter(follow_up_of=first.ticket).count() == 1


def test_a_message_costs_one_lookup_and_one_write_on_a_warm_connection(ivan):
    first = inbound.receive(inbound_message())
    inbound.receive(inbound_message(in_reply_to=(first.message.external_id,)))  # prepares both shapes

    with CaptureQueriesContext(connection) as queries:
        inbound.receive(inbound_message(in_reply_to=(first.message.external_id,)))

    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) == 2
    assert "pg_advisory_xact_lock" in statements[0] and "EXECUTE" in statements[0]
    assert statements[1].startswith("EXECUTE")


def _in_thread(work, results: dict, key: str) -> threading.Thread:
    """Start `work` on its own connection; what it returns (or raises) goes to results[key]."""

    def target() -> None:
        try:
            results[key] = work()
        except Exception as error:
            results[key] = error
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    return thread


@contextlib.contextmanager
def _held_open(holder) -> Iterator[dict]:
    """Run `holder` in another thread's transaction, kept open (its locks held) until the block ends.

    After the block, the yielded dict holds what `holder` returned (or raised) under "holder".
    """
    holding, release, results = threading.Event(), threading.Event(), {}

    def hold() -> Any:
        with transaction.atomic():
            result = holder()
            holding.set()
            release.wait(timeout=10)
        return result

    thread = _in_thread(hold, results, "holder")
    try:
        assert holding.wait(timeout=10)
        yield results
    finally:
        release.set()
        thread.join(timeout=10)


def _while_held_open(holder, waiter) -> tuple[Any, Any]:
    """Run `holder` in a transaction that stays open until `waiter`, in another thread, waits for a lock.

    Returns what each returned (or raised).
    """
    waited: dict = {}

    def wait() -> Any:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            waited["waiter pid"] = cursor.fetchone()[0]
        return waiter()

    threads = []
    try:
        with _held_open(holder) as held:
            threads.append(_in_thread(wait, waited, "waiter"))
            _wait_until_waiting_for_a_lock(waited, "waiter pid")
    finally:
        for thread in threads:  # only once the holder has let go
            thread.join(timeout=10)
    return held["holder"], waited["waiter"]


def _wait_until_waiting_for_a_lock(results: dict, pid_key: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if pid_key in results:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [results[pid_key]]
                )
                row = cursor.fetchone()
            if row and row[0] == "Lock":
                return
        time.sleep(0.02)
    raise AssertionError("the second transaction never waited for a lock")


@pytest.mark.django_db(transaction=True)
def test_a_follow_up_opened_while_we_waited_for_the_closed_ticket_takes_the_message(alice):
    # One customer writing from two addresses: their messages take different sender locks and meet
    # only at the closed ticket's row lock.
    customer = Customer.objects.create(name="Two Addresses")
    Identity.objects.create(customer=customer, channel=Channel.EMAIL, address="work@customer.test")
    Identity.objects.create(customer=customer, channel=Channel.EMAIL, address="home@customer.test")
    root = inbound.receive(inbound_message(sender_address="work@customer.test", external_id="<root@c.test>"))
    lifecycle.change_status(root.ticket, status=Status.CLOSED, actor=alice)

    def reply_from(address: str):
        return lambda: inbound.receive(
            inbound_message(sender_address=address, in_reply_to=("<root@c.test>",))
        )

    from_work, from_home = _while_held_open(
        reply_from("work@customer.test"), reply_from("home@customer.test")
    )

    assert from_work.ticket_created
    assert not from_home.ticket_created
    assert from_home.ticket.pk == from_work.ticket.pk
    assert Ticket.objects.filter(follow_up_of=root.ticket).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_status_an_agent_commits_while_the_message_waits_is_the_one_it_changes(alice):
    def customer_writes():
        return inbound.receive(
            inbound_message(channel=Channel.TELEGRAM, sender_address="3131", thread_key="3131")
        )

    opened = customer_writes()
    lifecycle.change_status(opened.ticket, status=Status.OPEN, actor=alice)

    _, received = _while_held_open(
        lambda: lifecycle.change_status(opened.ticket, status=Status.PENDING, actor=alice), customer_writes
    )

    assert received.ticket.pk == opened.ticket.pk
    assert Ticket.objects.get(pk=opened.ticket.pk).status == Status.OPEN
    reopened = TicketEvent.objects.filter(ticket=opened.ticket, name=events.TICKET_UPDATED).last()
    assert reopened.changes == {"status": [Status.PENDING, Status.OPEN]}


@pytest.mark.django_db(transaction=True)
def test_a_resend_does_not_wait_for_the_ticket_an_agent_is_editing(alice):
    first = inbound.receive(
        inbound_message(channel=Channel.TELEGRAM, sender_address="4141", thread_key="4141")
    )

    def agent_edits():
        return lifecycle.update(first.ticket, actor=alice, priority="high")

    with _held_open(agent_edits):
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")  # waiting for the agent's lock would fail the resend
        try:
            resent = inbound.receive(
                inbound_message(
                    channel=Channel.TELEGRAM,
                    sender_address="4141",
                    thread_key="4141",
                    external_id=first.message.external_id,
                )
            )
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = 0")

    assert resent.duplicate and resent.message.pk == first.message.pk
