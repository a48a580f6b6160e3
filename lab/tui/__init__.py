"""The Textual front-end: ``netlab`` (or ``netlab tui``) opens it.

Importing this package imports nothing from Textual; :mod:`lab.tui.app`
does.  The pieces that need no Textual (the event feed, filter language,
ladder diagrams, byte dumps, rates) can be used on their own.
"""
