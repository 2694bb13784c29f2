"""User-facing errors, and the wording of counts in what a user reads.

A `UserError` is a problem with the user's data, files or configuration. Entry points print its
message as one line (no traceback) and exit with status 2. Anything else is a bug and keeps its
traceback.
"""


class UserError(Exception):
    """A problem the user can fix: the message names the place (file, split, row) and the problem."""


class DataError(UserError):
    """Bad input data: the message names the file or dataset and split, the row or line, and the problem."""


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """'1 epoch', '2 epochs', '2 processes': a count in words a person reads."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
