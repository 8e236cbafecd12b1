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
    EXIT_OK,
    EXIT_REFUSED,
    execute,
    partial_status,
    plan_options,
    print_error,
    usage_error,
)
from imagegui.cli.remote_args import refuse_remote
from imagegui.core.units import counted, human_size, printable

#: ``clean --older-than``'s default, ``core.chains.space.DEFAULT_OLDER_THAN_DAYS`` (not imported
#: here: the parser is built for every command, the space accounting is not cheap to import).
OLDER_THAN_DAYS = 30.0


def _delete(args: argparse.Namespace) -> int:
    from imagegui.core.ops.delete import RestoreResult, plan_delete, plan_restore

    if args.undo:
        if args.permanent or args.with_overlays:
            raise usage_error("--undo takes only the paths the files were deleted from")
        restore = plan_restore(args.images)

        def restored(result: RestoreResult) -> int:
            for path in result.restored:
                print(printable(f"restored {path}"))
            for f in result.kept:
                print_error(f"refused: {f.cli_text}")
            for e in result.errors:
                print_error(e)
            print(printable(result.message))
            return partial_status(result.errors, result.kept)

        return execute(restore, args, restored)

    plan = plan_delete(
        args.images,
        permanent=args.permanent,
        with_overlays=args.with_overlays,
        **plan_options(args, skip=("qemu_img",)),
    )
    return execute(plan, args, print_result)


def print_result(result) -> int:  # DeleteResult (imported late)
    """Each file moved or removed, what was kept and why, the total; the exit status: 2 when a
    file was kept, 1 when a move failed."""
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
    return partial_status(result.errors, result.kept)


def _clean(args: argparse.Namespace) -> int:
    """Lists the reclaimable files under DIR in the chosen categories with the total, then
    moves them to the Trash (each examined again right before it moves)."""
    import os

    from imagegui.cli.ops_cmds import qemu_img_setting
    from imagegui.core.ops.clean import CleanRequest, clean_job

    if not os.path.isdir(args.directory):
        raise usage_error(f"{args.directory}: not a directory")
    older = OLDER_THAN_DAYS if args.older_than is None else args.older_than
    if older < 0:
        raise usage_error("--older-than must be 0 or more (days)")
    request = CleanRequest(
        root=args.directory,
        nova=args.nova,
        older_than_days=older,
        domains=domain_source(args),
        qemu_img=qemu_img_setting(),
    )
    plan = clean_job(request).run()
    if not plan.reclaimable:
        print("nothing to clean up")
        return EXIT_OK
    listed = {i.path for i in plan.items}
    for r in plan.reclaimable:
        if r.path in listed:
            print(printable(f"{r.category}: {r.path} ({human_size(r.bytes)}): {r.reason}"))
    print(
        printable(
            f"total: {counted(len(plan.items), 'file')}, {human_size(plan.reclaimed)} "
            "(freed when the Trash is emptied)"
        )
    )
    if not args.dry_run:
        for f in plan.kept + [f for f in plan.clean_findings if f.refuses]:
            print_error(f"kept: {f.cli_text}")
        if not plan.items:
            return EXIT_REFUSED
    return execute(plan, args, print_result, kept=plan.kept)


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

    p = sub.add_parser(
        "clean",
        help="move what can be reclaimed under DIR to the Trash",
        description="Finds what the space accounting calls reclaimable under DIR: temporary "
        "files of interrupted operations (leftover), overlays that store nothing of their own "
        "(empty-overlay) and images nothing backs onto, not in use and used by no libvirt VM "
        "(orphan), both last written more than --older-than days ago; with --nova also "
        "OpenStack Nova cache bases Nova itself would remove (nova-unused-base: no instance "
        "disk here backs onto it and it is older than 24 hours, 1 hour for a resized copy). "
        "Lists them with the total, then moves them to the Trash with the guards of delete: a "
        "file a guard keeps is named and kept, the others still go. Other compute hosts "
        "sharing _base over NFS are not visible: their instances' bases look unused. Exit "
        "status 0 done (or nothing found), 2 something was kept, 1 a move failed.",
    )
    p.add_argument("directory", metavar="DIR")
    p.add_argument(
        "--nova",
        action="store_true",
        help="also OpenStack Nova's unused cache bases (by Nova's own age rules)",
    )
    p.add_argument(
        "--older-than",
        type=float,
        metavar="DAYS",
        help=f"orphans and empty overlays last written more than DAYS ago (default "
        f"{OLDER_THAN_DAYS:g})",
    )
    add_connect_argument(p)
    _add_dry_run(p)
    p.set_defaults(func=refuse_remote(_clean))
