"""The chain graph: every overlay with an edge to its backing file.

Nodes are keyed by absolute path. Besides scanned images there are placeholder nodes for backing
files that do not exist (``missing``), that exist but are not readable images (``unreadable``),
for protocol backings (``protocol``, keyed by the stored name) and for readable backing files
outside the scanned root (``external``). Every image has at most one backing, so chains and loops
are found by walking, never by enumerating cycles.

The graph is kept as two plain dicts (backing and children) and offered as a ``networkx.DiGraph``
through :attr:`ChainGraph.g`, built on first use: importing networkx alone costs about as much as
scanning 10,000 images, and the command line never needs it.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from imagegui.core.chains import checkstore
from imagegui.core.chains.checkstore import CheckStore
from imagegui.core.chains.diagnose import Kind, Level, Problem, fix_cli
from imagegui.core.gcpause import paused_gc
from imagegui.core.read import backing
from imagegui.core.read.fileid import file_id
from imagegui.core.read.model import ImageInfo
from imagegui.core.read.scan import ScanResult

if TYPE_CHECKING:
    import networkx

IMAGE, EXTERNAL, MISSING, UNREADABLE, PROTOCOL = (
    "image",
    "external",
    "missing",
    "unreadable",
    "protocol",
)
#: Formats whose header can record a backing format (qcow v1 never can, yet is still unsafe).
_FORMAT_RECORDING = frozenset({"qcow2", "qed", "qcow"})
_NOVA_RESIZED = re.compile(r"^[0-9a-f]{40}_\d+$")
#: Nova's defaults for removing unused cached bases (remove_unused_*_minimum_age_seconds).
NOVA_ORIGINAL_MIN_AGE = 86400
NOVA_RESIZED_MIN_AGE = 3600
#: Loops up to this many images are named in each member's message; longer ones are referenced.
LOOP_NAMES_INLINE = 4


@dataclass(frozen=True)
class ChainBreak:
    """Where the chain under an image stops being openable, and why.

    ``at`` is the nearest node at or below the image whose problem breaks the chain; for a missing
    or unreadable backing file it is that file's placeholder, because that is the file to find.
    """

    at: str
    kind: Kind

    def to_json(self) -> dict[str, object]:
        return {"ok": False, "broken_at": self.at, "kind": str(self.kind)}


#: ``chain`` of an image whose whole chain qemu can open.
CHAIN_OK_JSON: dict[str, object] = {"ok": True, "broken_at": None, "kind": None}

#: When an image has several chain-breaking problems, the one named is the first of these.
_BREAK_ORDER = (
    Kind.MISSING_BACKING,
    Kind.BACKING_LOOP,
    Kind.UNREADABLE,
    Kind.MISSING_EXTENT,
    Kind.CORRUPT,
    Kind.CHECK_ERRORS,
    Kind.BACKING_FORMAT_MISMATCH,
)


@dataclass(frozen=True)
class NovaBase:
    """An image in an OpenStack Nova ``instances/_base`` cache and who still uses it."""

    path: str
    used_by: int
    age_seconds: float
    resized: bool

    @property
    def unused(self) -> bool:
        return self.used_by == 0

    @property
    def nova_would_remove(self) -> bool:
        """Nova (remove_unused_base_images on, default ages) would delete it on its next pass."""
        limit = NOVA_RESIZED_MIN_AGE if self.resized else NOVA_ORIGINAL_MIN_AGE
        return self.unused and self.age_seconds > limit

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "used_by": self.used_by,
            "unused": self.unused,
            "age_seconds": round(self.age_seconds, 1),
            "resized": self.resized,
            "nova_would_remove": self.nova_would_remove,
        }


class ChainGraph:
    """Images and their backing relationships, with the problems found in them."""

    def __init__(
        self, scan: ScanResult, now: float | None = None, checks: CheckStore | None = None
    ):
        self.scan = scan
        self.root = scan.root
        #: node -> (kind, ImageInfo or None), in insertion order (images first).
        self.nodes: dict[str, tuple[str, ImageInfo | None]] = {}
        self._backing: dict[str, str] = {}
        self._children: dict[str, list[str]] = {}
        self._now = time.time() if now is None else now
        self._by_id: dict[tuple[int, int], str] = {}
        self._errors = {e.path: e for e in scan.errors}
        self.problems: list[Problem] = []
        with paused_gc():
            self._add_nodes()
            self._add_edges()
            self.loops = self._find_loops()
            self._add_check_problems(checks)
            self._find_problems()
            self._breaks = self._find_chain_breaks()
            self.nova_bases = self._find_nova_bases()
        self._nova_index = {b.path: b for b in self.nova_bases}

    @classmethod
    def build(
        cls, scan: ScanResult, now: float | None = None, checks: CheckStore | None = None
    ) -> ChainGraph:
        return cls(scan, now, checks)

    # -- construction -------------------------------------------------------------------------

    def _add_nodes(self) -> None:
        nodes = self.nodes
        for kind, images in ((IMAGE, self.scan.images), (EXTERNAL, self.scan.external)):
            for path, info in images.items():
                nodes[path] = (kind, info)
                self._by_id.setdefault(info.file_id, path)

    def _add_edges(self) -> None:
        for path, info in list(self._images()):
            if info.backing_file is None:
                continue
            target = self._target_node(info)
            self._backing[path] = target
            self._children.setdefault(target, []).append(path)

    def _images(self):
        for path, (_, info) in self.nodes.items():
            if info is not None:
                yield path, info

    def _target_node(self, info: ImageInfo) -> str:
        if info.backing_protocol or info.backing_path is None:
            name = info.backing_file or ""
            if name not in self.nodes:
                self.nodes[name] = (PROTOCOL, None)
            return name
        target = info.backing_path
        target = self.scan.aliases.get(target, target)
        known = self.nodes.get(target)
        if known is not None and known[1] is not None:
            return target
        try:
            st = os.stat(target)
        except OSError:
            st = None
        if st is not None:
            same = self._by_id.get((st.st_dev, st.st_ino))
            if same is not None:
                return same
        if target not in self.nodes:
            self.nodes[target] = (MISSING if st is None else UNREADABLE, None)
        return target

    def _find_loops(self) -> list[list[str]]:
        """Each loop once, in chain order. Linear: every node has at most one backing."""
        backing_of = self._backing.get
        state: dict[str, int] = {}  # 1 = on the current walk, 2 = done
        loops = []
        for start in self.nodes:
            if start in state:
                continue
            walk = []
            node: str | None = start
            while node is not None and node not in state:
                state[node] = 1
                walk.append(node)
                node = backing_of(node)
            if node is not None and state[node] == 1:
                loops.append(walk[walk.index(node) :])
            for n in walk:
                state[n] = 2
        return loops

    # -- queries ------------------------------------------------------------------------------

    def image(self, path: str) -> ImageInfo | None:
        node = self.nodes.get(path)
        return node[1] if node else None

    def kind(self, node: str) -> str:
        return self.nodes[node][0]

    def resolve(self, path: str) -> str | None:
        """The node for ``path``, through symlinks, hard links and ``..``; None if not scanned."""
        norm = backing.canonical(path)
        if norm in self.nodes:
            return norm
        key = file_id(norm)
        return None if key is None else self._by_id.get(key)

    def backing_of(self, node: str) -> str | None:
        return self._backing.get(node)

    def chain(self, node: str) -> list[str]:
        """``node`` and its backing files, top to base; stops before repeating a loop."""
        seen: set[str] = set()
        out: list[str] = []
        current: str | None = node
        while current is not None and current not in seen:
            seen.add(current)
            out.append(current)
            current = self.backing_of(current)
        return out

    def children(self, node: str) -> list[str]:
        """Images that use ``node`` directly as their backing file."""
        return sorted(self._children.get(node, ()))

    def descendants(self, node: str) -> set[str]:
        """Every image whose content depends on ``node`` (overlays of overlays included)."""
        found: set[str] = set()
        todo = [node]
        while todo:
            for child in self._children.get(todo.pop(), ()):
                if child not in found:
                    found.add(child)
                    todo.append(child)
        found.discard(node)  # a loop leads back to the start
        return found

    def roots(self) -> list[str]:
        """Nodes with no backing file: the bottom of each chain (placeholders included)."""
        return sorted(n for n in self.nodes if n not in self._backing)

    def leaves(self) -> list[str]:
        """Images nothing backs onto: the tops of the chains, where guests write."""
        return sorted(n for n in self.nodes if n not in self._children)

    def depth(self, node: str) -> int:
        """Backing files below ``node`` (0 for a standalone image)."""
        return len(self.chain(node)) - 1

    @cached_property
    def g(self) -> networkx.DiGraph[str]:
        """The same graph as a networkx DiGraph (node attributes ``kind`` and ``info``)."""
        import networkx

        g: networkx.DiGraph[str] = networkx.DiGraph()
        g.add_nodes_from((n, {"kind": k, "info": i}) for n, (k, i) in self.nodes.items())
        g.add_edges_from(self._backing.items())
        return g

    def problems_for(self, path: str) -> list[Problem]:
        return self._problem_index.get(path, [])

    def nova_base(self, path: str) -> NovaBase | None:
        return self._nova_index.get(path)

    def in_loop(self, node: str) -> bool:
        return node in self._loop_of

    def loop_number(self, node: str) -> int | None:
        """1-based index into :attr:`loops` of the loop ``node`` is part of (as messages say)."""
        return self._loop_of.get(node)

    @cached_property
    def _loop_of(self) -> dict[str, int]:
        return {n: i for i, loop in enumerate(self.loops, 1) for n in loop}

    def chain_break(self, node: str) -> ChainBreak | None:
        """Why qemu cannot open ``node``'s chain (its own problem or one below it), or None."""
        return self._breaks.get(node)

    def unusable(self) -> list[str]:
        """Images whose chain qemu cannot open, their own problem or not."""
        return [n for n in self._breaks if self.nodes[n][1] is not None]

    # -- chain state --------------------------------------------------------------------------

    def _own_break(self, node: str) -> ChainBreak | None:
        """The error-level problem of ``node`` itself that stops qemu opening it."""
        errors = [p for p in self._problem_index.get(node, ()) if p.level == Level.ERROR]
        if not errors:
            return None
        rank = {kind: i for i, kind in enumerate(_BREAK_ORDER)}
        worst = min(errors, key=lambda p: rank.get(p.kind, len(rank)))
        if worst.kind == Kind.MISSING_BACKING:
            target = self._backing.get(node)
            if target is not None and self.nodes[target][0] in (MISSING, UNREADABLE):
                return ChainBreak(target, worst.kind)
        return ChainBreak(node, worst.kind)

    def _find_chain_breaks(self) -> dict[str, ChainBreak]:
        """Every node whose chain is broken, in one linear pass: each walk down a chain stops at
        the first node already decided, so every node is walked once (loops included: every
        member of a loop has a breaking problem of its own)."""
        decided: dict[str, ChainBreak | None] = {}
        own = self._own_break
        backing_of = self._backing.get
        nodes = self.nodes
        for start in nodes:
            if start in decided:
                continue
            walk: list[str] = []
            node: str | None = start
            result: ChainBreak | None = None
            while node is not None:
                if node in decided:
                    result = decided[node]
                    break
                if nodes[node][1] is None:  # a placeholder: its overlay carries the problem
                    decided[node] = None
                    break
                found = own(node) if node in self._problem_index else None
                if found is not None:
                    decided[node] = result = found
                    break
                walk.append(node)
                decided[node] = None  # provisional: guards against a walk meeting itself
                node = backing_of(node)
            for n in walk:
                decided[n] = result
        return {n: b for n, b in decided.items() if b is not None}

    # -- problems -----------------------------------------------------------------------------

    def _add(self, kind: Kind, level: Level, path: str, message: str, fix_cli: str = "") -> None:
        self.problems.append(Problem(kind, level, path, message, fix_cli))

    def _add_check_problems(self, checks: CheckStore | None) -> None:
        """What earlier ``qemu-img check`` runs found, for images still in the state checked.

        The store holds only damaged images, so this costs one dict lookup per stored finding
        (the scan's own ``stat`` says whether the file changed since), nothing per healthy image.
        (``_find_problems`` sorts and indexes these with the rest.)
        """
        if checks is None:
            checks = checkstore.load()
        #: Why stored check results could not be read, for the CLI and the window to mention.
        self.checks_note = checks.note
        nodes, by_id = self.nodes, self._by_id
        for rec in checks:
            fp = rec.fingerprint
            path = by_id.get((fp.dev, fp.ino))
            info = nodes[path][1] if path is not None else None
            if info is not None and info.stamp == (fp.size, fp.mtime_ns):
                self.problems.extend(rec.problems(path))

    def _find_problems(self) -> None:
        err = Level.ERROR
        for error in self.scan.errors:
            if error.looked_like_image:
                self._add(
                    Kind.UNREADABLE, err, error.path, f"Cannot read the image: {error.message}."
                )
            elif error.leftover:
                fix = fix_cli(Kind.LEFTOVER, error.path)
                self._add(Kind.LEFTOVER, Level.WARNING, error.path, error.message, fix)
        for number, loop in enumerate(self.loops, 1):
            # One message per loop, shared by its members: a member naming every other member
            # made a 6,000-image loop 577 MB of JSON. Small loops still name theirs inline.
            what = f"loop #{number} ({len(loop):,} images"
            if len(loop) <= LOOP_NAMES_INLINE:
                names = " -> ".join(os.path.basename(p) for p in [*loop, loop[0]])
                what += f": {names})"
            else:
                what += ")"  # the loop itself is listed once: check --json "loops", #N = loops[N-1]
            message = (
                f"Backing chain loops back on itself, part of {what}; qemu cannot open it. "
                "Rebase one image in the loop onto the real base."
            )
            for path in loop:
                self._add(Kind.BACKING_LOOP, err, path, message)
        # The common case first, without building any message: a healthy image on a healthy,
        # correctly recorded backing inside the root. Flags are mostly shared dicts
        # (formats.base.shared_flags), so their verdict is worked out once per dict.
        inside = self.root.rstrip("/") + "/"
        clean_flags: dict[int, bool] = {}
        edges = self._backing
        nodes = self.nodes
        for path, info in self._images():
            flags = info.flags
            clean = clean_flags.get(id(flags))
            if clean is None:
                clean = clean_flags[id(flags)] = not (
                    flags.get("corrupt")
                    or flags.get("dirty")
                    or flags.get("needs_check")
                    or flags.get("external_data_file")
                )
            if clean and not info.extents:
                if info.backing_file is None:
                    continue
                base = nodes[edges[path]][1]
                fmt = info.backing_format
                if (
                    base is not None
                    and fmt is not None
                    and (fmt == base.format or fmt in base.also_opens_as)
                    and info.backing_path.startswith(inside)
                ):
                    continue
            self._image_problems(path, info)
        self.problems.sort(key=lambda p: (p.path, p.kind))
        self._problem_index: dict[str, list[Problem]] = {}
        for p in self.problems:
            self._problem_index.setdefault(p.path, []).append(p)

    def _image_problems(self, path: str, info: ImageInfo) -> None:
        err, warn = Level.ERROR, Level.WARNING
        flags = info.flags
        if flags.get("corrupt"):
            self._add(
                Kind.CORRUPT,
                err,
                path,
                "qemu marked this image corrupt: it opens read-only. Back it up, then check it "
                "and repair everything the check finds.",
                fix_cli(Kind.CORRUPT, path),
            )
        if (flags.get("dirty") or flags.get("needs_check")) and not info.in_use:
            self._add(
                Kind.DIRTY,
                warn,
                path,
                "Not closed cleanly (dirty flag set): qemu repairs it on the next writable open, "
                "or check it with repair now.",
            )
        if flags.get("external_data_file"):
            self._add(
                Kind.EXTERNAL_DATA_FILE,
                warn,
                path,
                f"Guest data lives in a separate file ({flags.get('data_file')}); moving or "
                "copying this image alone loses it.",
            )
        for extent in info.extents:
            if extent != path and not os.path.exists(extent):
                self._add(
                    Kind.MISSING_EXTENT,
                    err,
                    path,
                    f"Its data file {extent} does not exist; qemu cannot open the image. Put "
                    "that file back (it holds the guest's data).",
                )
            if not backing.is_inside(extent, os.path.dirname(path)):
                self._add(
                    Kind.BACKING_OUTSIDE_ROOT,
                    err,
                    path,
                    f"Its data file {extent} lies outside the image's directory; a crafted image "
                    "can read any host file this way (CVE-2022-47951). Do not use it unless you "
                    "made it.",
                )
        if info.backing_file is None:
            return
        self._backing_problems(path, info)

    def _backing_problems(self, path: str, info: ImageInfo) -> None:
        err, warn = Level.ERROR, Level.WARNING
        target = self._backing[path]  # an image with a backing file always has an edge
        kind = self.kind(target)
        name = info.backing_file
        if kind == PROTOCOL:
            self._add(
                Kind.PROTOCOL_BACKING,
                warn,
                path,
                f"Its backing '{name}' is a protocol source, not a file: imagegui cannot check "
                "it, and it may not be reachable from every host.",
            )
            return
        if kind == MISSING:
            why = backing.open_error(target)
            found = "not found" if why is None or why.startswith("No such") else f"unusable: {why}"
            self._add(
                Kind.MISSING_BACKING,
                err,
                path,
                f"Backing file '{name}' {found} (looked for {target}). If the base was moved "
                "or renamed, point the overlay at it again.",
                fix_cli(Kind.MISSING_BACKING, path),
            )
        elif kind == UNREADABLE:
            error = self._errors.get(target)
            detail = f": {error.message}" if error else ""
            self._add(
                Kind.MISSING_BACKING,
                err,
                path,
                f"Backing file {target} exists but is not a readable image{detail}.",
            )
        if not backing.is_inside(info.backing_path or "", self.root):
            self._add(
                Kind.BACKING_OUTSIDE_ROOT,
                warn,
                path,
                f"Its backing file {info.backing_path} is outside {self.root}; moving or copying "
                "this directory breaks the chain.",
            )
        base = self.image(target)
        if info.backing_format is None:
            if info.format in _FORMAT_RECORDING:
                self._add(
                    Kind.NO_BACKING_FORMAT,
                    warn,
                    path,
                    "No backing format recorded: qemu 6.1+ and libvirt refuse to guess it, and "
                    "guessing lets a guest rewrite what the base appears to be. Record it"
                    + (f" (the base is {base.format})." if base else "."),
                    fix_cli(Kind.NO_BACKING_FORMAT, path, target) if base else "",
                )
        elif base is not None:
            allowed = {base.format, *base.also_opens_as}
            if info.backing_format not in allowed:
                self._add(
                    Kind.BACKING_FORMAT_MISMATCH,
                    err,
                    path,
                    f"Records its backing format as {info.backing_format}, but {target} is "
                    f"{base.format}: the guest would see the wrong data. Record the real format.",
                    fix_cli(Kind.BACKING_FORMAT_MISMATCH, path, target),
                )

    # -- OpenStack Nova -----------------------------------------------------------------------

    def _find_nova_bases(self) -> list[NovaBase]:
        bases = []
        for path, info in self.scan.images.items():
            if "/_base/" not in path:  # cheap pre-check: this runs for every image
                continue
            parent, name = os.path.split(path)
            if os.path.basename(parent) != "_base":
                continue
            used_by = len(self._children.get(path, ()))
            bases.append(
                NovaBase(
                    path=path,
                    used_by=used_by,
                    age_seconds=max(0.0, self._now - info.mtime),
                    resized=bool(_NOVA_RESIZED.match(name)),
                )
            )
        bases.sort(key=lambda b: b.path)
        return bases
