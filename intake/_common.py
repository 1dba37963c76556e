"""Private helpers shared by the intake modules."""

from __future__ import annotations

import time

from dishlens.settings import Settings, get_settings

USER_AGENT = "DishLens/0.1 (+https://github.com/dishlens)"


def resolve_settings(settings: Settings | None) -> Settings:
    return get_settings() if settings is None else settings


class Deadline:
    """A fixed point in time; ``remaining()`` is never negative."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())
