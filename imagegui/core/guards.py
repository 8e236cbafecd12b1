"""The safety checks every writing operation runs, each returning a finding a user can act on.

An operation's plan collects these findings before anything runs (``--dry-run`` and the GUI's
confirmation show them) and checks them again right before running, because a VM can start in
between. Guards read headers natively (``probe_image``) and ask the kernel about qemu's locks
(``lock_state``); they never open an image with qemu, so checking is cheap and has no side effects.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from imagegui.core.backing import canonical, open_error
from imagegui.core.fileid import file_id
from imagegui.core.locks import lock_state
from imagegui.core.model import ImageInfo
from imagegui.core.problems import cli_text
from imagegui.core.processes import describe_holders
from imagegui.core.units import human_size

#: Formats whose backing pointer ``qemu-img rebase`` can rewrite.
REBASEABLE = ("qcow2", "qed")
#: Keep this much on top of ``qemu-img measure``'s figure: metadata growth, other writers.
SPACE_MARGIN = 0.02


@dataclass(frozen=True)
class Finding:
    """One guard's verdict. ``refuse`` blocks the run (``force`` lifts it when ``overridable``)."""

    level: str  # "refuse" | "warn" | "info"
    code: str
    #: Prose for the window and the terminal alike: no command lines or flags.
    message: str
    overridable: bool = False
    #: The command that fixes it, added only by the command line's text (see ``cli_text``).
    fix_cli: str = ""
    #: The images the finding is about (a shared base's other overlays), so a window can list
    #: them once and refer to them by count; not part of the JSON.
    paths: tuple[str, ...] = field(default=(), compare=False)

    @property
    def cli_text(self) -> str:
        return cli_text(self.message, self.fix_cli)

    def to_json(self) -> dict[str, object]:
        d: dict[str, object] = {
            "level": self.level,
            "code": self.code,
            "message": self.message,
            "overridable": self.overridable,
        }
        if self.fix_cli:
            d["fix_cli"] = self.fix_cli
        return d


def refuse(
    code: str,
    message: str,
    overridable: bool = False,
    fix_cli: str = "",
    paths: tuple[str, ...] = (),
) -> Finding:
    return Finding("refuse", code, message, overridable, fix_cli, paths)


def warn(code: str, message: str, fix_cli: str = "") -> Finding:
    return Finding("warn", code, message, fix_cli=fix_cli)


def info(code: str, message: str, fix_cli: str = "") -> Finding:
    return Finding("info", code, message, fix_cli=fix_cli)


class GuardRefused(Exception):
    """A guard said no; the message lists every reason (exit status 2 on the command line)."""

    def __init__(self, findings: Sequence[Finding]):
        self.findings = list(findings)
        super().__init__("; ".join(f.message for f in self.findings))


# --------------------------------------------------------------------------- chains


@dataclass
class Chain:
    """An image and its backing files as the headers say, top first, read without qemu."""

    images: list[ImageInfo] = field(default_factory=list)
    #: The resolved path of a backing file that does not exist (the chain ends there).
    missing: str | None = None
    #: The stored name the missing file came from, and the image that stores it.
    missing_name: str | None = None
    missing_in: str | None = None
    #: A backing name that is a protocol (nbd:, json:): the chain cannot be followed.
    protocol: str | None = None
    loop: bool = False
    #: A file in the chain that is not a readable image.
    unreadable: str | None = None

    @property
    def complete(self) -> bool:
        return not (self.missing or self.protocol or self.loop or self.unreadable)

    def file_ids(self) -> set[tuple[int, int]]:
        return {i.file_id for i in self.images}


def follow_chain(path: str, limit: int = 256) -> Chain:
    """Reads ``path`` and each backing file in turn; stops at a missing file, a loop, a protocol."""
    from imagegui.core.probe import ProbeError, probe_image

    chain = Chain()
    seen: set[tuple[int, int]] = set()
    current: str | None = path
    while current is not None and len(chain.images) < limit:
        try:
            img = probe_image(current)
        except ProbeError:
            if not os.path.lexists(current) and chain.images:
                chain.missing = current
                chain.missing_name = chain.images[-1].backing_file
                chain.missing_in = chain.images[-1].path
            else:
                chain.unreadable = current
            return chain
        if img.file_id in seen:
            chain.loop = True
            return chain
        seen.add(img.file_id)
        chain.images.append(img)
        if img.backing_protocol:
            chain.protocol = img.backing_file
            return chain
        current = img.backing_path
    return chain


def chain_problem(chain: Chain, what: str) -> Finding | None:
    """A refusal when a chain that must be read whole is broken, naming the repair."""
    if chain.missing:
        why = open_error(chain.missing) or "No such file or directory"
        return refuse(
            "missing-backing",
            f"{chain.missing_in} backs onto {chain.missing_name!r}, which cannot be opened "
            f"({chain.missing}: {why}); {what} needs the whole chain. If the base was moved or "
            "renamed, repair the pointer first",
            fix_cli=f"imagegui rebase --unsafe {chain.missing_in} NEW_LOCATION",
        )
    if chain.loop:
        return refuse("backing-loop", f"the backing chain of {chain.images[0].path} loops")
    if chain.protocol:
        return refuse(
            "protocol-backing",
            f"the chain reaches a protocol backing {chain.protocol!r}, which imagegui cannot "
            f"check, so it does not do {what} on this chain",
        )
    if chain.unreadable:
        return refuse("unreadable", f"{chain.unreadable} is not a readable disk image")
    return None


# --------------------------------------------------------------------------- guards


