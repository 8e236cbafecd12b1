"""``imagegui scan DIR`` (the chains as a tree) and ``imagegui check DIR`` (problems only)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import TYPE_CHECKING, TextIO

from imagegui.cli.connect_args import add_connect_argument, libvirt_json, read_domains
from imagegui.cli.image_json import ImageJSON, image_record, names_json
from imagegui.cli.remote_args import REMOTE_DIR_HELP, load_remote
from imagegui.core.chains.diagnose import Kind, Level
from imagegui.core.chains.export import FORMATS, write_graph
from imagegui.core.chains.graph import CHAIN_OK_JSON, EXTERNAL, IMAGE, ChainBreak, ChainGraph
from imagegui.core.gcpause import paused_gc
from imagegui.core.read.model import ImageInfo
from imagegui.core.read.scan import scan_directory
from imagegui.core.units import human_size, printable

if TYPE_CHECKING:
    from imagegui.core.virt.inventory import Hosts
    from imagegui.core.virt.model import DomainUse

#: ``"schema"`` of ``scan --json``: raised when a field changes meaning or goes away (new fields
#: may appear without it). imagegui/schemas/scan.schema.json describes every field.
SCAN_SCHEMA = 1

_MARK = {Level.ERROR: "✗", Level.WARNING: "!"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scan", help="show every image chain under DIR as a tree")
    p.add_argument("directory", metavar="DIR", nargs="?", help=REMOTE_DIR_HELP)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON object instead")
    out.add_argument(
        "--graph",
        choices=FORMATS,
        metavar="FORMAT",
        help="print the chain graph instead, as GraphML (yEd), GEXF (Gephi) or networkx "
        "node-link JSON: images and their missing or unreadable backing files as nodes, backing "
        "links as edges",
    )
    add_connect_argument(p)
    p.set_defaults(func=cmd_scan)
    p = sub.add_parser("check", help="list problems under DIR; exit 1 if any is an error")
    p.add_argument("directory", metavar="DIR", nargs="?", help=REMOTE_DIR_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.add_argument(
        "--deep",
        action="store_true",
        help="also run qemu-img check (read-only, shared) on every image and keep its findings",
    )
    p.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="with --deep: checks to run at once (default: the number of CPUs)",
    )
    p.add_argument(
        "--portable",
        action="store_true",
        help="also warn about what stops DIR moving or being shared at another path: backing "
        "files inside DIR named by an absolute path (absolute-backing; fix: imagegui relink "
        "DIR --relative)",
    )
    add_connect_argument(p)
    p.set_defaults(func=cmd_check)


def load(args: argparse.Namespace) -> tuple[ChainGraph, Hosts]:
    """The graph of ``args.directory`` with the domains of ``args.connect`` (notes on stderr:
    connections that failed, kept check results that could not be read)."""
    from imagegui.cli import UsageError

    remote = load_remote(args)  # --connect naming another host: that host's volumes
    if remote is not None:
        from imagegui.core.virt.inventory import Hosts as _Hosts

        uri = remote.scan.remote_uri or ""
        inventories = remote.domains.inventories if remote.domains is not None else []
        return remote, _Hosts(list(inventories), asked=[uri])
    directory = args.directory
    domains, hosts = read_domains(args)
    progress = _TerminalCount(sys.stderr) if sys.stderr.isatty() else None
    try:
        graph = ChainGraph(
            scan_directory(directory, progress=progress),
            domains=domains,
            portable=getattr(args, "portable", False),
        )
    except OSError as exc:
        raise UsageError(f"cannot scan {printable(directory)}: {exc.strerror}") from None
    finally:
        if progress is not None:
            progress.clear()
    if graph.checks_note:
        print(f"imagegui: note: {printable(graph.checks_note)}", file=sys.stderr)
    return graph, hosts


class TerminalLine:
    """One line of progress on a terminal's stderr, rewritten in place and cleared at the end."""

    def __init__(self, out: TextIO):
        self.out = out
        self.shown = False

    def show(self, text: str) -> None:
        self.out.write(f"\r{text}")
        self.out.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.out.write("\r\033[K")
            self.out.flush()


