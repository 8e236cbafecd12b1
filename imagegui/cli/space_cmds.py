"""``imagegui space DIR``: where the directory's disk space goes and what can be had back.

Totals first (on disk, guest data, shadowed, reclaimable by category), then each chain's layers
with the share of its guest's disk each provides, the reclaimable files with their reasons, and
every image's figures. ``--json`` prints the same as one object described by
imagegui/schemas/space.schema.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import TYPE_CHECKING, TextIO

from imagegui.cli.connect_args import add_connect_argument, libvirt_json, read_domains
from imagegui.cli.image_json import names_json
from imagegui.core.chains.space import (
    DEFAULT_OLDER_THAN_DAYS,
    ChainSpace,
    ImageSpace,
    SpaceReport,
    space_job,
)
from imagegui.core.units import counted, human_size, printable

if TYPE_CHECKING:
    from imagegui.core.chains.graph import ChainGraph

#: ``"schema"`` of ``space --json``: raised when a field changes meaning or goes away (new
#: fields may appear without it). imagegui/schemas/space.schema.json describes every field.
SPACE_SCHEMA = 1


def _days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"not a number of days: {text!r}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "space",
        help="where the disk space under DIR goes: per image and chain, and what is reclaimable",
    )
    p.add_argument("directory", metavar="DIR", help="the directory to account for")
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.add_argument(
        "--older-than",
        type=_days,
        default=DEFAULT_OLDER_THAN_DAYS,
        metavar="DAYS",
        help="offer an image nothing uses as an orphan only when last written more than DAYS "
        f"days ago (default {DEFAULT_OLDER_THAN_DAYS:g})",
    )
    add_connect_argument(p)
    p.set_defaults(func=cmd_space)


def cmd_space(args: argparse.Namespace) -> int:
    from imagegui.cli import UsageError
    from imagegui.cli.ops_cmds import ProgressBar, cancelled_status, signals_cancel
    from imagegui.cli.remote_args import remote_uri
    from imagegui.core.chains.graph import ChainGraph
    from imagegui.core.jobs import CancelledError, CancelToken, Throttle, no_progress
    from imagegui.core.qemu.qemuimg import read_layer_map
    from imagegui.core.read.scan import scan_directory

    if remote_uri(args) is not None:
        raise UsageError(
            "space reads each image's allocation tables on this machine; another host's images "
            "cannot be accounted for from here yet"
        )
    domains, hosts = read_domains(args)
    try:
        graph = ChainGraph(scan_directory(args.directory), domains=domains)
    except OSError as exc:
        raise UsageError(f"cannot scan {printable(args.directory)}: {exc.strerror}") from None
    # Maps qemu-img has to read cost a process each: as many at once as there are CPUs.
    jobs = len(os.sched_getaffinity(0))
    job = space_job(graph, read_layer_map, older_than_days=args.older_than, jobs=jobs)
    token = CancelToken()
    received: list[int] = []
    bar = ProgressBar(job.title, sys.stderr) if sys.stderr.isatty() else None
    try:
        with signals_cancel(token, received):
            rep = job.run(Throttle(bar, 0.1) if bar else no_progress, token)
    except CancelledError as exc:
        if bar is not None:
            bar.finish()
        print(f"imagegui: {printable(str(exc))}", file=sys.stderr)
        return cancelled_status(received)
    if bar is not None:
        bar.finish()
    if args.json:
        doc = space_json(rep, graph, libvirt_json(hosts))
        sys.stdout.write(json.dumps(doc, indent=1) + "\n")
    else:
        print_space(rep, sys.stdout)
    return 0


# -- JSON ----------------------------------------------------------------------------------------


def _image_json(img: ImageSpace, fmt: str) -> dict[str, object]:
    return {
        "path": img.path,
        "format": fmt,
        "virtual_size": img.virtual_size,
        "on_disk": img.on_disk,
        "guest_data": img.guest_data,
        "shadowed": img.shadowed,
        "map_source": img.map_source,
        "note": img.note,
    }


def _chain_json(chain: ChainSpace) -> dict[str, object]:
    return {
        "top": chain.top,
        "virtual_size": chain.virtual_size,
        "on_disk": chain.on_disk,
        "guest_data": chain.guest_data,
        "ok": chain.ok,
        "layers": [
            {
                "path": layer.path,
                "share": layer.share,
                "fraction": None if layer.fraction is None else round(layer.fraction, 6),
                "placeholder": layer.placeholder,
            }
            for layer in chain.layers
        ],
    }


def space_json(
    rep: SpaceReport, graph: ChainGraph, libvirt: list[dict[str, object]]
) -> dict[str, object]:
    """The ``space --json`` document (``graph``: the ChainGraph the report was made from)."""

    def fmt(path: str) -> str:
        info = graph.image(path)
        return info.format if info is not None else ""

    images = [_image_json(i, fmt(i.path)) for i in rep.images.values() if not i.external]
    external = [_image_json(i, fmt(i.path)) for i in rep.images.values() if i.external]
    doc: dict[str, object] = {
        "schema": SPACE_SCHEMA,
        "root": rep.root,
        "older_than_days": rep.older_than_days,
        "totals": {
            "images": len(images),
            "on_disk": rep.on_disk,
            "guest_data": rep.guest_data,
            "shadowed": rep.shadowed,
            "reclaimable": rep.reclaimable_bytes,
            "reclaimable_by_category": {str(c): n for c, n in rep.by_category().items()},
        },
        "images": images,
        "external_images": external,
        "chains": [_chain_json(c) for c in rep.chains],
        "reclaimable": [r.to_json() for r in rep.reclaimable],
        "notes": [{"path": p, "message": m} for p, m in rep.notes],
        "libvirt": libvirt,
        "libvirt_checked": rep.libvirt_checked,
        "seconds": round(rep.seconds, 4),
    }
    return names_json(doc)  # type: ignore[return-value]


# -- text ----------------------------------------------------------------------------------------


def _size(n: int | None) -> str:
    return "?" if n is None else human_size(n)


def print_space(rep: SpaceReport, out: TextIO) -> None:
    """Totals, reclaimable by category, each chain's shares, the reclaimable files, every
    image's figures, then the notes."""

    def rel(path: str) -> str:
        if path.startswith(rep.root + "/"):
            path = path[len(rep.root) + 1 :]
        return printable(path)

    n = sum(1 for _ in rep.inside())
    out.write(
        f"{printable(rep.root)}: {counted(n, 'image')}, {human_size(rep.on_disk)} on disk, "
        f"{human_size(rep.guest_data)} of guest data, {human_size(rep.shadowed)} shadowed\n"
    )
    files = len(rep.reclaimable)
    out.write(
        f"Reclaimable: {human_size(rep.reclaimable_bytes)} in {counted(files, 'file')}"
        f" (orphans: untouched for more than {rep.older_than_days:g} days)\n"
    )
    counts: dict[str, int] = {}
    for r in rep.reclaimable:
        counts[str(r.category)] = counts.get(str(r.category), 0) + 1
    for category, total in rep.by_category().items():
        k = counts.get(str(category), 0)
        out.write(f"  {category!s:<18} {human_size(total):>10}  {counted(k, 'file')}\n")

    if rep.chains:
        out.write("\nChains (share of each guest's data read from each layer, top first):\n")
    for chain in rep.chains:
        broken = "" if chain.ok else "  [qemu cannot open it]"
        out.write(
            f"  {rel(chain.top)}  disk {human_size(chain.virtual_size)}, data "
            f"{_size(chain.guest_data)}, {human_size(chain.on_disk)} on disk{broken}\n"
        )
        for layer in chain.layers:
            if layer.placeholder:
                out.write(f"    {'':>5}  {'':>10}  {rel(layer.path)} (missing)\n")
                continue
            pct = "?" if layer.fraction is None else f"{layer.fraction * 100:.0f} %"
            out.write(f"    {pct:>5}  {_size(layer.share):>10}  {rel(layer.path)}\n")

    if rep.reclaimable:
        out.write("\nReclaimable files (imagegui delete moves each to the Trash):\n")
    for r in rep.reclaimable:
        size = human_size(r.bytes)
        out.write(f"  {r.category!s:<18} {size:>10}  {rel(r.path)}: {printable(r.reason)}\n")

    out.write(f"\n  {'ON DISK':>10}  {'GUEST DATA':>10}  {'SHADOWED':>10}  IMAGE\n")
    for img in rep.images.values():
        where = "  [outside root]" if img.external else ""
        out.write(
            f"  {human_size(img.on_disk):>10}  {_size(img.guest_data):>10}  "
            f"{_size(img.shadowed):>10}  {rel(img.path)}{where}\n"
        )
    if rep.notes:
        out.write("\nNotes:\n")
        for path, message in rep.notes:
            out.write(f"  {rel(path)}: {printable(message)}\n")
