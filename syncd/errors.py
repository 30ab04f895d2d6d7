"""Errors meant for the operator: shown as one readable line, without a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A mistake the operator can fix (bad configuration, unknown pair, bad argument).

    The CLI prints the message on one line and exits with ``exit_code``.
    """

    exit_code = 2


class DaemonNotRunning(UserError):
    """A command needs the running daemon and none answers."""

    exit_code = 3
