"""Where imagegui keeps what it remembers between runs: one rule for every state file.

``$XDG_STATE_HOME/imagegui/NAME`` (``~/.local/state`` when the variable is unset or, as the XDG
spec says, not an absolute path), unless the file's own environment variable names a path (tests
and users point single files elsewhere that way).
"""

from __future__ import annotations

import os


def state_file(name: str, override_env: str) -> str:
    if override := os.environ.get(override_env):
        return override
    state = os.environ.get("XDG_STATE_HOME")
    if not state or not os.path.isabs(state):
        state = os.path.expanduser("~/.local/state")
    return os.path.join(state, "imagegui", name)
