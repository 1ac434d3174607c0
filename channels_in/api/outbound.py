"""The API channel's adapter: the integration reads replies back through the API and the customer portal."""

from __future__ import annotations

from typing import ClassVar

from tickets.channels import LogAdapter, OutboundMessage
from tickets.models import Channel


class ApiAdapter(LogAdapter):
    """Nothing to send: the reply is stored, and delivering it only names it."""

    channel: ClassVar[str] = Channel.API

    def deliver(self, message: OutboundMessage) -> str:
        return f"api-{message.message_id}"
