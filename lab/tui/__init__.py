"""The Textual front-end (not yet built; see the TUI issue)."""
