"""Every kind of problem a scan reports, in one place: its level, its title, what it means and
what fixes it, both as the window's action and as our own command line. The window (Problems,
Details, cards, status bar) and the command line (``scan``, ``check``) read them from here:
adding a kind is one :class:`KindInfo` in :data:`KINDS` (and its rule at the end of this file);
``tests/core/chains/test_one_place.py`` holds everyone to that.

``message`` is prose that fits both the window and the terminal (no command lines, no flags);
``fix_cli`` is the command that fixes it, which only the command line's text output adds
(``cli_text``): the window offers the same fix as an action instead.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from imagegui.core.chains.schema import INFO, KIND, MISSING, PROTOCOL, UNREADABLE
from imagegui.core.read import backing
from imagegui.core.strenum import StrEnum

if TYPE_CHECKING:
    import networkx

    from imagegui.core.read.model import ImageInfo, ScanError
    from imagegui.core.read.scan import ScanResult
    from imagegui.core.virt.inventory import DiskUse


class Level(StrEnum):
    """How bad a finding is, in every part of the engine: a scan's problems, a plan's guard
    findings and qemu-img check's results. An ``ERROR`` finding of a plan refuses it."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Kind(StrEnum):
    MISSING_BACKING = "missing-backing"
    BACKING_LOOP = "backing-loop"
    NO_BACKING_FORMAT = "no-backing-format"
    BACKING_FORMAT_MISMATCH = "backing-format-mismatch"
    PROTOCOL_BACKING = "protocol-backing"
    BACKING_OUTSIDE_ROOT = "backing-outside-root"
    UNREADABLE = "unreadable"
    DIRTY = "dirty"
    CORRUPT = "corrupt"
    EXTERNAL_DATA_FILE = "external-data-file"
    MISSING_EXTENT = "missing-extent"
    #: Found by ``qemu-img check`` (kept by ``core.chains.checkstore`` until the image changes).
    CHECK_ERRORS = "check-errors"
    LEAKED_CLUSTERS = "leaked-clusters"
    LEFTOVER = "leftover-file"
    #: A libvirt domain's disk whose file does not exist or whose chain qemu cannot open.
    DOMAIN_DISK_MISSING = "domain-disk-missing"
    #: Only when portability is asked for (``check --portable``): an absolute backing name
    #: inside the scanned directory.
    ABSOLUTE_BACKING = "absolute-backing"


class FixAction(StrEnum):
    """The window's actions that fix a problem: Details links to ``action:NAME``, and the main
    window runs the action of that name (``MainWindow.fix_handlers``)."""

    REPAIR = "repair"
    REBASE = "rebase"
    RECORD_FORMAT = "record-format"
    CHECK = "check"
    FLATTEN = "flatten"
    REPAIR_ALL = "repair-all"
    REPAIR_LEAKS = "repair-leaks"
    REMOVE_LEFTOVER = "remove-leftover"


@dataclass(frozen=True)
class KindInfo:
    """Everything said about one kind of problem, wherever it is said."""

    kind: Kind
    #: How bad it is. One rule reports a kind worse than this: a VMDK extent or data file
    #: outside the image's own directory is a ``backing-outside-root`` error (CVE-2022-47951).
    level: Level
    #: Its name for people: the Problems panel's group, card, tooltip and status-bar lines.
    title: str
    #: What it means and why it matters, in the window's terms (Details, Problems' tooltip).
    explanation: str
    #: What fixes it, in the window's terms: the label of ``action``'s link when there is one.
    fix: str
    #: The window action that fixes it, if one does.
    action: FixAction | None = None
    #: Our command line's fix (``imagegui …``), a template of ``{path}`` (the image) and
    #: ``{base}`` (its backing file, or a placeholder); "" when no command fixes it.
    cli: str = ""
    #: The image's own problem stops even a check of it (a check reads the image alone, not
    #: its backing chain, so a broken chain below, a loop or a wrong backing format do not).
    stops_check: bool = False
    #: When an image has several errors that stop qemu opening its chain, the one named as the
    #: chain's break is the lowest rank (the file to find first); None ranks after every rank.
    break_rank: int | None = None


#: Placeholder for a backing file the user has to find.
NEW_BASE = "NEW_BASE"
_REBASE_UNSAFE = "imagegui rebase --unsafe {path} {base}"
_FLATTEN = "Flatten into an independent image…"

