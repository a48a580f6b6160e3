"""An IRC client built on Twisted's ``IRCClient``, driven over stdin.

Run as ``python irc_peer_twisted.py PORT NICK``; the commands and the
output are those of irc_peer_irclib.py, with Twisted's callback names as
event types.  Used by test_irc_peers.py.
"""

from __future__ import annotations

import sys

from twisted.internet import protocol, reactor, stdio
from twisted.protocols import basic
from twisted.words.protocols import irc


def out(*fields: object) -> None:
    print("\t".join(str(f) for f in fields), flush=True)


def nick_of(user: str) -> str:
    return user.split("!", 1)[0]


class Client(irc.IRCClient):
    def __init__(self, nick: str) -> None:
        self.nickname = nick
        self.username = nick
        self.realname = f"{nick} via twisted"

    def connectionMade(self) -> None:
        super().connectionMade()
        Commands.client = self

    def signedOn(self) -> None:
        out("SIGNEDON", self.nickname)

    def joined(self, channel: str) -> None:
        out("JOINED", channel)

    def left(self, channel: str) -> None:
        out("LEFT", channel)

    def privmsg(self, user: str, channel: str, message: str) -> None:
        out("PRIVMSG", nick_of(user), channel, message)

    def noticed(self, user: str, channel: str, message: str) -> None:
        out("NOTICE", nick_of(user), channel, message)

    def action(self, user: str, channel: str, data: str) -> None:
        out("ACTION", nick_of(user), channel, data)

    def userJoined(self, user: str, channel: str) -> None:
        out("USERJOINED", nick_of(user), channel)

    def userLeft(self, user: str, channel: str) -> None:
        out("USERLEFT", nick_of(user), channel)

    def userQuit(self, user: str, quitMessage: str) -> None:
        out("USERQUIT", nick_of(user), quitMessage)

    def userKicked(self, kickee: str, channel: str, kicker: str, message: str) -> None:
        out("USERKICKED", kickee, channel, nick_of(kicker), message)

    def kickedFrom(self, channel: str, kicker: str, message: str) -> None:
        out("KICKEDFROM", channel, nick_of(kicker), message)

    def userRenamed(self, oldname: str, newname: str) -> None:
        out("USERRENAMED", oldname, newname)

    def nickChanged(self, nick: str) -> None:
        out("NICKCHANGED", nick)

    def topicUpdated(self, user: str, channel: str, newTopic: str) -> None:
        out("TOPIC", nick_of(user), channel, newTopic)

    def modeChanged(self, user: str, channel: str, set: bool, modes: str, args: tuple) -> None:
        out("MODE", nick_of(user), channel, "+" if set else "-", modes, *[a for a in args if a is not None])

    def irc_RPL_NAMREPLY(self, prefix: str, params: list[str]) -> None:
        out("NAMES", params[2], params[3])

    def irc_RPL_WHOISUSER(self, prefix: str, params: list[str]) -> None:
        out("WHOISUSER", *params[1:])

    def irc_RPL_ENDOFWHOIS(self, prefix: str, params: list[str]) -> None:
        out("ENDOFWHOIS", params[1])

    def irc_ERR_UNKNOWNCOMMAND(self, prefix: str, params: list[str]) -> None:
        out("UNKNOWNCOMMAND", *params[1:])

    def irc_PING(self, prefix: str, params: list[str]) -> None:
        out("PING", *params)
        super().irc_PING(prefix, params)

    def irc_ERROR(self, prefix: str, params: list[str]) -> None:
        out("ERROR", *params)

    def connectionLost(self, reason: object) -> None:
        out("DISCONNECT")
        super().connectionLost(reason)


class Commands(basic.LineReceiver):
    delimiter = b"\n"
    client: Client | None = None

    def lineReceived(self, line: bytes) -> None:
        client = Commands.client
        assert client is not None
        verb, _, rest = line.decode().partition(" ")
        target, _, text = rest.partition(" ")
        if verb == "join":
            client.join(target)
        elif verb == "say":
            client.msg(target, text)
        elif verb == "notice":
            client.notice(target, text)
        elif verb == "act":
            client.describe(target, text)
        elif verb == "topic":
            client.topic(target, text)
        elif verb == "nick":
            client.setNick(target)
        elif verb == "whois":
            client.whois(target)
        elif verb == "mode":
            sign, modes = text[0], text[1:].split(" ", 1)
            client.mode(target, sign == "+", modes[0], user=modes[1] if len(modes) > 1 else None)
        elif verb == "kick":
            who, _, why = text.partition(" ")
            client.kick(target, who, why or None)
        elif verb == "part":
            client.leave(target)
        elif verb == "raw":
            client.sendLine(rest)
        elif verb == "quit":
            client.quit(rest)
            reactor.callLater(0.5, reactor.stop)  # type: ignore[attr-defined]
        out("SENT", verb, target)

    def connectionLost(self, reason: object) -> None:
        if reactor.running:  # type: ignore[attr-defined]
            reactor.stop()  # type: ignore[attr-defined]


class Factory(protocol.ClientFactory):
    def __init__(self, nick: str) -> None:
        self.nick = nick

    def buildProtocol(self, addr: object) -> Client:
        return Client(self.nick)

    def clientConnectionFailed(self, connector: object, reason: object) -> None:
        out("FAILED", reason)
        reactor.stop()  # type: ignore[attr-defined]


def main() -> None:
    port, nick = int(sys.argv[1]), sys.argv[2]
    reactor.connectTCP("127.0.0.1", port, Factory(nick))  # type: ignore[attr-defined]
    stdio.StandardIO(Commands())
    reactor.run()  # type: ignore[attr-defined]
    out("BYE")


if __name__ == "__main__":
    main()
