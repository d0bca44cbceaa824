"""Domain errors and the exit codes of every ``benchcal`` command (the one place they are defined).

``BadInput`` is the one error users can fix themselves: the CLI maps it to ``EXIT_BAD_INPUT``,
which the operator's podFailurePolicy treats as "fail now, do not retry" (``benchcal_operator.jobs``).
"""

from __future__ import annotations


class BadInput(Exception):
    """Input the user must fix. The message names the field, file or line."""


EXIT_OK = 0  # done
EXIT_CRASH = 1  # unexpected failure, or some pairs failed (finished work is kept; a retry resumes)
EXIT_BAD_INPUT = 2  # input the user must fix; nothing was evaluated
EXIT_INTERRUPTED = 130  # SIGINT (128 + 2), as a shell reports it