KINDS: dict[Kind, KindInfo] = {
    info.kind: info
    for info in (
        KindInfo(
            Kind.MISSING_BACKING,
            Level.ERROR,
            "Missing backing file",
            "The overlay stores only its own changes; without its backing file the guest sees "
            "no disk. Find the base (moved or renamed?) and point the overlay at it again "
            "(Repair Missing Backing finds candidates).",
            "Repair missing backing…",
            FixAction.REPAIR,
            _REBASE_UNSAFE,
            break_rank=0,
        ),
        KindInfo(
            Kind.BACKING_LOOP,
            Level.ERROR,
            "Backing loop",
            "The chain points back at itself; qemu refuses to open any image in it. Rebase one "
            "of them onto the real base.",
            "Rebase onto the real base…",
            FixAction.REBASE,
            break_rank=1,
        ),
        KindInfo(
            Kind.NO_BACKING_FORMAT,
            Level.WARNING,
            "No backing format recorded",
            "qemu 6.1+ and libvirt refuse to guess a backing file's format, and guessing lets a "
            "guest turn a raw base into a qcow2 that points at any host file. Record the format "
            "(an unsafe rebase onto the same file: only the header changes).",
            "Record the backing format…",
            FixAction.RECORD_FORMAT,
            _REBASE_UNSAFE,
        ),
        KindInfo(
            Kind.BACKING_FORMAT_MISMATCH,
            Level.ERROR,
            "Wrong backing format",
            "qemu will read the base with the recorded format, so the guest sees the wrong "
            "bytes. Record the real format (an unsafe rebase onto the same file).",
            "Record the real backing format…",
            FixAction.RECORD_FORMAT,
            _REBASE_UNSAFE,
            break_rank=6,
        ),
        KindInfo(
            Kind.PROTOCOL_BACKING,
            Level.WARNING,
            "Network / protocol backing",
            "The base is a network or protocol source (nbd:, rbd:, json:, URL); imagegui cannot "
            "see it and it may not be reachable from every host.",
            _FLATTEN,
            FixAction.FLATTEN,
        ),
        KindInfo(
            Kind.BACKING_OUTSIDE_ROOT,
            Level.WARNING,
            "Depends on files outside the directory",
            "The image depends on a file outside the scanned directory, so moving or copying "
            "the directory breaks it.",
            _FLATTEN,
            FixAction.FLATTEN,
        ),
        KindInfo(
            Kind.UNREADABLE,
            Level.ERROR,
            "Unreadable image",
            "The file looks like a disk image but its header cannot be read: truncated, "
            "damaged, a format it does not really have, or not readable by this user.",
            "Restore the file from a backup, give this user read access, or remove it if it "
            "is no image.",
            stops_check=True,
            break_rank=2,
        ),
        KindInfo(
            Kind.DIRTY,
            Level.WARNING,
            "Not closed cleanly",
            "The image was not closed cleanly (lazy refcounts); qemu repairs it on the next "
            "writable open, or check it and repair what the check finds.",
            "Check the image",
            FixAction.CHECK,
        ),
        KindInfo(
            Kind.CORRUPT,
            Level.ERROR,
            "Marked corrupt",
            "qemu marked the image corrupt and will only open it read-only. Back it up, then "
            "check it and repair everything the check finds.",
            "Check the image",
            FixAction.CHECK,
            "imagegui check-image --repair all {path}",
            break_rank=4,
        ),
        KindInfo(
            Kind.EXTERNAL_DATA_FILE,
            Level.WARNING,
            "External data file",
            "The guest's data lives in a separate file; copying or moving the image alone "
            "loses it.",
            "Keep the data file with the image: copy or move both together.",
        ),
        KindInfo(
            Kind.MISSING_EXTENT,
            Level.ERROR,
            "Missing data file",
            "Part of the guest's data lives in a separate file (a VMDK extent or a qcow2 "
            "external data file) that is gone; qemu cannot open the image.",
            "Put the file back (restore it or move it next to the image) - the image itself "
            "cannot replace it.",
            stops_check=True,
            break_rank=3,
        ),
        KindInfo(
            Kind.CHECK_ERRORS,
            Level.ERROR,
            "Damaged metadata",
            "A full check of the image found its metadata damaged (or could not read it): "
            "parts of the guest's disk may read back wrong or be overwritten by the next "
            "write. Copy the data out first (flatten into a new image), then Repair all; "
            "repair rewrites the metadata and can lose the damaged parts for good.",
            "Repair all…",
            FixAction.REPAIR_ALL,
            "copy the data out (imagegui flatten), then imagegui check-image --repair all {path}",
            break_rank=5,
        ),
        KindInfo(
            Kind.LEAKED_CLUSTERS,
            Level.WARNING,
            "Leaked clusters",
            "A full check found clusters that are allocated in the file but used by nothing, "
            "usually after a crash or a killed VM. They waste disk space and harm no data; "
            "Repair leaks gives them back.",
            "Repair leaks…",
            FixAction.REPAIR_LEAKS,
            "imagegui check-image --repair leaks {path}",
        ),
        KindInfo(
            Kind.LEFTOVER,
            Level.WARNING,
            "Leftover temporary file",
            "A temporary file imagegui writes while flattening, converting or creating an image, "
            "left behind because the "
            "operation was interrupted (the program was killed or the machine stopped). It is "
            "not an image of yours and nothing uses it: remove it to get the space back.",
            "Remove leftover file…",
            FixAction.REMOVE_LEFTOVER,
            "imagegui clean-leftovers {path}",
        ),
        KindInfo(
            Kind.DOMAIN_DISK_MISSING,
            Level.ERROR,
            "Virtual machine's disk missing",
            "A virtual machine defined in libvirt (running or shut off) uses this file as a "
            "disk, but the file does not exist or its backing chain cannot be opened: the "
            "machine will not start. Put the file back (moved or renamed?) or repair the chain "
            "as its own problem says, or give the machine another disk in its settings "
            "(virt-manager, Cockpit).",
            "Put the file back or repair the chain below it; or change the virtual machine's "
            "disk in its settings.",
            break_rank=7,
        ),
        KindInfo(
            Kind.ABSOLUTE_BACKING,
            Level.WARNING,
            "Absolute backing path",
            "The image names its backing file by an absolute path although both lie inside "
            "the directory: moving the directory, or opening it at another path (a network "
            "share mounted elsewhere, another host), breaks the chain. A relative name keeps "
            "leading to the same file wherever the directory goes. Reported only when a "
            "portability check is asked for.",
            "Make its backing path relative: only the name stored in the image changes.",
            cli="imagegui relink --relative {path}",
        ),
    )
}


