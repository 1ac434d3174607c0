"""tickets.replies: send_reply and notes, open_ticket, deliver() with retries and failures, due_retries()."""

from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import inbound_message
from helpdesk import events
from tickets import inbound, lifecycle, replies
from tickets.channels import DeliveryError, OutboundMessage
from tickets.exceptions import NotAnAgent, StaleReply, TicketClosed
from tickets.models import (
    Channel,
    DeliveryAttempt,
    DeliveryStatus,
    Direction,
    Message,
    MessageKind,
    Status,
    Ticket,
    TicketEvent,
)
from tickets.replies import Outcome

pytestmark = pytest.mark.django_db


# --- adapters the tests point CHANNEL_ADAPTERS at ---


class RecordingAdapter:
    """Takes every message and remembers what it was given."""

    channel = Channel.EMAIL
    delivered: list[OutboundMessage] = []

    @classmethod
    def for_message(cls, message: OutboundMessage) -> "RecordingAdapter":
        return cls()

    def deliver(self, message: OutboundMessage) -> str:
        RecordingAdapter.delivered.append(message)
        return f"<reply-{message.message_id}@support.test>"


class TemporarilyDownAdapter(RecordingAdapter):
    def deliver(self, message: OutboundMessage) -> str:
        raise DeliveryError("451 4.3.0 Mail server temporarily unavailable")


class RateLimitedAdapter(RecordingAdapter):
    def deliver(self, message: OutboundMessage) -> str:
        raise DeliveryError("429 Too Many Requests: retry after 120", retry_after=120)


class BlockedAdapter(RecordingAdapter):
    def deliver(self, message: OutboundMessage) -> str:
        raise DeliveryError("Forbidden: bot was blocked by the user", permanent=True)


class FlakyAdapter(RecordingAdapter):
    """Fails the first try of each message, then delivers it."""

    tried: set[int] = set()

    def deliver(self, message: OutboundMessage) -> str:
        if message.message_id not in FlakyAdapter.tried:
            FlakyAdapter.tried.add(message.message_id)
            raise DeliveryError("connection timed out")
        return super().deliver(message)


class CrashingAdapter(RecordingAdapter):
    def deliver(self, message: OutboundMessage) -> str:
        raise ConnectionResetError("peer reset the connection")


@pytest.fixture(autouse=True)
def fresh_adapters():
    RecordingAdapter.delivered.clear()
    FlakyAdapter.tried.clear()


@pytest.fixture
def email_adapter(settings):
    """Deliver email replies with the named adapter class from this module."""

    def use(name: str) -> None:
        settings.DELIVER_TO_LOG = False
        settings.CHANNEL_ADAPTERS = {Channel.EMAIL: f"tickets.tests.test_replies.{name}"}

    return use


@pytest.fixture
def ticket(ivan) -> Ticket:
    """Ivan's email ticket, opened by his message."""
    return inbound.receive(inbound_message(external_id="<question@customer.test>")).ticket


def queued_reply(ticket: Ticket, actor, text: str = "Счёт отправлен") -> Message:
    return replies.send_reply(ticket, actor=actor, text=text)


# --- send_reply, add_note, open_ticket ---


def test_reply_queues_an_outbound_message_and_opens_a_new_ticket(ticket, alice, captured_events):
    message = replies.send_reply(ticket, actor=alice, text="Счёт отправлен")

    assert (message.direction, message.kind, message.channel) == (
        Direction.OUT,
        MessageKind.MESSAGE,
        Channel.EMAIL,
    )
    assert message.delivery_status == DeliveryStatus.QUEUED
    assert message.author == alice
    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN
    assert ticket.first_response_at == message.created_at
    queued = TicketEvent.objects.get(name=events.MESSAGE_QUEUED)
    updated = TicketEvent.objects.get(ticket=ticket, name=events.TICKET_UPDATED)
    assert queued.message == message and queued.actor == alice
    assert updated.changes == {
        "first_response_at": [None, message.created_at.isoformat()],
        "status": ["new", "open"],
    }
    assert captured_events.names[-2:] == [events.MESSAGE_QUEUED, events.TICKET_UPDATED]
    assert ("tickets.tasks.deliver_queued_messages", [captured_events.published[-2]]) in captured_events.sent


