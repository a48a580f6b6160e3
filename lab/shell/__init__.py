"""IPython extension and REPLs (not yet built; see the shell issue)."""
