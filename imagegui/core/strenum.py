"""``StrEnum`` for Python 3.10: ``enum.StrEnum`` only exists from 3.11.

A ``(str, Enum)`` member compares equal to its value and is written by ``json`` as its value, but
``str()`` of it is ``"State.OK"`` and ``format()`` changed between Python versions. The states,
severities and kinds are printed, formatted into messages and used as JSON values everywhere, so
both are pinned to the value here, as 3.11's ``enum.StrEnum`` does.
"""

from __future__ import annotations

from enum import Enum


class StrEnum(str, Enum):
    """An enum whose members are their string values wherever text is made of them."""

    def __str__(self) -> str:
        return self._value_

    def __format__(self, spec: str) -> str:
        return format(self._value_, spec)
