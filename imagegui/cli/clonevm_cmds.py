"""clone-vm on the command line: a linked-clone VM (a qcow2 overlay and a libvirt domain).

``imagegui clone-vm BASE NAME [--from-domain DOMAIN] [--connect URI] [--dry-run]``; the plan
(the overlay's qemu-img command and the whole domain XML) is what ``--dry-run`` prints, and
``clone-vm --undo NAME`` undefines the VM and removes its overlay while it has never run. Exit
status as for every writing command: 0 done, 1 failed (libvirt or qemu-img said no), 2 refused
by a guard or a bad argument, 128 + the signal when cancelled by one.
"""

from __future__ import annotations

import argparse

from imagegui.cli.connect_args import add_connect_argument
from imagegui.cli.ops_cmds import (
    EXIT_FAILED,
    add_common,
    add_read_root,
    execute,
    plan_options,
    print_error,
    usage_error,
)


def _uri(args: argparse.Namespace) -> str | None:
    """The one connection named (a VM is defined on one host), or None for the default."""
    uris = list(dict.fromkeys(args.connect or []))
    if len(uris) > 1:
        raise usage_error("clone-vm defines the VM on one connection: give --connect once")
    return uris[0] if uris else None


def _clone_vm(args: argparse.Namespace) -> int:
    from imagegui.core.ops.clonevm import (
        DEFAULT_URI,
        CloneVmError,
        plan_clone_vm,
    )
    from imagegui.core.ops.clonevm_undo import plan_undo_clone_vm

    uri = _uri(args)
    if args.undo:
        if args.name is not None or args.from_domain or args.overlay:
            raise usage_error("--undo takes only NAME (and --connect)")
        plan = plan_undo_clone_vm(args.base, uri)
    else:
        if args.name is None:
            raise usage_error("clone-vm needs BASE and NAME (the new VM's name)")
        plan = plan_clone_vm(
            args.base,
            args.name,
            args.overlay,
            template=args.from_domain,
            uri=uri or DEFAULT_URI,
            absolute=args.absolute,
            **plan_options(args, skip=("domains",)),
        )
    try:
        return execute(plan, args)
    except CloneVmError as exc:
        print_error(str(exc))
        return EXIT_FAILED


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "clone-vm",
        help="create a linked-clone VM: a qcow2 overlay on BASE and a libvirt domain booting it",
        description="Creates NAME.qcow2 beside BASE (or --overlay PATH), a qcow2 overlay recording "
        "BASE's format, and defines the libvirt domain NAME that boots it, shut off (virt-manager "
        "lists it). With --from-domain the definition is a copy of that VM's, which must use BASE: "
        "new name, UUID and MAC addresses, the disk that used BASE re-pointed, other disks (a "
        "cloud-init ISO, data disks) left alone. Without it the definition comes from "
        "virt-install --import --print-xml (package virtinst). If libvirt refuses the definition, "
        "the overlay is removed again. Journalled: --undo NAME undefines the VM and removes its "
        "overlay while the VM has never run. On another host (--connect qemu+ssh://...) the paths "
        "are that host's and the overlay is made through libvirt's storage API (its folder must "
        "be a storage pool's).",
    )
    p.add_argument("base", metavar="BASE", help="the base image (NAME with --undo)")
    p.add_argument("name", metavar="NAME", nargs="?", help="the new VM's name")
    p.add_argument(
        "--from-domain",
        metavar="DOMAIN",
        help="copy this VM's definition (it must use BASE, directly or below its disk)",
    )
    p.add_argument(
        "--overlay", metavar="PATH", help="the new overlay (default: NAME.qcow2 beside BASE)"
    )
    p.add_argument("--absolute", action="store_true", help="store the base's absolute path")
    p.add_argument(
        "--undo",
        action="store_true",
        help="undefine the VM NAME made by clone-vm and remove its overlay (only if it never ran)",
    )
    p.add_argument("--json", action="store_true", help="with --dry-run: the plan as JSON")
    add_connect_argument(p)
    p._actions[-1].help = (  # the shared option, in this command's words
        "the libvirt connection the VM is defined on (default: qemu:///system)"
    )
    add_read_root(p)
    add_common(p)
    p.set_defaults(func=_clone_vm)