def target_free(path: str, role: str = "target") -> Finding | None:
    """Never overwrite: qemu-img create/convert would silently truncate an existing file."""
    if os.path.lexists(path):
        return refuse(
            "target-exists",
            f"{role} {path} already exists; imagegui never overwrites a file: choose another "
            "name or remove it yourself",
        )
    parent = os.path.dirname(canonical(path))
    if not os.path.isdir(parent):
        return refuse("no-directory", f"directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        return refuse("not-writable", f"cannot create files in {parent} (permission denied)")
    return None


def not_in_use(path: str, role: str = "image", writers_only: bool = False) -> Finding | None:
    """Refuses when a running QEMU holds ``path``.

    A VM holds write locks on the image it runs and read locks on that image's backing files; either
    way writing the file changes a disk under a running guest. ``writers_only`` is for reads that
    only need the data to hold still.
    """
    state = lock_state(path)
    if not state.in_use or (writers_only and not state.writer):
        return None
    how = "a running VM writes it" if state.writer else "it is a backing file of a running VM"
    return refuse(
        "in-use",
        f"{role} {path} is {describe_holders(path)} ({how}); shut that VM down first",
    )


def writable(path: str, role: str = "image") -> Finding | None:
    if not os.access(path, os.W_OK):
        return refuse("not-writable", f"{role} {path} is not writable by this user")
    return None


def rebaseable(img: ImageInfo) -> Finding | None:
    if img.format in REBASEABLE:
        return None
    return refuse(
        "format-cannot-rebase",
        f"{img.path} is a {img.format} image: only qcow2 and qed store a backing pointer that "
        "a rebase can rewrite (flatten it into a qcow2 first)",
        fix_cli=f"imagegui flatten {img.path} NEW.qcow2",
    )


def free_space(directory: str, needed: int) -> Finding | None:
    """Refuses when the file system holding ``directory`` has less than ``needed`` (+ margin)."""
    st = os.statvfs(directory)
    free = st.f_bavail * st.f_frsize
    want = int(needed * (1 + SPACE_MARGIN))
    if free >= want:
        return None
    return refuse(
        "no-space",
        f"needs {human_size(needed)} but only {human_size(free)} is free in {directory}: free "
        "some space or choose another directory",
    )


def backing_format_recorded(img: ImageInfo, backing: ImageInfo) -> Finding | None:
    """A commit writes the base with the *recorded* format; a wrong one destroys the base."""
    if img.backing_format is None:
        return refuse(
            "no-backing-format",
            f"{img.path} does not record its backing file's format; record it first (an "
            "unsafe rebase onto the same file)",
            fix_cli=f"imagegui rebase --unsafe {img.path} {backing.path}",
        )
    if img.backing_format != backing.format:
        return refuse(
            "backing-format-mismatch",
            f"{img.path} records its backing file as {img.backing_format} but it is a "
            f"{backing.format} image; writing through the wrong format would destroy it. Record "
            "the real format first (an unsafe rebase onto the same file)",
            fix_cli=f"imagegui rebase --unsafe {img.path} {backing.path}",
        )
    return None


def same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return canonical(a) == canonical(b)


# --------------------------------------------------------------------------- who else uses a base


def search_roots(*paths: str, extra: Iterable[str] = (), widen: bool = False) -> list[str]:
    """Directories to scan for other users of a base: the given files' directories, the user's
    ``--root``s and, for an OpenStack ``_base`` directory, the instances directory above it.
    ``widen`` adds each directory's parent too (templates/ has clones in ../vms/) where a
    mistake is costly, as booting a base writable is."""
    roots: list[str] = []
    for p in paths:
        d = os.path.dirname(canonical(p))
        roots.append(d)
        if os.path.basename(d) == "_base":
            roots.append(os.path.dirname(d))
    if widen:
        roots += [os.path.dirname(d) for d in roots if os.path.dirname(d) not in _too_wide()]
    # Overlay and base in sibling folders (templates/ and clones/): clones of the same base
    # often sit in a third sibling (vms/), so their common parent is searched too - when it is
    # close by, and neither the file system's root nor the home directory.
    common = os.path.commonpath(roots) if roots else "/"
    if (
        common not in roots
        and common not in _too_wide()
        and all(_levels_below(r, common) <= 2 for r in roots)
    ):
        roots.append(common)
    roots += [canonical(r) for r in extra]
    # Drop roots inside another root: the scan is recursive.
    roots = sorted(set(roots), key=len)
    kept: list[str] = []
    for r in roots:
        if not any(r == k or r.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(r)
    return kept


def _too_wide() -> tuple[str, ...]:
    """Directories never scanned on a guess: the whole file system, the home directory."""
    return ("/", os.path.expanduser("~"))


def _levels_below(path: str, parent: str) -> int:
    return len(os.path.relpath(path, parent).split(os.sep))


def overlays_of(base: str, roots: Sequence[str]) -> list[str]:
    """Images found under ``roots`` whose backing file is ``base`` (through links and ``..``)."""
    from imagegui.core.graph import ChainGraph
    from imagegui.core.scan import scan_directory

    found: set[str] = set()
    for root in roots:
        graph = ChainGraph.build(scan_directory(root))
        node = graph.resolve(base)
        if node is not None:
            found.update(graph.children(node))
    # The same file reached under two names (a symlink) counts once.
    unique: dict[tuple[int, int] | str, str] = {}
    for p in sorted(found):
        unique.setdefault(file_id(p) or p, p)
    return sorted(unique.values())
