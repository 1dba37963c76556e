"""The root of every error DishLens raises on purpose.

Each package keeps its own ``errors.py`` with subclasses of :class:`DishLensError`.
``str(error)`` is always a sentence a user can read and act on; technical detail lives in
attributes and in the chained ``__cause__``.
"""


class DishLensError(Exception):
    """Base class: ``str()`` is a user-safe message."""

    def __reduce__(self):
        # Subclasses take their own constructor arguments, so rebuild from the state instead:
        # an error raised in a model worker process then arrives whole (class, message, fields).
        return _rebuild, (type(self), self.args, self.__dict__)


def _rebuild(cls: type[DishLensError], args: tuple, state: dict) -> DishLensError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class FeedbackError(DishLensError, OSError):
    """Feedback could not be stored; ``uri`` says where it was going."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        super().__init__(
            "Your feedback could not be saved right now. Thank you anyway — the rest of the page "
            "still works."
        )


class InvalidFeedbackError(DishLensError, ValueError):
    """A record's ``id`` or ``created`` cannot name a file (a programming error upstream)."""


class SettingsError(DishLensError, ValueError):
    """An environment variable holds a value DishLens cannot use."""

    def __init__(self, name: str, value: str, expected: str) -> None:
        self.name = name
        self.value = value
        self.expected = expected
        super().__init__(f"The setting {name}={value!r} is not valid: expected {expected}.")