class _TerminalCount(TerminalLine):
    """``scanning... 12,345 files`` while a big directory is read."""

    def __call__(self, files_seen: int) -> None:
        if files_seen % 4096 == 0:
            self.show(f"scanning... {files_seen:,} files")


def cmd_scan(args: argparse.Namespace) -> int:
    # One GC pause over the whole command: the scan's, the graph's and the output's pauses nest
    # in it, so no collection walks the records between them (core/gcpause.py says why).
    # (The graph is released before the pause ends: otherwise the first collection after it
    # walks every record just before the process exits.)
    with paused_gc():
        return _scan(args)


def _scan(args: argparse.Namespace) -> int:
    graph, hosts = load(args)
    if args.graph:
        sys.stdout.flush()
        write_graph(graph, args.graph, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    elif args.json:
        write_scan_json(graph, sys.stdout, hosts=hosts)
    else:
        print_tree(graph, sys.stdout)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from imagegui.cli import UsageError

    if args.jobs is not None and (not args.deep or args.jobs < 1):
        raise UsageError("--jobs N needs --deep and N of at least 1")
    # As in cmd_scan, one pause; not over a deep check, which runs for minutes on threads.
    with contextlib.nullcontext() if args.deep else paused_gc():
        return _check(args)


def _check(args: argparse.Namespace) -> int:
    graph, hosts = load(args)
    deep = None
    if args.deep:
        from imagegui.cli import deep_check
        from imagegui.core.ops.deepcheck import default_jobs

        jobs = args.jobs or default_jobs()
        graph, deep = deep_check.run_deep(graph, jobs)
    below = _unusable_above_breaks(graph)
    if args.json:
        out: dict[str, object] = {
            "root": graph.root,
            "problems": [p.to_json() for p in graph.problems],
            "loops": graph.loops,  # named once here; members' messages say "loop #N"
            "unusable": [{"path": path, **broken.to_json()} for path, broken in below],
            "notes": _notes_json(graph),  # what was skipped and why: never in silence
            "libvirt": libvirt_json(hosts),
        }
        if deep is not None:
            out["deep"] = deep_check.deep_json(deep, jobs)
        sys.stdout.write(json.dumps(names_json(out), indent=1) + "\n")
    else:
        for p in graph.problems:
            used = "" if p.kind == Kind.DOMAIN_DISK_MISSING else _used_by(graph, p.path)
            line = f"{p.level:<7} {p.kind:<24} {_rel(graph, p.path)}: {printable(p.cli_text)}"
            print(f"{line}  {used}" if used else line)
        for number, loop in enumerate(graph.loops, 1):
            names = " -> ".join(_rel(graph, n) for n in [*loop, loop[0]])
            print(f"loop #{number} ({len(loop):,} images): {names}")
        for path, broken in below:
            used = _used_by(graph, path)
            print(
                f"{'unusable':<7} {'chain-broken-below':<24} {_rel(graph, path)}: qemu cannot "
                f"open it: {broken.kind} at {_rel(graph, broken.at)}" + (f"  {used}" * bool(used))
            )
        if deep is not None:
            print("\n".join(deep_check.deep_text(deep, lambda p: _rel(graph, p))))
        for e in graph.scan.errors:
            if not e.looked_like_image and not e.leftover:  # a leftover is a warning above
                print(f"{'note':<7} {'':<24} {_rel(graph, e.path)}: {printable(e.message)}")
        for path, message in graph.domain_notes:
            print(f"{'note':<7} {'':<24} {_rel(graph, path)}: {printable(message)}")
        print(_summary(graph))
    return 1 if any(p.level == Level.ERROR for p in graph.problems) else 0


def _notes_json(graph: ChainGraph) -> list[dict[str, str]]:
    """What was skipped and why, then the VMs' disks that do not exist outside the root."""
    return [
        {"path": e.path, "message": e.message} for e in graph.scan.errors if not e.looked_like_image
    ] + [{"path": path, "message": message} for path, message in graph.domain_notes]


def _used_by(graph: ChainGraph, node: str) -> str:
    """``[used by web01 (shut off), web02 (running)]``, or "" when no domain uses ``node``."""
    uses = graph.domains_of(node)
    if not uses:
        return ""
    names = dict.fromkeys(printable(u.describe()) for u in uses)
    return f"[used by {', '.join(names)}]"


def _unusable_above_breaks(graph: ChainGraph) -> list[tuple[str, ChainBreak]]:
    """Images with no error of their own whose chain is broken further down (each once)."""
    out = []
    for path in sorted(graph.unusable()):
        broken = graph.chain_break(path)
        own = graph.problems_for(path)
        if broken is not None and not any(p.level == Level.ERROR for p in own):
            out.append((path, broken))
    return out


def write_scan_json(
    graph: ChainGraph, out: TextIO, batch: int = 1024, hosts: Hosts | None = None
) -> None:
    """The ``scan --json`` object, written in slices: one string of 100,000 images would be
    ~100 MB held twice in memory."""
    encode = json.JSONEncoder(check_circular=False).encode
    doc = scan_json(graph, with_images=False, hosts=hosts)
    head = encode({k: doc.pop(k) for k in ("schema", "root", "root_bytes") if k in doc})
    out.write(head[:-1] + ', "images": [')
    images = list(graph.scan.images.values())
    image_json = ImageJSON().encode
    chain_ok = ', "chain": ' + encode(CHAIN_OK_JSON)
    unused = ', "domains": []}'
    breaks = graph.chain_break
    uses = graph.domains_of

    def record(info: ImageInfo) -> str:
        path = info.path
        broken = breaks(path)
        tail = chain_ok if broken is None else ', "chain": ' + encode(names_json(broken.to_json()))
        used = uses(path)
        end = unused if not used else ', "domains": ' + encode(_domains_json(used)) + "}"
        return image_json(info)[:-1] + tail + end

    for start in range(0, len(images), batch):
        chunk = ", ".join(map(record, images[start : start + batch]))
        out.write(("" if start == 0 else ", ") + chunk)
    out.write("], " + encode(doc)[1:] + "\n")


def _domains_json(uses: list[DomainUse]) -> object:
    return names_json([u.to_json() for u in uses])


def scan_json(
    graph: ChainGraph, with_images: bool = True, hosts: Hosts | None = None
) -> dict[str, object]:
    """The whole ``scan --json`` document as one dict (``write_scan_json`` streams it);
    ``hosts``: the libvirt connections asked (``libvirt``: none when None)."""
    scan = graph.scan

    def record(info: ImageInfo) -> dict[str, object]:
        broken = graph.chain_break(info.path)
        chain = CHAIN_OK_JSON if broken is None else names_json(broken.to_json())
        domains = _domains_json(graph.domains_of(info.path))
        return {**image_record(info), "chain": chain, "domains": domains}

    head: dict[str, object] = {"schema": SCAN_SCHEMA, **names_json({"root": graph.root})}  # type: ignore[dict-item]
    if with_images:
        head["images"] = [record(info) for info in scan.images.values()]
    rest = {
        "external_images": [record(info) for info in scan.external.values()],
        "problems": [p.to_json() for p in graph.problems],
        "loops": graph.loops,
        "aliases": scan.aliases,
        "nova_bases": [b.to_json() for b in graph.nova_bases],
        "notes": _notes_json(graph),
        "libvirt": libvirt_json(hosts) if hosts is not None else [],
        "files_seen": scan.files_seen,
        "scan_seconds": round(scan.seconds, 4),
    }
    return head | names_json(rest)  # type: ignore[operator]


def _summary(graph: ChainGraph) -> str:
    errors = sum(1 for p in graph.problems if p.level == Level.ERROR)
    warnings = len(graph.problems) - errors
    n = len(graph.scan.images)
    unusable = sum(1 for path in graph.unusable() if path in graph.scan.images)
    where = printable(graph.root)
    if graph.scan.remote_uri is not None:  # another host's volumes: say which host
        where = f"{printable(graph.scan.remote_uri)} {where}"
    return (
        f"{where}: {n} image{'s' * (n != 1)}, "
        f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}, "
        f"{unusable} unusable"
    )


