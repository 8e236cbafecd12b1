"""``imagegui move SRC… DEST`` and ``imagegui relink PATH… --relative|--absolute``.

The same plans as the other writing commands (``ops_cmds.execute``): ``--dry-run`` prints the
plan and changes nothing; exit status 0 done, 1 failed (what was undone is said), 2 refused or a
bad argument, 128 + the signal when cancelled by one. ``relink`` exits 2 when it kept an image
as it was (in use, a VM's disk, read-only) even though it rewrote the others.
"""

from __future__ import annotations

import argparse

from imagegui.cli.connect_args import add_connect_argument
from imagegui.cli.ops_cmds import (
    execute,
    partial_status,
    plan_options,
    print_error,
    usage_error,
)
from imagegui.cli.remote_args import refuse_remote
from imagegui.core.units import printable


def _move(args: argparse.Namespace) -> int:
    from imagegui.core.ops.move import plan_move

    if args.undo:
        from imagegui.core.ops.move_undo import plan_undo_move

        if len(args.paths) > 1:
            raise usage_error("--undo takes at most one PATH (a file or folder the move moved)")
        path = args.paths[0] if args.paths else None
        return execute(plan_undo_move(path, **plan_options(args, skip=("roots", "force"))), args)
    if len(args.paths) < 2:
        raise usage_error("move needs SRC... DEST (or --undo)")
    *sources, dest = args.paths
    plan = plan_move(sources, dest, **plan_options(args))
    return execute(plan, args)


def _relink(args: argparse.Namespace) -> int:
    from imagegui.core.ops.relink import RelinkResult, plan_relink

    plan = plan_relink(args.paths, absolute=args.absolute, **plan_options(args))
    if not args.dry_run and not plan.refused:
        for f in plan.kept:
            print_error(f"kept: {f.cli_text}")

    def report(result: RelinkResult) -> int:
        for path in result.rewritten:
            print(printable(f"rewrote {path}"))
        for f in result.kept:
            if f not in plan.kept:  # those were said above
                print_error(f"kept: {f.cli_text}")
        for e in result.errors:
            print_error(e)
        print(printable(result.message + (f" ({result.cli_hint})" if result.cli_hint else "")))
        return partial_status(result.errors, result.kept)

    return execute(plan, args, report, kept=plan.kept)


def _add_dry_run(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the exact commands, what would change and the checks; change nothing",
    )
    p.add_argument("--json", action="store_true", help="with --dry-run: the plan as JSON")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "move",
        help="move or rename images (or folders) and rewrite the pointers that depend on them",
        description="Moves each SRC (an image or a folder) into the folder DEST, or renames the "
        "one SRC to DEST. Every image that backs onto a moved file (searched for in the "
        "sources' folders, their parents and each --root) gets its backing pointer rewritten "
        "(qemu-img rebase -u: the guest sees the same bytes), relative kept relative and "
        "absolute kept absolute, with its recorded format; so does a moved image's own "
        "relative pointer when the move changes what it leads to. Relative links inside a "
        "moved folder are left as they are. On another file system each image (or folder) "
        "is copied beside DEST under a temporary name, compared byte for byte, renamed, and "
        "the source "
        "removed once every pointer leads to the copy. Refused for an image a running VM "
        "holds or a libvirt VM uses (--force for a shut-off one), when DEST exists, and when "
        "a dependent image cannot be rewritten; a failure or Ctrl-C undoes what was done. "
        "The move is journalled: imagegui move --undo [PATH] undoes it.",
    )
    p.add_argument("paths", nargs="*", metavar="SRC... DEST")
    p.add_argument(
        "--undo",
        action="store_true",
        help="undo the last move (or the last one of PATH): rename the files back and put "
        "back every pointer it rewrote, if nothing changed since",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="move even an image a shut-off libvirt VM uses, and rewrite read-only overlays",
    )
    p.add_argument(
        "--root",
        action="append",
        default=[],
        metavar="DIR",
        help="also look here for images that back onto the moved ones",
    )
    add_connect_argument(p)
    _add_dry_run(p)
    p.set_defaults(func=refuse_remote(_move))

    p = sub.add_parser(
        "relink",
        help="store backing pointers relative (portable tree) or absolute",
        description="Rewrites the backing pointer of every image under each PATH (a folder, "
        "scanned whole, or an image) to the relative or absolute name of the same file "
        "(qemu-img rebase -u: the guest sees the same bytes; the recorded format kept). An "
        "image in use, used by a libvirt VM or read-only is kept as it is and named; the "
        "others are rewritten (exit status 2 then). Each rewrite is journalled (imagegui "
        "rebase --undo IMAGE). `imagegui check DIR --portable` lists absolute ones.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH")
    form = p.add_mutually_exclusive_group(required=True)
    form.add_argument("--relative", action="store_true", help="relative to each image's folder")
    form.add_argument("--absolute", action="store_true", help="absolute paths")
    p.add_argument(
        "--force",
        action="store_true",
        help="rewrite even an image made read-only or one a shut-off libvirt VM uses",
    )
    add_connect_argument(p)
    _add_dry_run(p)
    p.set_defaults(func=refuse_remote(_relink))
