"""States, levels and kinds read as their values in text, on every Python (3.10 has no
``enum.StrEnum``; a ``(str, Enum)`` prints as ``State.OK`` unless told otherwise)."""

import json

import pytest

from imagegui.core.chains.diagnose import Kind, Level
from imagegui.core.chains.nodestate import State

MEMBERS = [*State, *Level, *Kind]


@pytest.mark.parametrize("member", MEMBERS, ids=str)
def test_member_is_its_value_in_text(member):
    value = member.value
    assert str(member) == value
    assert f"{member}" == value
    assert f"[{member:>20}]" == f"[{value:>20}]"
    assert format(member) == value
    assert "%s" % member == value  # noqa: UP031 - the old formatting is used in messages too
    assert "{}".format(member) == value  # noqa: UP032
    assert json.dumps(member) == json.dumps(value)
    assert member == value and hash(member) == hash(value)
    assert type(member)(value) is member


def test_members_sort_and_join_as_strings():
    assert ", ".join([Level.ERROR, Level.WARNING]) == "error, warning"
    assert State("in use") is State.IN_USE
