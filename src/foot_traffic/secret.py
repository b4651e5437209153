"""Secret values: strings that never show themselves in a repr, a log line or an error message."""

from __future__ import annotations

import hmac

MASK = "'***'"
"""How a secret value is shown, wherever a value would be quoted."""


class Secret:
    """A string that never shows itself: ``repr`` is ``'***'``, ``str`` is ``***``; ``reveal()`` gives it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the client that needs it and nothing else."""
        return self._value

    def __repr__(self) -> str:
        return MASK

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)
