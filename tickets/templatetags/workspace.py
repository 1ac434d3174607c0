"""Template helpers of the workspace: channel icons, people's names and initials, message HTML."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from tickets.models import Channel, User
from tickets.views.timeline import MessageHtml, without_remote_images

register = template.Library()

# Icons of the vendored Lucide sprite (static/vendor/README.md), one per channel.
CHANNEL_ICONS = {
    Channel.EMAIL: "mail",
    Channel.TELEGRAM: "send",
    Channel.PHONE: "phone",
    "sms": "message-square-text",
    Channel.WIDGET: "message-circle",
    Channel.API: "plug",
}


@register.filter
def channel_icon(channel: str) -> str:
    return CHANNEL_ICONS.get(channel, "circle-dot")


@register.filter
def person(user: User | None) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


@register.filter
def initials(user: User | None) -> str:
    name = person(user)
    return "".join(word[0] for word in name.split()[:2]).upper() or "?"


@register.filter
def message_html(sanitized_html: str) -> MessageHtml:
    """Stored (already sanitized) HTML with its remote images waiting for "Show images"."""
    return without_remote_images(sanitized_html)


@register.filter
def safe_message_html(shown: MessageHtml) -> SafeString:
    # Sanitized with nh3 when it was stored (tickets.content); remote images were just taken out.
    return mark_safe(shown.html)  # noqa: S308