def test_first_response_time_is_kept_from_the_first_reply(ticket, alice, bob):
    first = queued_reply(ticket, alice)
    queued_reply(ticket, bob, "And another thing")

    ticket.refresh_from_db()
    assert ticket.first_response_at == first.created_at


def test_reply_can_solve_the_ticket(ticket, alice):
    replies.send_reply(ticket, actor=alice, text="Done", status=Status.SOLVED)

    ticket.refresh_from_db()
    assert ticket.status == Status.SOLVED and ticket.solved_at is not None


def test_reply_that_reopens_a_solved_ticket_clears_solved_at(ticket, alice):
    lifecycle.change_status(ticket, status=Status.SOLVED, actor=alice)

    replies.send_reply(ticket, actor=alice, text="One more thing", status=Status.OPEN)

    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN
    assert ticket.solved_at is None
    reopened = TicketEvent.objects.filter(ticket=ticket, name=events.TICKET_UPDATED).last()
    assert reopened.changes["status"] == ["solved", "open"]
    assert reopened.changes["solved_at"][1] is None


def newest_message_id(ticket: Ticket) -> int:
    return Message.objects.filter(ticket=ticket).latest("pk").pk


def test_reply_is_refused_when_the_customer_wrote_since_the_page_loaded(ticket, alice):
    seen = newest_message_id(ticket)
    arrived = inbound.receive(inbound_message(text="Нашёл счёт в спаме")).message

    with pytest.raises(StaleReply) as refusal:
        replies.send_reply(ticket, actor=alice, text="Отправили повторно", seen_message_id=seen)

    assert refusal.value.code == "stale_reply"
    assert refusal.value.details == {"arrived": [arrived.pk]}
    assert not Message.objects.filter(ticket=ticket, direction=Direction.OUT).exists()


def test_reply_is_refused_when_another_agent_answered_since_the_page_loaded(ticket, alice, bob):
    seen = newest_message_id(ticket)
    bobs_reply = queued_reply(ticket, bob, "Уже ответил")

    with pytest.raises(StaleReply) as refusal:
        replies.send_reply(ticket, actor=alice, text="Отправили повторно", seen_message_id=seen)

    assert refusal.value.details == {"arrived": [bobs_reply.pk]}


def test_own_earlier_reply_and_notes_do_not_make_a_reply_stale(ticket, alice, bob):
    seen = newest_message_id(ticket)
    queued_reply(ticket, alice, "Первая часть ответа")
    replies.add_note(ticket, actor=bob, text="Клиент на старом тарифе")

    message = replies.send_reply(ticket, actor=alice, text="Вторая часть", seen_message_id=seen)

    assert message.body_text == "Вторая часть"


def test_confirmed_reply_is_sent_although_the_customer_wrote_since(ticket, alice):
    seen = newest_message_id(ticket)
    inbound.receive(inbound_message(text="Нашёл счёт в спаме"))

    message = replies.send_reply(ticket, actor=alice, text="Хорошо", seen_message_id=seen, confirmed=True)

    assert message.delivery_status == DeliveryStatus.QUEUED


def test_reply_to_a_closed_ticket_is_refused_and_stores_nothing(ticket, alice):
    lifecycle.change_status(ticket, status=Status.CLOSED, actor=alice)
    messages_before = ticket.messages.count()

    with pytest.raises(TicketClosed):
        replies.send_reply(ticket, actor=alice, text="Hello?")

    assert ticket.messages.count() == messages_before
    assert not TicketEvent.objects.filter(name=events.MESSAGE_QUEUED).exists()


def test_reply_html_is_sanitized_and_text_derived_from_it(ticket, alice):
    message = replies.send_reply(
        ticket, actor=alice, html='<p onclick="x()">Ваш <b>счёт</b><script>1</script></p>'
    )

    assert message.body_html == "<p>Ваш <b>счёт</b></p>"
    assert message.body_text == "Ваш счёт"


def test_note_is_internal_and_changes_neither_status_nor_first_response(ticket, alice, captured_events):
    note = replies.add_note(ticket, actor=alice, text="Checking with finance")

    assert note.kind == MessageKind.INTERNAL_NOTE and note.delivery_status == ""
    ticket.refresh_from_db()
    assert ticket.status == Status.NEW and ticket.first_response_at is None
    assert captured_events.names[-1] == events.NOTE_ADDED
    assert replies.deliver(note.pk).outcome is Outcome.SKIPPED


