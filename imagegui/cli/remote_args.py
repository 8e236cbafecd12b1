"""``--connect`` naming another host (``qemu+ssh://user@host/system``): what each command does
with it.

``scan`` and ``check`` show that host's storage volumes as the graph (DIR, optional, is then a
directory *on that host* to restrict to); ``overlay`` creates the overlay there through
libvirt's storage API; every other writing command refuses (exit status 2), since imagegui
cannot yet run its guarded operations on another host's files.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from imagegui.core.units import printable

#: What ``scan``/``check`` say about DIR in ``--help``.
REMOTE_DIR_HELP = (
    "the directory to scan; with --connect naming another host (qemu+ssh://...), a directory "
    "on that host to restrict its storage volumes to (optional: all of them)"
)


def _usage_error(message: str) -> Exception:
    from imagegui.cli import UsageError  # imported late: imagegui.cli imports the commands

    return UsageError(message)


def remote_uri(args: argparse.Namespace) -> str | None:
    """The one URI of ``--connect`` that names another host, or None when none does. More
    than one host, or another host together with this one's, is a usage error: the graph shows
    one host's files."""
    from imagegui.core.virt.connect import is_remote

    uris = list(dict.fromkeys(getattr(args, "connect", None) or ()))
    remote = [u for u in uris if is_remote(u)]
    if not remote:
        return None
    if len(uris) > 1:
        raise _usage_error(
            "--connect naming another host shows that host's images: name it alone "
            f"(got {', '.join(uris)})"
        )
    return remote[0]


def load_remote(args: argparse.Namespace):  # -> ChainGraph | None (imported late)
    """The chain graph of the host ``--connect`` names, or None when it names none (DIR is then
    this machine's and required). Prints the scan's notes like a local scan's."""
    uri = remote_uri(args)
    if uri is None:
        if getattr(args, "directory", None) is None:
            raise _usage_error("DIR is needed (unless --connect names another host)")
        return None
    from imagegui.core.chains.graph import ChainGraph
    from imagegui.core.read.scan import prefetch_networkx
    from imagegui.core.virt.connect import LibvirtUnreachable
    from imagegui.core.virt.inventory import DomainIndex, read_host
    from imagegui.core.virt.remote import open_for_reading, scan_host

    # The graph's networkx imports while libvirt waits on the host (it lets go of the GIL):
    # over ssh, opening the connection alone took 1.2-1.7 s, the import 0.4 s.
    prefetch_networkx()

    if getattr(args, "deep", False):
        raise _usage_error(
            "--deep runs qemu-img check on this machine's files; another host's images cannot "
            "be checked from here yet"
        )
    directory = args.directory
    if directory is not None and not directory.startswith("/"):
        raise _usage_error(f"DIR on another host must be an absolute path: {printable(directory)}")
    try:
        conn, _readonly = open_for_reading(uri)
        try:
            inventory = read_host(conn, uri)  # its domains too: which VM uses what there
            scan = scan_host(conn, uri, directory, inventory)
        finally:
            conn.close()
    except LibvirtUnreachable as exc:
        raise _usage_error(str(exc)) from None
    return ChainGraph(
        scan,
        domains=DomainIndex.of_remote_host(inventory),
        portable=getattr(args, "portable", False),  # check --portable, as on local files
    )


def overlay_remote(args: argparse.Namespace, uri: str) -> int:
    """``overlay BASE NEW --connect qemu+ssh://...``: NEW created on that host as a qcow2
    overlay of the volume BASE through libvirt's storage API (the backing format recorded).
    ``--dry-run`` shows the volume XML and changes nothing."""
    from imagegui.core.virt.connect import LibvirtUnreachable, open_connection
    from imagegui.core.virt.remote import (
        RemoteWriteError,
        create_overlay_volume,
        plan_overlay_volume,
    )

    for flag in ("size", "absolute", "root", "allow_file"):
        if getattr(args, flag, None):
            option = "--" + flag.replace("_", "-")
            raise _usage_error(f"{option} is not supported with --connect naming another host")
    if not (args.base.startswith("/") and args.new.startswith("/")):
        raise _usage_error("BASE and NEW on another host must be absolute paths")
    try:
        conn = open_connection(uri, readonly=args.dry_run)
    except LibvirtUnreachable as exc:
        raise _usage_error(str(exc)) from None
    try:
        try:
            req = plan_overlay_volume(conn, args.base, args.new)
        except RemoteWriteError as exc:  # no such base volume, no pool there: refused
            raise _usage_error(str(exc)) from None
        if args.dry_run:
            print(f"Create an overlay on {printable(uri)} through libvirt's storage API:")
            print(
                f"  {printable(req.new_path)} in pool {printable(req.pool)}: qcow2 overlay of "
                f"{printable(req.base.path)} ({req.base.format or 'raw'}, recorded)"
            )
            print(f"  volume XML: {printable(req.xml)}")
            return 0
        vol = create_overlay_volume(conn, req.base.path, req.new_path)
    except RemoteWriteError as exc:  # libvirt tried and failed (exists already, no space)
        print(f"imagegui: {printable(str(exc))}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    print(
        f"created {printable(vol.path)} on {printable(uri)} (pool {printable(vol.pool)}): qcow2 "
        f"overlay of {printable(vol.backing_path or args.base)} ({vol.backing_format})"
    )
    return 0


def refuse_remote(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``func`` (a writing command), refused with exit status 2 when ``--connect`` names
    another host, before anything looks at the paths given: they are that host's."""

    def run(args: argparse.Namespace) -> int:
        if remote_uri(args) is not None:
            from imagegui.core.virt.remote import REMOTE_WRITE_REFUSED

            raise _usage_error(REMOTE_WRITE_REFUSED)
        return func(args)

    run.__name__ = getattr(func, "__name__", "run")
    run.__doc__ = func.__doc__
    return run