def _rel(graph: ChainGraph, path: str) -> str:
    if path.startswith(graph.root + "/"):
        path = path[len(graph.root) + 1 :]
    return printable(path)


def _label(graph: ChainGraph, node: str) -> str:
    kind = graph.kind(node)
    info = graph.image(node)
    used = _used_by(graph, node)
    if info is None:
        marks = [f"({kind})", *([used] if used else [])]
        marks += [f"{_MARK[p.level]} {p.kind}" for p in graph.problems_for(node)]
        return "  ".join([_rel(graph, node), *marks])
    marks = [used] if used else []
    if info.in_use:
        marks.append("[in use" + (", writing]" if info.in_use_write else "]"))
    if kind == EXTERNAL:
        marks.append("[outside root]")
    nova = graph.nova_base(node)
    if nova is not None and nova.unused:
        days = nova.age_seconds / 86400
        marks.append(f"[unused cache base, {days:.1f} days old]")
    own = graph.problems_for(node)
    for p in own:
        marks.append(f"{_MARK[p.level]} {p.kind}")
    broken = graph.chain_break(node)
    if broken is not None and not any(p.level == Level.ERROR for p in own):
        marks.append(f"✗ unusable: {broken.kind} at {_rel(graph, broken.at)}")
    text = (
        f"{_rel(graph, node)}  {info.format}  {human_size(info.virtual_size)}  "
        f"(disk {human_size(info.actual_size)})"
    )
    return "  ".join([text, *marks])


