"""Both sides of a SOAP connection: HTTP/1.1's conversation with whole
envelopes read as SOAP for the log; HTTP's state table and sessions see
the plain HTTP messages underneath.

Tests: tests/protocols/test_soap.py
"""

from __future__ import annotations

from lab.protocols._base import Message, Role
from lab.protocols._conversation import Decoder
from lab.protocols.http._codec import HttpConversation, HttpDecoder
from lab.protocols.soap._messages import plain, soap_view

__all__ = ["SoapConversation", "SoapDecoder"]


class SoapDecoder(HttpDecoder):
    """HTTP's decoder, with whole envelopes read as SOAP."""

    def next_message(self) -> Message | None:
        msg = super().next_message()
        return None if msg is None else soap_view(msg)


class SoapConversation(HttpConversation):
    """An HTTP conversation that shows SOAP, both ways and to an observer."""

    def decoder(self, sender: Role) -> Decoder:
        return SoapDecoder(self, sender)

    def track(self, sender: Role, msg: Message) -> None:
        super().track(sender, plain(msg))

    def send(self, msg: Message) -> bytes:
        return super().send(soap_view(msg))
