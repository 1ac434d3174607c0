"""What people write: text the database can store, HTML safe to show, attachments stored safely.

Text. PostgreSQL stores neither NUL nor unpaired surrogates; `storable_text()` replaces both with U+FFFD.
`storable_message()` applies it once to every text field of an inbound message (receive() calls it), so a
customer's message is cleaned and kept rather than refused; the raw bytes stay in its InboundEnvelope.

HTML. `message_body()` decides what a message stores. HTML is sanitized with nh3 (ammonia) unless it is
too large (MAX_HTML_CHARS) or nested too deeply: html5ever's tree builder spends time that grows with the
square of the depth (100,000 nested `<div>` took 13 s), so `html_too_complex()` first estimates the
depth in one linear pass (see `_NestingEstimate`). Past either limit, the message keeps its text, the
HTML is not shown, the original goes on the message as the attachment ORIGINAL_HTML_FILENAME, and
`channel_data["content_note"]` says why.

Remote content. Sanitized HTML keeps remote images but never lets them load by themselves: an
`<img>` whose source is on another site (http, https or protocol-relative) has no `src`; its address is
in `data-remote-src` (absolute, https for a protocol-relative one). The workspace shows such images
only when an agent asks, by copying `data-remote-src` into `src`. Inline images (`cid:`) keep `src`.
Protocol-relative links (`//evil.example`) are rewritten to `https://evil.example`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nh3
from django.conf import settings
from django.core.files.base import ContentFile

from tickets.channels import InboundAttachment, InboundMessage
from tickets.models import Attachment, Message
from tickets.models.message import attachment_path

# Images a browser may show inline; everything else is served as a download.
INLINE_SAFE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})

# HTML past these limits is not sanitized: the message keeps its text and the original as an attachment.
# Gmail clips mail at about 100 KB of HTML; agents' API replies are capped at 500,000 characters too.
MAX_HTML_CHARS = 500_000
# Open elements (plus formatting elements html5 would reopen). Chromium's parser stops nesting at 512 too.
MAX_HTML_DEPTH = 512
# html5ever checks each attribute of a tag against the ones before it.
MAX_HTML_ATTRIBUTES = 256
ORIGINAL_HTML_FILENAME = "original.html"

URL_SCHEMES = frozenset({"http", "https", "mailto", "tel", "cid"})
REMOTE_SRC_ATTRIBUTE = "data-remote-src"

# --- text the database can store ---

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(value: str) -> str:
    """`value` with NUL and unpaired surrogates (PostgreSQL can store neither) replaced by U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", value)


def is_storable(value: str) -> bool:
    return _UNSTORABLE.search(value) is None


