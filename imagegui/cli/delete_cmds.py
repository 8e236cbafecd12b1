"""delete and clean on the command line: images to the Trash (or permanently), and back.

``imagegui delete IMAGE… [--permanent] [--with-overlays] [--dry-run] [--connect URI…]`` plans
the deletion (``core.ops.delete``) and runs it; ``delete --undo IMAGE…`` puts the files last
deleted from those paths back from the Trash, as ``rebase --undo`` and ``clone-vm --undo`` undo
theirs. ``imagegui clean DIR [--nova] [--older-than DAYS] [--dry-run]`` moves what the space
accounting finds reclaimable to the Trash with the same guards. Exit status: 0 done, 1 a move
failed, 2 refused (by a guard, for some file, or a bad argument), 128 + the signal when
cancelled by one.
"""

from __future__ import annotations

import argparse

from imagegui.cli.connect_args import add_connect_argument, domain_source
from imagegui.cli.ops_cmds import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REFUSED,
    execute,
    print_error,
    usage_error,
)
from imagegui.cli.remote_args import refuse_remote
from imagegui.core.units import printable


def _delete(args: argparse.Namespace) -> int:
    from imagegui.core.ops.delete import DeleteResult, RestoreResult, plan_delete, plan_restore

    if args.undo:
        if args.permanent or args.with_overlays:
            raise usage_error("--undo takes only the paths the files were deleted from")
        restore = plan_restore(args.images)
        outcome = {"status": EXIT_OK}

        def restored(result: RestoreResult) -> None:
            for path in result.restored:
                print(printable(f"restored {path}"))
            for f in result.kept:
                print_error(f"refused: {f.cli_text}")
            for e in result.errors:
                print_error(e)
            print(printable(result.message))
            if result.errors:
                outcome["status"] = EXIT_FAILED
            elif result.kept:
                outcome["status"] = EXIT_REFUSED

        status = execute(restore, args, restored)
        return outcome["status"] if status == EXIT_OK else status

    plan = plan_delete(
        args.images,
        permanent=args.permanent,
        with_overlays=args.with_overlays,
        domains=domain_source(args),
        roots=tuple(args.root),
    )
    outcome = {"status": EXIT_OK}

    def report(result: DeleteResult) -> None:
        print_result(result, outcome)

    status = execute(plan, args, report)
    return outcome["status"] if status == EXIT_OK else status


def print_result(result, outcome: dict[str, int]) -> None:  # DeleteResult (imported late)
    """Each file moved or removed, what was kept and why, the total; sets ``outcome["status"]``
    to 2 when a file was kept, 1 when a move failed."""
    for t in result.trashed:
        print(printable(f"moved {t.original} to {t.trashed}"))
    for path in result.removed:
        print(printable(f"deleted {path}"))
    for f in result.kept:
        print_error(f"kept: {f.cli_text}")
    for e in result.errors:
        print_error(f"failed: {e}")
    hint = f" ({result.cli_hint})" if result.cli_hint else ""
    print(printable(result.message + hint))
    if result.errors:
        outcome["status"] = EXIT_FAILED
    elif result.kept:
        outcome["status"] = EXIT_REFUSED


def _add_dry_run(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be deleted and the checks; change nothing",
    )
    p.add_argument("--json", action="store_true", help="with --dry-run: the plan as JSON")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "delete",
        help="move images to the Trash (or delete them permanently), guarded",
        description="Moves each IMAGE to the freedesktop Trash (the one in your home folder, or "
        "the volume's own .Trash-UID on another file system), where the desktop's Trash lists "
        "it; journalled, so --undo puts it back. It is renamed, never copied: a file whose "
        "volume has no usable Trash is refused (--permanent deletes it instead). Refused when "
        "another image backs onto it (named; --with-overlays deletes every image that depends "
        "on it too, listed first), a running VM holds it, a libvirt VM uses it (running or shut "
        "off), or it is not a regular file (a symbolic link, a directory). Folders searched for "
        "images that back onto it: the image's own and any --root. Exit status 0 done, 1 a move "
        "failed, 2 refused.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument(
        "--permanent",
        action="store_true",
        help="unlink instead of moving to the Trash (cannot be undone)",
    )
    p.add_argument(
        "--with-overlays",
        action="store_true",
        help="also delete every image that depends on IMAGE (backs onto it, directly or not)",
    )
    p.add_argument(
        "--undo",
        action="store_true",
        help="put back the files last deleted from these paths (restore from the Trash)",
    )
    p.add_argument(
        "--root",
        action="append",
        default=[],
        metavar="DIR",
        help="also look here for images that back onto IMAGE",
    )
    add_connect_argument(p)
    _add_dry_run(p)
    p.set_defaults(func=refuse_remote(_delete))
