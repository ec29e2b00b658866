"""Errors caused by the user's input (files, options, checkpoints).

Entry points print these as one line, ``rosettamt: error: <message>``, and exit
with status 2; anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input: a file, a line, an option or a checkpoint. The message says which."""