def test_open_ticket_starts_a_conversation_with_a_queued_answer(ivan, alice, billing, captured_events):
    ticket = replies.open_ticket(
        ivan,
        actor=alice,
        channel=Channel.EMAIL,
        subject="Ваш счёт",
        text="Во вложении",
        team=billing,
        tags=["VIP"],
    )

    assert (ticket.status, ticket.team, ticket.tags) == (Status.OPEN, billing, ["vip"])
    [message] = ticket.messages.all()
    assert message.delivery_status == DeliveryStatus.QUEUED and message.body_text == "Во вложении"
    assert captured_events.names == [events.TICKET_CREATED, events.MESSAGE_QUEUED, events.TICKET_UPDATED]


def test_open_ticket_refuses_a_customer_as_assignee(ivan, alice):
    with pytest.raises(NotAnAgent):
        replies.open_ticket(
            ivan, actor=alice, channel=Channel.EMAIL, subject="s", text="t", assignee=ivan.user
        )

    assert not Ticket.objects.exists()


# --- deliver ---


@pytest.mark.parametrize("configure", ["DELIVER_TO_LOG", "CHANNEL_ADAPTERS"])
def test_delivery_through_the_log_adapter_marks_the_message_sent(
    settings, ticket, alice, captured_events, configure
):
    if configure == "DELIVER_TO_LOG":
        settings.DELIVER_TO_LOG = True
    else:
        settings.DELIVER_TO_LOG = False
        settings.CHANNEL_ADAPTERS = {Channel.EMAIL: "tickets.channels.LogAdapter"}
    message = queued_reply(ticket, alice)

    result = replies.deliver(message.pk)

    assert result.outcome is Outcome.SENT
    message.refresh_from_db()
    assert message.delivery_status == DeliveryStatus.SENT
    assert message.external_id == f"log-{message.pk}"
    assert message.sent_at is not None and message.next_attempt_at is None
    [attempt] = DeliveryAttempt.objects.filter(message=message)
    assert attempt.succeeded and attempt.external_id == f"log-{message.pk}" and attempt.error == ""
    sent = TicketEvent.objects.get(name=events.MESSAGE_SENT)
    assert sent.message == message and sent.changes == {"delivery_status": ["sending", "sent"]}
    assert events.MESSAGE_SENT in captured_events.names


def test_the_adapter_gets_recipient_subject_and_thread_references(email_adapter, ticket, alice):
    email_adapter("RecordingAdapter")
    message = queued_reply(ticket, alice, "Счёт отправлен")

    replies.deliver(message.pk)

    [outbound] = RecordingAdapter.delivered
    assert outbound.message_id == message.pk and outbound.ticket_number == ticket.number
    assert (outbound.recipient_address, outbound.recipient_name) == ("ivan@customer.test", "Иван Петров")
    assert (outbound.subject, outbound.text) == ("Не приходит счёт", "Счёт отправлен")
    assert outbound.in_reply_to == ("<question@customer.test>",)
    assert Message.objects.get(pk=message.pk).external_id == f"<reply-{message.pk}@support.test>"


def test_a_temporary_error_requeues_the_message_with_a_retry_time(
    email_adapter, ticket, alice, captured_events
):
    email_adapter("TemporarilyDownAdapter")
    message = queued_reply(ticket, alice)
    before = timezone.now()

    result = replies.deliver(message.pk)

    assert result.outcome is Outcome.RETRY and result.retry_in == replies.RETRY_BACKOFF[0]
    message.refresh_from_db()
    assert message.delivery_status == DeliveryStatus.QUEUED
    assert message.delivery_error == "451 4.3.0 Mail server temporarily unavailable"
    delay = timedelta(seconds=replies.RETRY_BACKOFF[0])
    assert before + delay <= message.next_attempt_at <= timezone.now() + delay
    [attempt] = message.delivery_attempts.all()
    assert not attempt.succeeded and not attempt.permanent and "451" in attempt.error
    assert events.MESSAGE_FAILED not in captured_events.names


def deliver_when_due(message_id: int) -> replies.DeliveryResult:
    """Deliver as the retry would, once its backoff has passed."""
    Message.objects.filter(pk=message_id, next_attempt_at__isnull=False).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    return replies.deliver(message_id)


