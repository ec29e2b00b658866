"""Errors caused by the user's input (files, options, checkpoints), and stops asked for by a signal.

Entry points print these as one line, ``rosettamt: error: <message>``, and exit
with status 2; anything else is a bug and keeps its traceback. :class:`Interrupted`
ends a command on SIGINT or SIGTERM with status 128 + the signal number (130, 143).
"""

import signal


class UserError(Exception):
    """Bad input: a file, a line, an option or a checkpoint. The message says which."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM stopped the command (after it saved what it had to save).

    A BaseException like KeyboardInterrupt, so that no ``except Exception`` on the way swallows
    it, and every ``finally`` (temp files removed, outputs closed) still runs.
    """

    def __init__(self, signum: int, message: str = "") -> None:
        super().__init__(message or f"{'interrupted' if signum == signal.SIGINT else 'terminated'} "
                                    f"({signal.Signals(signum).name})")
        self.signum = int(signum)

    @property
    def exit_status(self) -> int:
        return 128 + self.signum
