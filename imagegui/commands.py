"""The subcommands and the module of ``imagegui.cli`` that implements each.

A module of its own, importing nothing: ``imagegui.__main__`` tells a subcommand from the
window with it before anything else is loaded (:mod:`imagegui.startup` then reads ahead what
that start needs), and ``imagegui.cli`` imports only the module the command chosen needs.
"""

from __future__ import annotations

#: Subcommand -> its module in ``imagegui.cli``, so ``imagegui scan`` does not pay for the
#: operations engine's imports.
COMMAND_MODULES = {
    "scan": "scan_cmds",
    "check": "scan_cmds",
    "overlay": "ops_cmds",
    "rebase": "ops_cmds",
    "commit": "ops_cmds",
    "flatten": "ops_cmds",
    "check-image": "ops_cmds",
    "launch": "ops_cmds",
    "vms": "ops_cmds",
    "stop": "ops_cmds",
    "clean-leftovers": "ops_cmds",
    "clone-vm": "clonevm_cmds",
    "delete": "delete_cmds",
    "clean": "delete_cmds",
    "move": "move_cmds",
    "relink": "move_cmds",
    "space": "space_cmds",
    "new": "image_cmds",
    "resize": "image_cmds",
    "snapshot": "image_cmds",
    "convert": "image_cmds",
    "install-desktop": "install_desktop",
}
SUBCOMMANDS = tuple(COMMAND_MODULES)