def test_a_temporarily_failed_message_is_delivered_on_the_retry(email_adapter, ticket, alice):
    email_adapter("FlakyAdapter")
    message = queued_reply(ticket, alice)

    first = replies.deliver(message.pk)
    early = replies.deliver(message.pk)
    second = deliver_when_due(message.pk)

    assert (first.outcome, early.outcome, second.outcome) == (Outcome.RETRY, Outcome.SKIPPED, Outcome.SENT)
    message.refresh_from_db()
    assert message.delivery_status == DeliveryStatus.SENT
    assert message.delivery_error == "" and message.next_attempt_at is None
    assert [a.succeeded for a in message.delivery_attempts.all()] == [False, True]


def test_the_channels_retry_after_is_respected(email_adapter, ticket, alice):
    email_adapter("RateLimitedAdapter")
    message = queued_reply(ticket, alice)

    result = replies.deliver(message.pk)

    assert result.outcome is Outcome.RETRY and result.retry_in == 120


def test_an_unexpected_adapter_exception_counts_as_temporary(email_adapter, ticket, alice):
    email_adapter("CrashingAdapter")
    message = queued_reply(ticket, alice)

    result = replies.deliver(message.pk)

    assert result.outcome is Outcome.RETRY
    message.refresh_from_db()
    assert message.delivery_status == DeliveryStatus.QUEUED
    assert "ConnectionResetError" in message.delivery_error


def test_retries_back_off_and_fail_the_message_when_exhausted(email_adapter, ticket, alice, captured_events):
    email_adapter("TemporarilyDownAdapter")
    message = queued_reply(ticket, alice)

    results = [deliver_when_due(message.pk) for _ in range(len(replies.RETRY_BACKOFF) + 1)]

    assert [r.retry_in for r in results[:-1]] == list(replies.RETRY_BACKOFF)
    assert all(r.outcome is Outcome.RETRY for r in results[:-1])
    assert results[-1].outcome is Outcome.FAILED
    message.refresh_from_db()
    assert message.delivery_status == DeliveryStatus.FAILED
    assert message.delivery_attempts.count() == len(replies.RETRY_BACKOFF) + 1
    assert replies.deliver(message.pk).outcome is Outcome.SKIPPED
    assert captured_events.names.count(events.MESSAGE_FAILED) == 1


def test_a_permanent_error_fails_at_once_and_shows_the_reason(
    email_adapter, ticket, alice, api_client, captured_events
):
    email_adapter("BlockedAdapter")
    message = queued_reply(ticket, alice)

    result = replies.deliver(message.pk)

    assert result.outcome is Outcome.FAILED
    message.refresh_from_db()
    assert message.delivery_status == DeliveryStatus.FAILED and message.next_attempt_at is None
    [attempt] = message.delivery_attempts.all()
    assert attempt.permanent and attempt.error == "Forbidden: bot was blocked by the user"
    failed = TicketEvent.objects.get(name=events.MESSAGE_FAILED)
    assert failed.message == message
    assert failed.changes["error"] == [None, "Forbidden: bot was blocked by the user"]
    assert events.MESSAGE_FAILED in captured_events.names
    shown = api_client(alice).get(f"/api/v1/tickets/{ticket.pk}/").json()["messages"][-1]
    assert shown["delivery_status"] == "failed"
    assert shown["delivery_error"] == "Forbidden: bot was blocked by the user"
    assert replies.deliver(message.pk).outcome is Outcome.SKIPPED


def test_delivering_a_sent_message_again_does_nothing(email_adapter, ticket, alice):
    email_adapter("RecordingAdapter")
    message = queued_reply(ticket, alice)

    first = replies.deliver(message.pk)
    again = replies.deliver(message.pk)

    assert (first.outcome, again.outcome) == (Outcome.SENT, Outcome.SKIPPED)
    assert len(RecordingAdapter.delivered) == 1
    assert message.delivery_attempts.count() == 1
    assert TicketEvent.objects.filter(name=events.MESSAGE_SENT).count() == 1


def test_a_channel_without_an_adapter_fails_permanently(settings, ivan, alice):
    settings.DELIVER_TO_LOG = False
    settings.CHANNEL_ADAPTERS = {}
    fax = Ticket.objects.create(customer=ivan, channel="fax", subject="Faxed invoice")
    message = replies.send_reply(fax, actor=alice, text="Please use email")

    result = replies.deliver(message.pk)

    assert result.outcome is Outcome.FAILED
    message.refresh_from_db()
    assert message.delivery_status == DeliveryStatus.FAILED
    assert "fax" in message.delivery_error
    assert message.delivery_attempts.get().permanent