def break_rank(kind: Kind) -> int:
    """``kind``'s place in naming an image's chain break (lower first; see ``KindInfo``)."""
    rank = KINDS[kind].break_rank
    return len(KINDS) if rank is None else rank


def fix_cli(kind: Kind, path: str, base: str = NEW_BASE) -> str:
    """The command line's fix for ``kind`` in the image ``path`` (``base``: the backing file to
    point it at), quoted for a shell; "" when no command fixes that kind."""
    template = KINDS[kind].cli
    return template.format(path=shlex.quote(path), base=shlex.quote(base)) if template else ""


@dataclass(frozen=True)
class Problem:
    kind: Kind
    level: Level
    path: str
    message: str
    #: The command that fixes it, for the command line's text output only ("" if none).
    fix_cli: str = ""

    @property
    def info(self) -> KindInfo:
        return KINDS[self.kind]

    @property
    def title(self) -> str:
        return KINDS[self.kind].title

    @property
    def explanation(self) -> str:
        return KINDS[self.kind].explanation

    @property
    def cli_text(self) -> str:
        """The message as a terminal shows it: with the fixing command, when there is one."""
        return cli_text(self.message, self.fix_cli)

    def to_json(self) -> dict[str, str]:
        d = {
            "kind": str(self.kind),
            "severity": str(self.level),  # the JSON name (schema 1) predates Level
            "path": self.path,
            "message": self.message,
        }
        if self.fix_cli:
            d["fix_cli"] = self.fix_cli
        return d


def problem(
    kind: Kind, path: str, message: str, fix_cli: str = "", level: Level | None = None
) -> Problem:
    """A problem at its kind's level (``level`` only for the rule that reports worse: see
    :attr:`KindInfo.level`)."""
    return Problem(kind, level or KINDS[kind].level, path, message, fix_cli)


def cli_text(message: str, fix_cli: str) -> str:
    """``message`` followed by its command-line fix (``Fix: imagegui rebase …``), as a sentence
    of its own: refusals end without a full stop and read run together with it."""
    if not fix_cli:
        return message
    end = "" if message.rstrip().endswith((".", "!", "?", ":")) else "."
    return f"{message.rstrip()}{end} Fix: {fix_cli}"