#: Deeper than this, the tree stops indenting (and says the depth): a 3,000-deep chain would
#: otherwise print 13 MB of indentation.
MAX_INDENT = 32


def print_tree(graph: ChainGraph, out: TextIO) -> None:
    """Bases first, their overlays indented beneath them. Iterative: chains can be thousands of
    images deep, far past Python's recursion limit."""
    out.write(_summary(graph) + "\n")
    shown: set[str] = set()

    def walk(start: str, start_prefix: str) -> None:
        # (node, prefix, last child?, top?, depth)
        todo = [(start, start_prefix, True, True, 0)]
        while todo:
            node, prefix, last, top, depth = todo.pop()
            shown.add(node)
            branch = "" if top else ("└─ " if last else "├─ ")
            deep = f"  [depth {depth}]" if depth > MAX_INDENT else ""
            out.write(f"{prefix}{branch}{_label(graph, node)}{deep}\n")
            kids = [k for k in graph.children(node) if k not in shown]
            inner = prefix
            if not top and depth < MAX_INDENT:
                inner += "   " if last else "│  "
            n = len(kids)
            todo.extend(
                (kid, inner, i == n - 1, False, depth + 1)
                for i, kid in reversed(list(enumerate(kids)))
            )

    for root in graph.roots():
        if graph.kind(root) in (IMAGE, EXTERNAL) or graph.children(root) or graph.domains_of(root):
            out.write("\n")
            walk(root, "")
    if graph.loops:
        out.write("\nLoops (no base; qemu cannot open these):\n")
        for number, loop in enumerate(graph.loops, 1):
            out.write(f"  loop #{number} ({len(loop):,} images):\n")
            for node in loop:
                if node not in shown:
                    walk(node, "  ")
    notes = [
        (e.path, e.message) for e in graph.scan.errors if not e.looked_like_image and not e.leftover
    ] + graph.domain_notes
    if notes:
        out.write("\nNotes:\n")
        for path, message in notes:
            out.write(f"  {_rel(graph, path)}: {printable(message)}\n")
    outside = [p for p in graph.problems if p.path not in graph.nodes]
    leftovers = [p for p in outside if p.kind == Kind.LEFTOVER]
    unreadable = [p for p in outside if p.kind != Kind.LEFTOVER]
    if leftovers:
        out.write("\nLeftovers of interrupted operations (not images):\n")
        for p in leftovers:
            out.write(f"  ! {_rel(graph, p.path)}: {printable(p.cli_text)}\n")
    if unreadable:
        out.write("\nNot readable as images:\n")
        for p in unreadable:
            out.write(f"  ✗ {_rel(graph, p.path)}: {printable(p.cli_text)}\n")
