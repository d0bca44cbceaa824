"""Domain errors shared by every component.

``BadInput`` is the one error users can fix themselves: the CLI maps it to exit code 2
(which the operator's podFailurePolicy treats as "fail now, do not retry").
"""

from __future__ import annotations


class BadInput(Exception):
    """Input the user must fix. The message names the field, file or line."""

    exit_code = 2


EXIT_OK = 0
EXIT_CRASH = 1
EXIT_BAD_INPUT = 2