# ------------------------------------------------------------------------------------- rules
# Which problems each node of the chain graph has: functions over the graph (``graph.ChainGraph``
# calls :func:`find_problems` once per scan). Node and edge attributes: ``chains.schema``.

#: Formats whose header can record a backing format (qcow v1 never can, yet is still unsafe).
_FORMAT_RECORDING = frozenset({"qcow2", "qed", "qcow"})
#: Loops up to this many images are named in each member's message; longer ones are referenced.
LOOP_NAMES_INLINE = 4


def find_problems(
    g: networkx.DiGraph[str],
    scan: ScanResult,
    loops: list[list[str]],
    known: Iterable[Problem] = (),
    portable: bool = False,
) -> list[Problem]:
    """Every problem of the chain graph ``g`` built from ``scan``, sorted by path and kind.
    ``loops`` are the graph's backing loops (each in chain order); ``known`` are problems found
    before the scan (kept ``qemu-img check`` results), sorted in with the rest; ``portable``
    adds the portability warnings (``absolute-backing``), off unless asked for."""
    problems = list(known)
    problems += scan_error_problems(scan)
    problems += loop_problems(loops)
    if portable:
        problems += portability_problems(scan)
    rules = NodeRules(g, scan)
    node = g._node  # type: ignore[attr-defined]
    clean_flags, inside = rules.clean_flags, rules.inside
    for path, backings in g._succ.items():  # type: ignore[attr-defined]
        info = node[path][INFO]
        if info is None:
            continue
        # ``NodeRules.of``'s common case inline (a call per image costs a sixth of the pass):
        # clean flags, no data files, a recorded format matching a base inside the root.
        if not info.extents and clean_flags.get(id(info.flags)):
            if not backings:
                continue
            base = node[next(iter(backings))][INFO]
            fmt = info.backing_format
            if (
                base is not None
                and fmt is not None
                and (fmt == base.format or fmt in base.also_opens_as)
                and (info.backing_path or "").startswith(inside)
            ):
                continue
        problems += rules.of(path, info, backings)
    problems.sort(key=lambda p: (p.path, p.kind))
    return problems


class NodeRules:
    """The rules of one image node (its header, its data files, the link to its backing node)
    over one graph: :func:`find_problems` asks for every image, an update of the graph
    (``chains.incremental``) for the images whose problems may have changed."""

    def __init__(self, g: networkx.DiGraph[str], scan: ScanResult):
        self.g, self.scan = g, scan
        self.inside = scan.root.rstrip("/") + "/"
        self.errors = {e.path: e for e in scan.errors}
        #: Flags are mostly shared dicts (formats.base.shared_flags): each one's verdict once.
        self.clean_flags: dict[int, bool] = {}
        self.node = g._node  # type: ignore[attr-defined]

    def of(self, path: str, info: ImageInfo, backings: Mapping[str, object]) -> list[Problem]:
        """The problems of the image ``path`` (record ``info``, successor dict ``backings``)."""
        # The common case first, without building any message: a healthy image on a healthy,
        # correctly recorded backing inside the root.
        flags = info.flags
        clean = self.clean_flags.get(id(flags))
        if clean is None:
            clean = self.clean_flags[id(flags)] = not (
                flags.get("corrupt")
                or flags.get("dirty")
                or flags.get("needs_check")
                or flags.get("external_data_file")
            )
        if clean and not info.extents:
            if not backings:
                return []
            base = self.node[next(iter(backings))][INFO]
            fmt = info.backing_format
            if (
                base is not None
                and fmt is not None
                and (fmt == base.format or fmt in base.also_opens_as)
                and (info.backing_path or "").startswith(self.inside)
            ):
                return []
        scan = self.scan
        out = image_problems(path, info, scan)
        if backings:
            target = next(iter(backings))
            out += backing_problems(self.g, scan.root, self.errors, path, info, target, scan)
        return out


def portability_problems(scan: ScanResult) -> list[Problem]:
    """Images that name a backing file inside the root by its absolute path: the directory
    cannot move or be opened at another path (NFS) without breaking them."""
    out = []
    for path, info in scan.images.items():
        found = portability_problem(scan, path, info)
        if found is not None:
            out.append(found)
    return out


