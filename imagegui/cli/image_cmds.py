"""new / resize / snapshot / convert on the command line: the everyday image tasks.

``imagegui new PATH SIZE``, ``imagegui resize IMAGE SIZE``, ``imagegui snapshot IMAGE
list|create NAME|apply NAME|delete NAME`` and ``imagegui convert SRC DEST``, and the undo of each
journalled one (``new --undo PATH``, ``resize --undo IMAGE``, ``snapshot IMAGE --undo``,
``convert --undo DEST``, as ``move --undo``): each makes its plan
(``--dry-run`` prints it, ``--json`` with it as JSON) and runs it through ``ops_cmds.execute``, so
progress, Ctrl-C and the exit statuses are those of every writing command: 0 done, 1 qemu
failed, 2 refused by a guard or a bad argument, 128 + the signal when cancelled by one.
"""

from __future__ import annotations

import argparse
import json

from imagegui.cli.connect_args import add_connect_argument
from imagegui.cli.ops_cmds import (
    EXIT_OK,
    EXIT_REFUSED,
    add_common,
    add_read_root,
    execute,
    plan_options,
    print_error,
    usage_error,
)
from imagegui.cli.parser import Parser
from imagegui.cli.remote_args import refuse_remote
from imagegui.core.units import human_size, parse_size, printable


def _size(text: str, signed: bool = False) -> tuple[int, bool]:
    """``20G`` -> (bytes, False); with ``signed``, ``+5G``/``-5G`` -> (change, True)."""
    relative = signed and text[:1] in "+-"
    try:
        value = parse_size(text[1:] if relative else text)
    except ValueError as exc:
        raise usage_error(str(exc)) from None
    return (-value if text[:1] == "-" else value) if relative else value, relative


def _undo(args: argparse.Namespace, kind: str, path: str, extra: object) -> int:
    """``new --undo PATH``, ``convert --undo DEST``, ``resize --undo IMAGE``, ``snapshot IMAGE
    --undo``: the last such change imagegui made to that file, undone (``change_undo``)."""
    from imagegui.core.ops.change_undo import plan_undo_change

    if extra is not None:
        raise usage_error(f"--undo takes only {args.undo_takes}")
    options = plan_options(args, skip=("roots", "allow", "force"))
    return execute(plan_undo_change(kind, path, **options), args)


def _new(args: argparse.Namespace) -> int:
    from imagegui.core.ops.newimage import plan_new

    if args.undo:
        return _undo(args, "new", args.path, args.size)
    if args.size is None:
        raise usage_error("new needs PATH and SIZE (or --undo PATH)")
    size, _ = _size(args.size)
    options = plan_options(args, skip=("allow",))
    plan = plan_new(args.path, size, args.format, args.preallocation, **options)
    return execute(plan, args)


def _resize(args: argparse.Namespace) -> int:
    from imagegui.core.ops.resize import plan_resize

    if args.undo:
        if args.shrink or args.force:
            raise usage_error("--undo takes only IMAGE")
        return _undo(args, "resize", args.image, args.size)
    if args.size is None:
        raise usage_error("resize needs IMAGE and SIZE (or --undo IMAGE)")
    size, relative = _size(args.size, signed=True)
    plan = plan_resize(
        args.image,
        size,
        relative=relative,
        shrink=args.shrink,
        **plan_options(args),
    )
    return execute(plan, args)


def _snapshot(args: argparse.Namespace) -> int:
    if args.undo:
        if args.name is not None or args.force:
            raise usage_error("--undo takes only IMAGE")
        return _undo(args, "snapshot-create", args.image, args.action)
    if args.action is None:
        raise usage_error("snapshot needs IMAGE and list, create, apply or delete (or --undo)")
    if args.action == "list":
        if args.name is not None:
            raise usage_error("snapshot IMAGE list takes no NAME")
        return _snapshot_list(args)
    if args.name is None:
        raise usage_error(f"snapshot IMAGE {args.action} needs NAME")
    from imagegui.core.ops.snapshot import plan_snapshot

    plan = plan_snapshot(args.image, args.action, args.name, **plan_options(args))
    return execute(plan, args)


