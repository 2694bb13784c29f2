"""User-facing errors, and the wording of counts in what a user reads.

A `UserError` is a problem with the user's data, files or configuration. Entry points (ner-train,
ner-evaluate, ner-predict, ner-report) end on one through `exit_on_error`: its message as one line
(no traceback) and exit status 2; ner-evaluate and ner-predict end on Ctrl-C through
`exit_on_ctrl_c` (one line, 130). Anything else is a bug and keeps its traceback.
"""

import sys

EXIT_USER_ERROR = 2
EXIT_CTRL_C = 130  # 128 + SIGINT: what a shell reports for a command Ctrl-C stopped


class UserError(Exception):
    """A problem the user can fix: the message names the place (file, split, row) and the problem."""


class DataError(UserError):
    """Bad input data: the message names the file or dataset and split, the row or line, and the problem."""


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """'1 epoch', '2 epochs', '2 processes': a count in words a person reads."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def error_line(error: BaseException | str) -> str:
    """`error: <the message as one line>`: what every entry point prints on a user error."""
    return f"error: {' '.join(str(error).split())}"


def exit_on_error(error: BaseException | str, speak: bool = True) -> int:
    """Print `error_line(error)` on stderr where `speak` (rank 0 of a job) and return the exit
    status of a user error, 2: the one way an entry point ends on a UserError."""
    if speak:
        print(error_line(error), file=sys.stderr, flush=True)
    return EXIT_USER_ERROR


def exit_on_ctrl_c(command: str, speak: bool = True) -> int:
    """Say on stderr, where `speak`, that `command` was stopped by Ctrl-C (its KeyboardInterrupt)
    and return 130: one line, not the traceback of wherever it was."""
    if speak:
        print(f"{command}: interrupted (Ctrl-C)", file=sys.stderr, flush=True)
    return EXIT_CTRL_C