def test_a_message_that_does_not_exist_is_skipped(db):
    assert replies.deliver(987654321).outcome is Outcome.SKIPPED


def test_a_message_another_worker_is_sending_is_left_alone_until_it_goes_stale(email_adapter, ticket, alice):
    email_adapter("RecordingAdapter")
    message = queued_reply(ticket, alice)
    Message.objects.filter(pk=message.pk).update(
        delivery_status=DeliveryStatus.SENDING, sent_at=timezone.now()
    )

    busy = replies.deliver(message.pk)
    Message.objects.filter(pk=message.pk).update(
        sent_at=timezone.now() - replies.STALE_SENDING - timedelta(seconds=1)
    )
    taken_over = replies.deliver(message.pk)

    assert (busy.outcome, taken_over.outcome) == (Outcome.SKIPPED, Outcome.SENT)
    assert len(RecordingAdapter.delivered) == 1


# --- due_retries ---


def test_due_retries_finds_messages_whose_retry_time_passed(ticket, alice):
    now = timezone.now()

    def reply(status: str, **fields) -> Message:
        message = queued_reply(ticket, alice, status)
        Message.objects.filter(pk=message.pk).update(delivery_status=status, **fields)
        return message

    retry_passed = reply(DeliveryStatus.QUEUED, next_attempt_at=now - timedelta(minutes=5))
    retry_ahead = reply(DeliveryStatus.QUEUED, next_attempt_at=now + timedelta(minutes=5))
    just_due = reply(DeliveryStatus.QUEUED, next_attempt_at=now - timedelta(seconds=10))
    never_tried = reply(DeliveryStatus.QUEUED, created_at=now - timedelta(minutes=5))
    just_queued = reply(DeliveryStatus.QUEUED, created_at=now)
    stuck_sending = reply(DeliveryStatus.SENDING, sent_at=now - timedelta(minutes=30), created_at=now)
    busy_sending = reply(DeliveryStatus.SENDING, sent_at=now - timedelta(minutes=1))
    sent = reply(DeliveryStatus.SENT, created_at=now - timedelta(hours=1))
    failed = reply(DeliveryStatus.FAILED, created_at=now - timedelta(hours=1))

    due = set(replies.due_retries(now=now))

    assert {retry_passed.pk, never_tried.pk, stuck_sending.pk} <= due
    assert not due & {retry_ahead.pk, just_due.pk, just_queued.pk, busy_sending.pk, sent.pk, failed.pk}


def test_a_requeued_message_becomes_due_once_its_retry_time_passed(email_adapter, ticket, alice):
    email_adapter("TemporarilyDownAdapter")
    message = queued_reply(ticket, alice)
    replies.deliver(message.pk)
    message.refresh_from_db()

    assert message.pk not in replies.due_retries(now=message.next_attempt_at)
    assert message.pk in replies.due_retries(now=message.next_attempt_at + timedelta(minutes=2))


def test_due_retries_leaves_notes_and_inbound_messages_out(ticket, alice):
    replies.add_note(ticket, actor=alice, text="note")
    reply = queued_reply(ticket, alice)

    due = replies.due_retries(now=timezone.now() + timedelta(hours=1))

    assert due == [reply.pk]


@pytest.mark.parametrize(
    ("waiting", "after"), [(Status.PENDING, Status.OPEN), (Status.ON_HOLD, Status.ON_HOLD)]
)
def test_an_answer_that_cannot_be_delivered_puts_a_pending_ticket_back_on_the_agents(
    email_adapter, ticket, alice, captured_events, waiting, after
):
    email_adapter("BlockedAdapter")
    message = replies.send_reply(ticket, actor=alice, text="Ждём ваш ответ", status=waiting)

    assert replies.deliver(message.pk).outcome is Outcome.FAILED

    ticket.refresh_from_db()
    assert ticket.status == after
    reopened = TicketEvent.objects.filter(name=events.TICKET_UPDATED, changes__status=[waiting, Status.OPEN])
    assert reopened.exists() == (after != waiting)