def _snapshot_list(args: argparse.Namespace) -> int:
    """Read natively from the snapshot table (no qemu needed, the image may be in use)."""
    from imagegui.core.read.backing import canonical
    from imagegui.core.read.formats.base import ParseError
    from imagegui.core.read.snapshots import read_snapshots

    path = canonical(args.image)
    try:
        snaps = read_snapshots(path)
    except (OSError, ParseError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print_error(f"{path}: {why}")
        return EXIT_REFUSED
    if args.json:
        print(json.dumps({"image": path, "snapshots": [s.to_json() for s in snaps]}, indent=2))
        return EXIT_OK
    if not snaps:
        print(printable(f"{path} has no internal snapshots"))
        return EXIT_OK
    rows = [("ID", "NAME", "VM STATE", "DATE", "VM CLOCK", "DISK SIZE")]
    rows += [
        (
            printable(s.id),
            printable(s.name),
            human_size(s.vm_state_size),
            s.date_text,
            s.vm_clock_text,
            human_size(s.disk_size),
        )
        for s in snaps
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return EXIT_OK


def _convert(args: argparse.Namespace) -> int:
    from imagegui.core.ops.convert import plan_convert

    if args.undo:
        if args.compress or args.keep_backing:
            raise usage_error("--undo takes only DEST")
        return _undo(args, "convert", args.src, args.dest)
    if args.dest is None:
        raise usage_error("convert needs SRC and DEST (or --undo DEST)")
    plan = plan_convert(
        args.src,
        args.dest,
        args.out_format,
        compress=args.compress,
        keep_backing=args.keep_backing,
        **plan_options(args),
    )
    return execute(plan, args)


def _add_undo(p: argparse.ArgumentParser, takes: str, what: str) -> None:
    """``--undo``, as ``move --undo`` and ``delete --undo``: the journalled change undone. The
    positionals after the first are optional then, so options may stand between them."""
    p.add_argument("--undo", action="store_true", help=f"undo: {what}")
    p.set_defaults(undo_takes=takes)
    if isinstance(p, Parser):
        p.intermixed = True


def _add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="with --dry-run: the plan as JSON")


def register(sub: argparse._SubParsersAction) -> None:
    from imagegui.core.ops.convert import OUT_FORMATS
    from imagegui.core.ops.newimage import FORMATS, PREALLOCATIONS

    p = sub.add_parser(
        "new",
        help="create a blank disk image (qcow2 or raw)",
        description="Creates PATH as a blank disk of SIZE (e.g. 20G, 512M, in bytes without a "
        "unit; a whole number of 512-byte sectors). It is written under a temporary name beside "
        "PATH and renamed when complete: a cancelled creation leaves nothing. PATH must not "
        "exist; the space a preallocated image takes is checked first (qemu-img measure). "
        "Journalled: new --undo PATH moves it to the Trash again.",
    )
    p.add_argument("path", metavar="PATH")
    p.add_argument("size", metavar="SIZE", nargs="?")
    p.add_argument("-f", "--format", choices=FORMATS, default="qcow2", help="default: qcow2")
    p.add_argument(
        "--preallocation",
        choices=PREALLOCATIONS,
        default="off",
        help="off: sparse (default); metadata: qcow2 metadata laid out now; falloc: space "
        "reserved now; full: space written with zeros now",
    )
    _add_undo(
        p,
        "PATH",
        "move the image this command created at PATH to the Trash, unless an "
        "image backs onto it, it is in use or it is another file now",
    )
    _add_json(p)
    add_common(p)
    p.set_defaults(func=_new)

    p = sub.add_parser(
        "resize",
        help="grow (or, with --shrink, shrink) an image's virtual disk",
        description="SIZE is the new virtual size (20G) or a change of it (+5G; -5G, after "
        "--, with --shrink). Growing adds space the guest then has to claim (grow its "
        "partitions and file systems); shrinking removes the end of the disk and is done only "
        "with --shrink, after the guest's partitions and file systems were shrunk to fit. "
        "qcow2, raw and (growing only) qed can be resized. Refused for an image a running VM "
        "uses, a libvirt VM's disk (--force for a shut-off one) and a base with overlays: "
        "they keep their own virtual size, so growing the base gives their guests nothing "
        "(--force when the base is used alone) and shrinking it cuts off what they read. "
        "Directories searched for overlays: the image's and any --root. A grow is journalled: "
        "resize --undo IMAGE shrinks it back while nothing has been written past the old "
        "size; a shrink cannot be undone.",
    )
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("size", metavar="SIZE", nargs="?")
    p.add_argument("--shrink", action="store_true", help="allow a smaller size (data is cut off)")
    p.add_argument(
        "--force",
        action="store_true",
        help="resize even a base with overlays (growing only), a shut-off libvirt VM's disk or "
        "a read-only image",
    )
    _add_undo(
        p,
        "IMAGE",
        "shrink IMAGE back to its size before the last grow this command "
        "made, if nothing has been written past that size since",
    )
    add_read_root(p)
    add_connect_argument(p)
    _add_json(p)
    add_common(p)
    p.set_defaults(func=refuse_remote(_resize))

    p = sub.add_parser(
        "snapshot",
        help="list, create, apply (revert to) or delete a qcow2 image's internal snapshots",
        description="list reads the snapshot table directly (id, name, saved VM state, date, VM "
        "clock, disk size). create records the current state under NAME; apply reverts the "
        "image to snapshot NAME (its current state is lost unless snapshotted first); delete "
        "removes one. Changes are refused while a running VM uses the image, for a libvirt VM's "
        "disk (--force for a shut-off one) and, for apply, on a base with overlays (--force if "
        "they can be thrown away). create is journalled: snapshot IMAGE --undo deletes that "
        "snapshot again; apply and delete cannot be undone.",
    )
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("action", choices=("list", "create", "apply", "delete"), nargs="?")
    p.add_argument("name", metavar="NAME", nargs="?", help="the snapshot's name (or id)")
    p.add_argument(
        "--force",
        action="store_true",
        help="even on a base with overlays (apply), a shut-off libvirt VM's disk or a "
        "read-only image",
    )
    p.add_argument("--json", action="store_true", help="list, or the plan with --dry-run, as JSON")
    _add_undo(
        p,
        "IMAGE",
        "delete the last snapshot this command created of IMAGE, if it is "
        "still there as taken (same id and date)",
    )
    add_read_root(p)
    add_connect_argument(p)
    add_common(p)
    p.set_defaults(func=refuse_remote(_snapshot))

    p = sub.add_parser(
        "convert",
        help="convert an image to another format (import from or export to VMware, Hyper-V, ...)",
        description="Writes DEST in the format -O (qcow2 for QEMU/KVM, raw, vmdk for VMware, "
        "vhdx for Hyper-V, vpc for Virtual PC and Azure) through a temporary file beside DEST, "
        "renamed when complete; a cancel leaves no partial file. The space needed is checked "
        "first (qemu-img measure). An overlay is flattened (its whole chain copied) unless "
        "--keep-backing, which copies only its own data on top of the same backing file (qcow2 "
        "output; the backing format recorded). Internal snapshots are not copied. DEST must not "
        "exist. Journalled: convert --undo DEST moves DEST to the Trash (SRC is untouched).",
    )
    p.add_argument("src", metavar="SRC", help="the image to convert (DEST with --undo)")
    p.add_argument("dest", metavar="DEST", nargs="?")
    p.add_argument(
        "-O",
        dest="out_format",
        choices=tuple(OUT_FORMATS),
        default="qcow2",
        help="output format (default: qcow2)",
    )
    p.add_argument(
        "--compress", action="store_true", help="compress the data (qcow2, vmdk streamOptimized)"
    )
    p.add_argument(
        "--keep-backing",
        action="store_true",
        help="keep SRC's backing file instead of copying the chain in (qcow2 output)",
    )
    _add_undo(
        p,
        "DEST",
        "move the file this command converted to DEST to the Trash, unless an "
        "image backs onto it, it is in use or it is another file now (SRC is untouched)",
    )
    add_read_root(p)
    add_connect_argument(p)
    _add_json(p)
    add_common(p)
    p.set_defaults(func=refuse_remote(_convert))
