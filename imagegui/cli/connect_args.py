"""``--connect URI``: the one way every command names the libvirt connections it asks.

``scan``, ``check`` and the writing commands share it, so the option reads the same everywhere
and a connection that cannot be reached is one note on stderr (``imagegui: note: libvirt not
reachable at URI: reason``), never a failure: libvirt is optional, the images are the point.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from imagegui.core.units import printable

if TYPE_CHECKING:
    from imagegui.core.virt.inventory import DomainIndex, DomainSource, Hosts

CONNECT_HELP = (
    "libvirt connection to ask which VMs use the images (repeatable; default: qemu:///system, "
    "quietly)"
)


def add_connect_argument(parser: argparse.ArgumentParser) -> None:
    """Adds ``--connect URI`` (repeatable) to ``parser``; read back with :func:`domain_source`."""
    parser.add_argument(
        "--connect", action="append", metavar="URI", default=None, help=CONNECT_HELP
    )


def domain_source(args: argparse.Namespace) -> DomainSource:
    """The connections ``args`` names, or (none named) the defaults tried quietly."""
    from imagegui.core.virt.inventory import DomainSource

    uris = getattr(args, "connect", None)
    return DomainSource(tuple(dict.fromkeys(uris)) if uris else None)


def read_domains(args: argparse.Namespace) -> tuple[DomainIndex, Hosts]:
    """Reads the domains of the connections ``args`` names (libvirt imported only now), and
    prints each connection that failed as a note on stderr."""
    index, hosts = domain_source(args).read()
    print_notes(hosts)
    return index, hosts


def print_notes(hosts: Hosts) -> None:
    for note in hosts.notes:
        print(f"imagegui: note: {printable(note)}", file=sys.stderr)


def libvirt_json(hosts: Hosts) -> list[dict[str, object]]:
    """``scan --json``'s ``libvirt``: each connection tried, in the order asked, whether it
    answered, the host's name when it did and why not when it did not (the quiet defaults
    included: JSON is read by programs, which want to know)."""
    reached = {inv.uri: inv for inv in hosts.inventories}
    out: list[dict[str, object]] = []
    for uri in hosts.asked:
        inv = reached.get(uri)
        if inv is not None:
            out.append({"uri": uri, "reachable": True, "hostname": inv.hostname, "reason": None})
        elif uri in hosts.unreachable:
            out.append(
                {"uri": uri, "reachable": False, "hostname": None, "reason": hosts.unreachable[uri]}
            )
    return out
