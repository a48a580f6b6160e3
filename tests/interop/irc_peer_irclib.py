"""An IRC client built on the PyPI ``irc`` library, driven over stdin.

Run as ``python irc_peer_irclib.py PORT NICK``.  Each stdin line is a
command (``join #c``, ``say #c text``, ``act #c text``, ``topic #c text``,
``nick NEW``, ``whois NICK``, ``mode #c +o x``, ``part #c``, ``quit why``,
``raw LINE``); each event the library reports is printed as one line of
tab-separated fields, first the event type.  Used by test_irc_peers.py.
"""

from __future__ import annotations

import queue
import sys
import threading

import irc.client


def out(*fields: object) -> None:
    print("\t".join(str(f) for f in fields), flush=True)


def main() -> None:
    port, nick = int(sys.argv[1]), sys.argv[2]
    reactor = irc.client.Reactor()
    conn = reactor.server().connect("127.0.0.1", port, nick, username=nick, ircname=f"{nick} via irc")

    def show(kind: str):  # type: ignore[no-untyped-def]
        def handler(c, e):  # type: ignore[no-untyped-def]
            source = e.source.nick if e.source and "!" in e.source else (e.source or "")
            out(kind, source, e.target or "", *e.arguments)

        return handler

    for kind in ("welcome", "join", "part", "quit", "pubmsg", "privmsg", "action", "pubnotice",
                 "privnotice", "topic", "nick", "kick", "mode", "namreply", "endofnames", "whoisuser",
                 "whoischannels", "endofwhois", "currenttopic", "nicknameinuse", "unknowncommand",
                 "error", "ping", "ctcp", "ctcpreply", "list", "listend", "whoreply", "endofwho",
                 "inputtoolong", "invite", "isupport", "motd", "nomotd", "erroneusnickname",
                 "chanoprivsneeded", "cannotsendtochan", "nosuchnick"):
        reactor.add_global_handler(kind, show(kind.upper()))
    reactor.add_global_handler("disconnect", lambda c, e: out("DISCONNECT", "", "", *e.arguments))

    commands: queue.Queue[str] = queue.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            commands.put(line.rstrip("\n"))
        commands.put("eof")

    threading.Thread(target=read_stdin, daemon=True).start()
    while True:
        reactor.process_once(0.02)
        while not commands.empty():
            verb, _, rest = commands.get().partition(" ")
            target, _, text = rest.partition(" ")
            if verb == "join":
                conn.join(target)
            elif verb == "say":
                conn.privmsg(target, text)
            elif verb == "notice":
                conn.notice(target, text)
            elif verb == "act":
                conn.action(target, text)
            elif verb == "topic":
                conn.topic(target, text)
            elif verb == "nick":
                conn.nick(target)
            elif verb == "whois":
                conn.whois(target)
            elif verb == "mode":
                conn.mode(target, text)
            elif verb == "part":
                conn.part(target)
            elif verb == "list":
                conn.list()
            elif verb == "raw":
                conn.send_raw(rest)
            elif verb in ("quit", "eof"):
                conn.quit(rest)
                reactor.process_once(0.2)
                out("BYE")
                return
            out("SENT", verb, target)


if __name__ == "__main__":
    main()
