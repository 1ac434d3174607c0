"""The API channel: integrations push customer messages as JSON; replies are read back through the API.

The template every channel app copies: `inbound.py` (wire format to InboundMessage, pure), `outbound.py`
(the adapter), `views.py` (authenticate, store the envelope, hand over), `urls.py`, `tests/`, and one line
in `tickets.channels.REGISTRY`. This channel needs no `models.py` (integrations sign in with an admin's API
token) and no `tasks.py` (nothing to poll).
"""
