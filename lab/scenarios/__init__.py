"""Scenarios: a lab plus a conversation, written down so it runs again.

Load and validate with :func:`load_file`, run with :func:`run_scenario`
(or a :class:`Runner`, which reports each step as a :class:`StepUpdate`),
record a live session with :class:`Recorder`.  The command-line front
(``netlab run``, ``up``, ``mock``) is :mod:`lab.scenarios.cli`, the pytest
plugin :mod:`lab.scenarios.pytest_plugin`.  Schema: docs/scenarios.md.
"""

from __future__ import annotations

from lab.scenarios._model import Scenario, ServerDecl, Step, load_file, load_text
from lab.scenarios._recorder import Recorder
from lab.scenarios._runner import Failure, Outcome, Runner, StepState, StepUpdate, run_scenario

__all__ = [
    "Failure",
    "Outcome",
    "Recorder",
    "Runner",
    "Scenario",
    "ServerDecl",
    "Step",
    "StepState",
    "StepUpdate",
    "load_file",
    "load_text",
    "run_scenario",
]
