"""The errors every layer raises for the CLI to print in one line (pocketbert.common re-exports them)."""

from __future__ import annotations


class UsageError(Exception):
    """A problem with the user's input: the CLI prints it on one line and exits with code 2."""

    exit_code = 2


class CheckFailed(UsageError):
    """A check on our own output failed (e.g. export parity out of tolerance): exit code 1."""

    exit_code = 1
