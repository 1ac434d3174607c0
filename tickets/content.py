"""Customer-written content: sanitizing HTML and storing attachments safely."""

import hashlib
import html

import nh3
from django.conf import settings
from django.core.files.base import ContentFile
from django.utils.html import strip_tags

from tickets.models import Attachment, Message
from tickets.models.message import attachment_path

# Images a browser may show inline; everything else is served as a download.
INLINE_SAFE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def sanitize_html(raw_html: str) -> str:
    """HTML safe to show an agent: nh3 (ammonia) keeps formatting and drops scripts, styles and handlers."""
    if not raw_html:
        return ""
    return nh3.clean(raw_html, url_schemes={"http", "https", "mailto", "tel", "cid"})


def text_from_html(raw_html: str) -> str:
    return html.unescape(strip_tags(raw_html)).strip()


def subject_from_text(text: str, *, limit: int = 80) -> str:
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first_line if len(first_line) <= limit else first_line[: limit - 1].rstrip() + "…"


def store_attachment(
    message: Message, *, filename: str, content_type: str, content: bytes, content_id: str = ""
) -> Attachment:
    """Save the bytes under a generated name and record size and checksum. The caller checks the size."""
    attachment = Attachment(
        message=message,
        filename=(filename or "attachment")[:255],
        content_type=(content_type or "application/octet-stream")[:255],
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        content_id=content_id.strip("<>")[:255],
    )
    attachment.file.save(attachment_path(attachment, attachment.filename), ContentFile(content), save=False)
    attachment.save()
    return attachment


def attachment_too_large(size: int) -> bool:
    return size > settings.MAX_ATTACHMENT_BYTES