def storable_json(value: Any) -> Any:
    """A JSON-like value with every string in it (keys too) made storable."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable_json(key): storable_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(item) for item in value]
    return value


def storable_message(inbound: InboundMessage) -> InboundMessage:
    """The message with every text field made storable, so what a customer sent is kept, not refused.

    The ids (external_id, in_reply_to) are left as sent: `tickets.inbound.fit_external_id` stores an id the
    database cannot hold as its hash, so two different ids never become one.
    """
    return dataclasses.replace(
        inbound,
        sender_address=storable_text(inbound.sender_address),
        sender_name=storable_text(inbound.sender_name),
        sender_locale=storable_text(inbound.sender_locale),
        text=storable_text(inbound.text),
        html=storable_text(inbound.html),
        subject=storable_text(inbound.subject),
        thread_key=storable_text(inbound.thread_key),
        kind=storable_text(inbound.kind),
        attachments=tuple(
            InboundAttachment(
                filename=storable_text(item.filename),
                content_type=storable_text(item.content_type),
                content=item.content,
                content_id=storable_text(item.content_id),
            )
            for item in inbound.attachments
        ),
        channel_data=storable_json(inbound.channel_data),
    )


# --- what a message stores ---


@dataclass(frozen=True, slots=True)
class MessageBody:
    html: str
    text: str
    # Why the HTML is not shown; set together with original_html, which is then kept as an attachment.
    note: str = ""
    original_html: str = ""


def message_body(*, text: str = "", html: str = "") -> MessageBody:
    """The stored form of a message written as text and/or HTML: sanitized HTML and its text, or, for
    HTML too large or too deeply nested to sanitize in bounded time, the text and the original kept aside."""
    if not html:
        return MessageBody(html="", text=text)
    problem = html_too_complex(html)
    if problem:
        note = (
            f"The HTML of this message is not shown: {problem}. "
            f"The text is kept and the original is attached as {ORIGINAL_HTML_FILENAME}."
        )
        return MessageBody(html="", text=text or text_from_html(html), note=note, original_html=html)
    clean_html = sanitize_html(html)
    return MessageBody(html=clean_html, text=text or text_from_html(clean_html))


def keep_original_html(message: Message, body: MessageBody) -> Attachment | None:
    """Attach the HTML that `message_body()` did not show to the stored message (a download, never inline)."""
    if not body.original_html:
        return None
    return store_attachment(
        message,
        filename=ORIGINAL_HTML_FILENAME,
        content_type="text/html; charset=utf-8",
        content=body.original_html.encode("utf-8", "surrogatepass"),
    )


# --- sanitizing ---


def _is_protocol_relative(url: str) -> bool:
    # Browsers drop tabs and line breaks inside URLs and read a backslash as a slash.
    return _URL_NOISE.sub("", url)[:2] in ("//", "\\\\", "/\\", "\\/")


_URL_NOISE = re.compile(r"[\t\n\r]|^[\x00-\x20]+")


def _https(url: str) -> str:
    """A protocol-relative URL made absolute with https; any other URL as it is."""
    if not _is_protocol_relative(url):
        return url
    return "https://" + _URL_NOISE.sub("", url).lstrip("/\\")


def _remote_image_filter() -> Callable[[str, str, str], str | None]:
    """nh3's attribute_filter: moves a remote `<img src>` into `data-remote-src`.

    nh3 cannot rename an attribute, so every `<img>` is given an empty `data-remote-src` (after the
    element's own attributes: ammonia appends it) and this filter, called per attribute in order, drops a
    remote `src` and hands its address to that attribute. One filter per clean() call: it keeps state.
    """
    remote_src: list[str] = []

    def attribute_filter(tag: str, attribute: str, value: str) -> str | None:
        if tag != "img":
            return value
        if attribute == "src":
            url = _URL_NOISE.sub("", value).rstrip()
            if _is_protocol_relative(url) or url.lower().startswith(("http:", "https:")):
                remote_src.append(_https(url))
                return None
            return value
        if attribute == REMOTE_SRC_ATTRIBUTE:
            return remote_src.pop() if remote_src else None
        return value

    return attribute_filter


def sanitize_html(raw_html: str) -> str:
    """HTML safe to show an agent: nh3 (ammonia) keeps formatting and drops scripts, styles and handlers;
    remote images are marked and protocol-relative links made https (module docstring).

    Callers bound the work first (`message_body()` checks `html_too_complex()`).
    """
    if not raw_html:
        return ""
    return nh3.clean(
        raw_html,
        url_schemes=set(URL_SCHEMES),
        set_tag_attribute_values={"img": {REMOTE_SRC_ATTRIBUTE: ""}},
        attribute_filter=_remote_image_filter(),
        url_relative=_https,
    )


# --- text from HTML ---

# Linear on any input, even HTML nobody sanitized: comments and script/style bodies go, block ends and
# line breaks become new lines, every other tag goes, entities are decoded.
_NOT_TEXT = re.compile(
    r"<!--.*?(?:-->|\Z)|<(script|style)\b.*?(?:</\1\s*>|\Z)|<!.*?(?:>|\Z)|<\?.*?(?:>|\Z)",
    re.IGNORECASE | re.DOTALL,
)
_LINE_BREAK = re.compile(r"<br\b[^>]*>|</(?:p|div|li|tr|h[1-6]|blockquote|pre|table)\s*>", re.IGNORECASE)
_TAG = re.compile(r"</?[A-Za-z][^>]*>?")
_BLANK_LINES = re.compile(r"[ \t]*\n(?:[ \t]*\n)+")


def text_from_html(raw_html: str) -> str:
    text = _NOT_TEXT.sub("", raw_html)
    text = _LINE_BREAK.sub("\n", text)
    text = html.unescape(_TAG.sub("", text))
    return _BLANK_LINES.sub("\n\n", text).strip()


def subject_from_text(text: str, *, limit: int = 80) -> str:
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first_line if len(first_line) <= limit else first_line[: limit - 1].rstrip() + "…"


# --- bounding the sanitizer's work ---


def html_too_complex(raw_html: str) -> str:
    """Why sanitizing `raw_html` could take unbounded time ("" when it cannot): one linear pass."""
    if len(raw_html) > MAX_HTML_CHARS:
        return f"it is {len(raw_html):,} characters long (the limit is {MAX_HTML_CHARS:,})"
    return _NestingEstimate().scan(raw_html)


class _NestingEstimate:
    """Follows the HTML tokenizer and a cautious model of the tree builder, counting open elements.

    The count errs high, never low: an end tag closes elements only where html5 certainly does, and
    formatting elements html5 could reopen are counted until their own end tag (at most three alike,
    html5's "Noah's Ark" rule). Tokens are found as html5 finds them (quoted attribute values only after
    `=`; comments, raw text and CDATA end where html5 ends them); where the tokenizer's state would depend
    on more than this model follows (raw text inside SVG/MathML or a select, `<!--` inside a script), the
    HTML counts as too complex. Anything past the limits is not sanitized at all, so erring high only ever
    costs formatting, never time.
    """

    def __init__(self) -> None:
        self.names: list[str] = []  # the open elements, outermost first
        self.positions: dict[str, list[int]] = {}  # name -> its indexes in `names`
        self.blockers: list[int] = []  # indexes of elements an end tag does not close through
        self.scope_limits: list[int] = []  # indexes of scope boundaries
        # Formatting elements html5 could reopen: start tag as written -> count (html5 keeps 3 alike at
        # most), and per name the tags counted, latest last.
        self.formatting: dict[str, int] = {}
        self.formatting_tags: dict[str, list[str]] = {}
        self.reopenable = 0

    def scan(self, raw_html: str) -> str:
        position, end = 0, len(raw_html)
        while position < end:
            found = _MARKUP.search(raw_html, position)
            if found is None:
                return ""
            position = found.end()
            closing, name = found.group(1), found.group(2)
            if name is None:  # a comment, doctype, CDATA or bogus comment: skip to where html5 ends it
                if found.group(0) == "</>":
                    continue
                if found.group(0) == "<![CDATA[" and self.in_foreign_content():
                    stop = raw_html.find("]]>", position)
                    position = end if stop < 0 else stop + 3
                else:
                    position = _comment_end(raw_html, found.group(0), position)
                continue
            name = name.lower()
            tag = found.group(0)
            if len(tag) > MAX_HTML_ATTRIBUTES and len(_ATTRIBUTE_START.findall(tag)) > MAX_HTML_ATTRIBUTES:
                return f"a tag has more than {MAX_HTML_ATTRIBUTES} attributes"
            if closing:
                self.end_tag(name)
                continue
            self.start_tag(name, tag)
            if len(self.names) + self.reopenable > MAX_HTML_DEPTH:
                return f"it is nested more than {MAX_HTML_DEPTH} elements deep"
            if name in _RAW_TEXT:
                if self.in_foreign_content() or ("select" in self.positions and name not in _RAW_IN_SELECT):
                    return "its markup is too irregular to sanitize safely"
                if name == "plaintext":
                    return ""
                stop = _RAW_TEXT_ENDS[name].search(raw_html, position)
                if name == "script" and "<!--" in raw_html[position : stop.start() if stop else end]:
                    return "its markup is too irregular to sanitize safely"
                position = stop.start() if stop else end
        return ""

    def in_foreign_content(self) -> bool:
        return "svg" in self.positions or "math" in self.positions

    def push(self, name: str) -> None:
        index = len(self.names)
        self.names.append(name)
        self.positions.setdefault(name, []).append(index)
        if name in _SPECIAL:
            self.blockers.append(index)
        if name in _SCOPE_LIMITS:
            self.scope_limits.append(index)

    def pop_to(self, index: int) -> None:
        """Close the element at `index` and everything inside it."""
        while len(self.names) > index:
            name = self.names.pop()
            stack = self.positions[name]
            stack.pop()
            if not stack:
                del self.positions[name]
            if self.blockers and self.blockers[-1] >= len(self.names):
                self.blockers.pop()
            if self.scope_limits and self.scope_limits[-1] >= len(self.names):
                self.scope_limits.pop()

    def topmost(self, name: str) -> int:
        stack = self.positions.get(name)
        return stack[-1] if stack else -1

    def in_scope(self, name: str) -> int:
        """Index of the innermost open `name` with no scope boundary inside it, else -1."""
        index = self.topmost(name)
        if index < 0 or (self.scope_limits and self.scope_limits[-1] > index):
            return -1
        return index

    def start_tag(self, name: str, tag: str) -> None:
        if self.in_foreign_content():
            # SVG and MathML elements nest as written; html5 may close some (counting high is safe).
            if not tag.endswith("/>"):
                self.push(name)
            return
        if name in _CLOSES_P and (index := self.in_scope("p")) >= 0:
            self.pop_to(index)
        if name in ("li", "dd", "dt"):
            index = self.topmost("li") if name == "li" else max(self.topmost("dd"), self.topmost("dt"))
            if index >= 0 and not (self.blockers and self.blockers[-1] > index):
                self.pop_to(index)
        elif name in ("option", "optgroup") and self.names and self.names[-1] == "option":
            self.pop_to(len(self.names) - 1)
        elif name in _TABLE_PARTS:
            self.table_part(name)
        if name in _VOID or name in _NEVER_PUSHED:
            return
        if name in _FORMATTING and self.formatting.get(tag, 0) < 3:
            self.formatting[tag] = self.formatting.get(tag, 0) + 1
            self.formatting_tags.setdefault(name, []).append(tag)
            self.reopenable += 1
        self.push(name)

    def table_part(self, name: str) -> None:
        """The rows, sections and cells html5 closes or adds (tbody, tr) around a table part."""
        table = self.topmost("table")
        if table < 0:
            return
        row = self.topmost("tr")
        if name in ("td", "th") and row > table:
            self.pop_to(row + 1)
            return
        section = max(self.topmost("tbody"), self.topmost("thead"), self.topmost("tfoot"))
        if name in ("td", "th"):
            if section < table:
                self.push("tbody")
            self.push("tr")
        elif name == "tr":
            if section > table:
                self.pop_to(section + 1)
            else:
                self.push("tbody")
        elif name in ("tbody", "thead", "tfoot", "caption", "colgroup"):
            self.pop_to(table + 1)
        elif name == "col" and self.names[-1] != "colgroup":
            self.push("colgroup")

    def end_tag(self, name: str) -> None:
        if name in _FORMATTING:
            index = self.topmost(name)
            if index >= 0 and not (self.blockers and self.blockers[-1] > index):
                self.pop_to(index)
                self.forget_formatting(name)
        elif name in _CLOSED_IN_SCOPE:
            index = self.in_scope(name)
            if index >= 0:
                self.pop_to(index)
        elif name not in _NEVER_CLOSED:
            index = self.topmost(name)
            if index >= 0 and not (self.blockers and self.blockers[-1] > index):
                self.pop_to(index)

    def forget_formatting(self, name: str) -> None:
        tags = self.formatting_tags.get(name)
        if tags:
            tag = tags.pop()
            self.formatting[tag] -= 1
            self.reopenable -= 1


def _comment_end(raw_html: str, opening: str, position: int) -> int:
    """Where html5 ends a comment, doctype or bogus comment that started with `opening` before `position`."""
    if opening == "<!--":
        abrupt = re.match(r"-?>", raw_html[position : position + 2])
        if abrupt:
            return position + abrupt.end()
        found = _COMMENT_END.search(raw_html, position)
    else:
        found = _BOGUS_END.search(raw_html, position)
    return found.end() if found else len(raw_html)


# A start or end tag as html5's tokenizer reads it (attribute values are quoted only after "="), or the
# opening of a comment, doctype, CDATA section or bogus comment.
_MARKUP = re.compile(
    r"""
    <(/?)([A-Za-z][^\t\n\f\r />]*)
    (?:
        [\t\n\f\r /]+
      | [^\t\n\f\r />][^\t\n\f\r />=]*
        (?:[\t\n\f\r ]*=[\t\n\f\r ]*(?:"[^"]*"?|'[^']*'?|[^\t\n\f\r >"'][^\t\n\f\r >]*)?)?
    )*
    >?
    | <!--|<!\[CDATA\[|<!|<\?|</(?=[^A-Za-z>])|</>
    """,
    re.VERBOSE,
)
_ATTRIBUTE_START = re.compile(r"""[\t\n\f\r /"']+[^\t\n\f\r />"']""")
_COMMENT_END = re.compile(r"--!?>")
_BOGUS_END = re.compile(">")

_RAW_TEXT = frozenset(
    {"script", "style", "xmp", "iframe", "noembed", "noframes", "noscript", "textarea", "title", "plaintext"}
)
# Inside a select html5 ignores the other raw text tags; textarea closes the select first.
_RAW_IN_SELECT = frozenset({"script", "style", "textarea"})
_RAW_TEXT_ENDS = {name: re.compile(rf"</{name}[\t\n\f\r />]", re.IGNORECASE) for name in _RAW_TEXT}
_VOID = frozenset(
    "area base basefont bgsound br col embed frame hr image img input keygen link meta param source track "
    "wbr".split()
)
# html5 never opens these inside a fragment's body (it merges or ignores them).
_NEVER_PUSHED = frozenset({"html", "head", "body"})
# </form> takes the form out of the stack but leaves open what is inside it.
_NEVER_CLOSED = _NEVER_PUSHED | {"form"}
_FORMATTING = frozenset("a b big code em font i nobr s small strike strong tt u".split())
# Start tags that close an open <p> first.
_CLOSES_P = frozenset(
    "address article aside blockquote center details dialog dir div dl fieldset figcaption figure footer "
    "header hgroup main menu nav ol p search section summary ul h1 h2 h3 h4 h5 h6 pre listing form li dd "
    "dt plaintext hr xmp table".split()
)
_TABLE_PARTS = frozenset({"td", "th", "tr", "tbody", "thead", "tfoot", "caption", "colgroup", "col"})
# Every scope's boundaries together (default, button, list item, table, select): erring towards "not in
# scope", so an end tag is ignored rather than closing what html5 would keep open.
_SCOPE_LIMITS = frozenset(
    "applet caption html table td th marquee object template mi mo mn ms mtext annotation-xml "
    "foreignobject desc title button ol ul select svg math".split()
)
# End tags html5 honours when the element is in scope (anything else open inside it is closed too).
_CLOSED_IN_SCOPE = frozenset(
    "address article aside blockquote button center details dialog dir div dl fieldset figcaption figure "
    "footer header hgroup listing main menu nav ol pre search section summary ul p li dd dt h1 h2 h3 h4 h5 "
    "h6 applet marquee object table caption td th tr tbody thead tfoot select template".split()
)
# html5's "special" elements: any other end tag is ignored when one of these is open inside its element.
_SPECIAL = (
    frozenset(
        "address applet area article aside base basefont bgsound blockquote body br button caption center "
        "col colgroup dd details dir div dl dt embed fieldset figcaption figure footer form frame "
        "frameset h1 h2 h3 h4 h5 h6 head header hgroup hr html iframe img input keygen li link listing "
        "main marquee menu meta nav noembed noframes noscript object ol p param plaintext pre script "
        "search section select source style summary table tbody td template textarea tfoot th thead title "
        "tr track ul wbr xmp mi mo mn ms mtext annotation-xml foreignobject desc svg math".split()
    )
    | _SCOPE_LIMITS
)


# --- attachments ---


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