def portability_problem(scan: ScanResult, path: str, info: ImageInfo) -> Problem | None:
    """The image ``path`` names a backing file inside the root by its absolute path."""
    name = info.backing_file
    if not name or not name.startswith("/") or info.backing_protocol:
        return None
    target = info.backing_path or name
    if not scan.within(target, scan.root):
        return None
    return problem(
        Kind.ABSOLUTE_BACKING,
        path,
        f"Names its backing file by the absolute path {name}, inside {scan.root}: "
        "moving or sharing this directory at another path breaks the chain. Make "
        "the name relative.",
        fix_cli(Kind.ABSOLUTE_BACKING, path),
    )


def scan_error_problems(scan: ScanResult) -> list[Problem]:
    """Files that looked like images but could not be read, and leftovers of operations."""
    return error_problems(scan.errors)


def error_problems(errors: Iterable[ScanError]) -> list[Problem]:
    """The problems of these scan errors (``scan_error_problems``)."""
    out = []
    for error in errors:
        if error.looked_like_image:
            message = f"Cannot read the image: {error.message}."
            out.append(problem(Kind.UNREADABLE, error.path, message))
        elif error.leftover:
            fix = fix_cli(Kind.LEFTOVER, error.path)
            out.append(problem(Kind.LEFTOVER, error.path, error.message, fix))
    return out


def loop_problems(loops: list[list[str]]) -> list[Problem]:
    """One problem per member of each loop, sharing one message per loop: a member naming every
    other member made a 6,000-image loop 577 MB of JSON. Small loops still name theirs inline."""
    out = []
    for number, loop in enumerate(loops, 1):
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
        out += [problem(Kind.BACKING_LOOP, path, message) for path in loop]
    return out


def image_problems(path: str, info: ImageInfo, scan: ScanResult | None = None) -> list[Problem]:
    """What the image's own header and files say: flags, data files. ``scan``: the result the
    image is part of, which says how to look at its files (another host's are never looked at
    here: ``ScanResult.remote_uri``)."""
    out = []
    remote_scan = scan if scan is not None and scan.remote_uri is not None else None
    flags = info.flags
    if flags.get("corrupt"):
        out.append(
            problem(
                Kind.CORRUPT,
                path,
                "qemu marked this image corrupt: it opens read-only. Back it up, then check it "
                "and repair everything the check finds.",
                fix_cli(Kind.CORRUPT, path),
            )
        )
    if (flags.get("dirty") or flags.get("needs_check")) and not info.in_use:
        out.append(
            problem(
                Kind.DIRTY,
                path,
                "Not closed cleanly (dirty flag set): qemu repairs it on the next writable open, "
                "or check it with repair now.",
            )
        )
    if flags.get("external_data_file"):
        out.append(
            problem(
                Kind.EXTERNAL_DATA_FILE,
                path,
                f"Guest data lives in a separate file ({flags.get('data_file')}); moving or "
                "copying this image alone loses it.",
            )
        )
    for extent in info.extents:
        exists = (
            remote_scan.identify(extent) is not None
            if remote_scan is not None
            else os.path.exists(extent)
        )
        if extent != path and not exists:
            out.append(
                problem(
                    Kind.MISSING_EXTENT,
                    path,
                    f"Its data file {extent} does not exist; qemu cannot open the image. Put "
                    "that file back (it holds the guest's data).",
                )
            )
        directory = os.path.dirname(path)
        inside = (
            remote_scan.within(extent, directory)
            if remote_scan is not None
            else backing.is_inside(extent, directory)
        )
        if not inside:
            out.append(
                problem(
                    Kind.BACKING_OUTSIDE_ROOT,
                    path,
                    f"Its data file {extent} lies outside the image's directory; a crafted image "
                    "can read any host file this way (CVE-2022-47951). Do not use it unless you "
                    "made it.",
                    level=Level.ERROR,  # worse than the kind's level: see KindInfo.level
                )
            )
    return out


