"""User-facing errors: one line, exit code 2, no traceback.

Anything a user can get wrong (an unknown name, a value of the wrong type, a missing or corrupt file) raises
`UsageError`; the CLI prints its message on one line and exits with status 2.
"""


class UsageError(Exception):
    """A problem with the user's input that they can fix; the message says how."""

    exit_code = 2

    def __init__(self, message: str):
        # One line, always: the CLI prints it verbatim.
        super().__init__(" ".join(str(message).split()))


class DataError(UsageError):
    """Dataset absent, corrupt or unreadable."""


class TrainingDiverged(UsageError):
    """The training loss became NaN, infinite, or far above chance (`engine.trainer.divergence_bound`); the run
    stopped and kept its last good checkpoint."""

    exit_code = 1
