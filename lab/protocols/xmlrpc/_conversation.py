"""Both sides of an XML-RPC connection: HTTP/1.1's conversation, with
every whole call and reply read as XML-RPC for the log
(:class:`~lab.protocols.xmlrpc._messages.XmlRpcCall`,
:class:`~lab.protocols.xmlrpc._messages.XmlRpcReply`).

HTTP's state table and sessions see the plain HTTP messages underneath,
so framing (and everything HTTP knows) is HTTP's own.

Tests: tests/protocols/test_xmlrpc.py
"""

from __future__ import annotations

from lab.protocols._base import Message, Role
from lab.protocols._conversation import Decoder
from lab.protocols.http._codec import HttpConversation, HttpDecoder
from lab.protocols.http._messages import HttpRequestHead, HttpResponseHead
from lab.protocols.xmlrpc._messages import as_call, as_reply, plain

__all__ = ["XmlRpcConversation", "XmlRpcDecoder", "xmlrpc_view"]


def xmlrpc_view(msg: Message) -> Message:
    """``msg`` as XML-RPC when it is a whole call or reply, else itself."""
    if type(msg) is HttpRequestHead:
        return as_call(msg)
    if type(msg) is HttpResponseHead:
        return as_reply(msg)
    return msg


class XmlRpcDecoder(HttpDecoder):
    """HTTP's decoder, with whole calls and replies read as XML-RPC."""

    def next_message(self) -> Message | None:
        msg = super().next_message()
        return None if msg is None else xmlrpc_view(msg)


class XmlRpcConversation(HttpConversation):
    """An HTTP conversation that shows XML-RPC, both ways and to an observer."""

    def decoder(self, sender: Role) -> Decoder:
        return XmlRpcDecoder(self, sender)

    def track(self, sender: Role, msg: Message) -> None:
        super().track(sender, plain(msg))

    def send(self, msg: Message) -> bytes:
        # what this side sends whole is shown as what the other side would decode
        return super().send(xmlrpc_view(msg))
