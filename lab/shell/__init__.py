"""Front-ends for a person at a keyboard: the IPython extension
(``%netlab``), ``netlab shell``, ``netlab console`` and ``netlab talk``.

Importing this package imports neither IPython nor prompt_toolkit; each
front-end module does, and only the command that runs it imports it.
"""