def backing_problems(
    g: networkx.DiGraph[str],
    root: str,
    errors: Mapping[str, ScanError],
    path: str,
    info: ImageInfo,
    target: str,
    scan: ScanResult | None = None,
) -> list[Problem]:
    """What is wrong with the link from the overlay ``path`` to its backing node ``target``
    (``errors``: why each unreadable file of the scan under ``root`` could not be read;
    ``scan``: that scan, which says whether its paths are another host's)."""
    out = []
    host = scan.remote_uri if scan is not None else None
    node = g.nodes[target]
    kind = node[KIND]
    name = info.backing_file
    if kind == PROTOCOL:
        out.append(
            problem(
                Kind.PROTOCOL_BACKING,
                path,
                f"Its backing '{name}' is a protocol source, not a file: imagegui cannot check "
                "it, and it may not be reachable from every host.",
            )
        )
        return out
    if kind == MISSING:
        if host is not None:  # libvirt could not open it there; its reason stays on that host
            found = f"not found on {host}"
        else:
            why = backing.open_error(target)
            found = "not found" if why is None or why.startswith("No such") else f"unusable: {why}"
        out.append(
            problem(
                Kind.MISSING_BACKING,
                path,
                f"Backing file '{name}' {found} (looked for {target}). If the base was moved "
                "or renamed, point the overlay at it again.",
                fix_cli(Kind.MISSING_BACKING, path),
            )
        )
    elif kind == UNREADABLE:
        error = errors.get(target)
        detail = f": {error.message}" if error else ""
        out.append(
            problem(
                Kind.MISSING_BACKING,
                path,
                f"Backing file {target} exists but is not a readable image{detail}.",
            )
        )
    within = scan.within if host is not None and scan is not None else backing.is_inside
    if not within(info.backing_path or "", root):
        out.append(
            problem(
                Kind.BACKING_OUTSIDE_ROOT,
                path,
                f"Its backing file {info.backing_path} is outside {root}; moving or copying "
                "this directory breaks the chain.",
            )
        )
    base = node[INFO]
    if info.backing_format is None:
        if info.format in _FORMAT_RECORDING:
            out.append(
                problem(
                    Kind.NO_BACKING_FORMAT,
                    path,
                    "No backing format recorded: qemu 6.1+ and libvirt refuse to guess it, and "
                    "guessing lets a guest rewrite what the base appears to be. Record it"
                    + (f" (the base is {base.format})." if base else "."),
                    fix_cli(Kind.NO_BACKING_FORMAT, path, target) if base else "",
                )
            )
    elif base is not None:
        allowed = {base.format, *base.also_opens_as}
        if info.backing_format not in allowed:
            out.append(
                problem(
                    Kind.BACKING_FORMAT_MISMATCH,
                    path,
                    f"Records its backing format as {info.backing_format}, but {target} is "
                    f"{base.format}: the guest would see the wrong data. Record the real format.",
                    fix_cli(Kind.BACKING_FORMAT_MISMATCH, path, target),
                )
            )
    return out


def _will_not_start(du: DiskUse) -> str:
    return "the VM will not start again" if du.domain.active else "the VM will not start"


def domain_disk_missing_message(du: DiskUse) -> str:
    """``web01 (shut off) uses it as vda, but the file does not exist: the VM will not start``."""
    return (
        f"{du.domain.describe()} uses it as {du.disk.target}, but the file does not exist: "
        f"{_will_not_start(du)}"
    )


def domain_disk_problems(
    g: networkx.DiGraph[str],
    disks: Iterable[tuple[str, DiskUse]],
    chain_break: Callable[[str], object],
) -> list[Problem]:
    """Each domain disk (``(node, disk)``: the node its file is) that qemu cannot open: its file
    is a missing or unreadable placeholder, or its chain is broken (``chain_break(node)``, a
    ``graph.ChainBreak`` or None). Worked out after the chain state, so these never decide
    where a chain breaks: they say which VM a break stops."""
    out = []
    for node, du in disks:
        kind = g.nodes[node][KIND]
        if kind == MISSING:
            message = domain_disk_missing_message(du)
        elif kind == UNREADABLE:
            message = (
                f"{du.domain.describe()} uses it as {du.disk.target}, but it is not a readable "
                f"image: {_will_not_start(du)}"
            )
        else:
            broken = chain_break(node)
            if broken is None:
                continue
            at, why = broken.at, KINDS[broken.kind].title.lower()  # type: ignore[attr-defined]
            where = "it" if at == node else f"its chain at {at}"
            message = (
                f"{du.domain.describe()} uses it as {du.disk.target}, but qemu cannot open "
                f"{where} ({why}): {_will_not_start(du)}"
            )
        out.append(problem(Kind.DOMAIN_DISK_MISSING, node, message))
    return out
