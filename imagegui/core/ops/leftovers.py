"""Removing the temporary files an interrupted flatten left behind (``leftover-file`` problems).

A flatten writes ``.OUT.<8 hex>.partial`` beside OUT and renames it when done; a killed imagegui
(or a power cut) leaves it behind, and the scan reports it as a leftover. Removing it is the only
deletion imagegui offers, so it is narrow on purpose: only a regular file (never a symbolic link)
whose name matches the pattern exactly, that no process has open and that did not change in the
last seconds (a flatten that is just starting has created the file but qemu-img may not have
opened it yet). Each file is checked again right before it is unlinked, and it must still be the
very file the plan listed (same inode, size and modification time); anything else is kept with
the reason. Plan first (the CLI's dry run, the window's confirmation), then run, like the other
operations.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, ClassVar

from imagegui.core.jobs import CancelToken, ProgressFn
from imagegui.core.ops.guards import find_overlays, nearby_roots, not_used_by_domain, read_domains
from imagegui.core.ops.plan import Finding, OpResult, Plan, refuse
from imagegui.core.read.backing import canonical
from imagegui.core.read.partials import LEFTOVER_RE
from imagegui.core.units import human_size

if TYPE_CHECKING:
    from imagegui.core.virt.inventory import DomainIndex, DomainSource

#: A file changed this recently may belong to a flatten that is starting (created, not yet open).
SETTLE_SECONDS = 5.0

#: Per-file refusals: they keep that file, not the whole plan (the others are still removed).
FILE_REFUSALS = (
    "in-use",
    "used-by-vm",
    "has-overlays",
    "not-leftover",
    "too-new",
    "changed",
    "gone",
)


@dataclass(frozen=True)
class Leftover:
    """One temporary file as the plan saw it."""

    path: str
    size: int
    mtime: float
    #: (st_dev, st_ino, st_size, st_mtime_ns): the file removed must still be this one.
    stamp: tuple[int, int, int, int]

    @property
    def out(self) -> str:
        """The image the interrupted flatten was writing."""
        m = LEFTOVER_RE.match(os.path.basename(self.path))
        return os.path.join(os.path.dirname(self.path), m[1]) if m else ""

    def age(self, now: float | None = None) -> str:
        return human_age((now or time.time()) - self.mtime)

    def describe(self, now: float | None = None) -> str:
        return f"{self.path} ({human_size(self.size)}, last written {self.age(now)} ago)"


def human_age(seconds: float) -> str:
    """``42 s``, ``7 min``, ``3 h``, ``12 days``: how old a leftover is, roughly."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def _stamp(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def search_roots(path: str) -> list[str]:
    """Where a leftover's would-be overlays are looked for: its own folder (and what
    ``guards.nearby_roots`` adds for it); the plan states them."""
    return nearby_roots(path)


def examine(
    path: str,
    roots: Sequence[str],
    now: float | None = None,
    index: DomainIndex | None = None,
) -> Leftover | Finding:
    """The file as a removable leftover, or the refusal that keeps it. ``roots``: where images
    that back onto it are searched for (``search_roots``); ``index``: libvirt's VMs, one of
    which may have been pointed at the file (whatever its name, it is then that VM's disk)."""
    from imagegui.core.read.holders import holders

    name = os.path.basename(path)
    if not (name.endswith(".partial") and LEFTOVER_RE.match(name)):
        return refuse(
            "not-leftover",
            f"{path} is not a temporary file of imagegui's (.NAME.<8 hex digits>.partial); kept",
            paths=(path,),
        )
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return refuse("gone", f"{path} no longer exists", paths=(path,))
    except OSError as exc:
        return refuse("gone", f"{path} cannot be read: {exc.strerror}", paths=(path,))
    if stat.S_ISDIR(st.st_mode):
        return _examine_folder(path, st, roots, now, index)
    if not stat.S_ISREG(st.st_mode):
        return refuse(
            "not-leftover",
            f"{path} is not a regular file (a link or special file); kept",
            paths=(path,),
        )
    if users := holders(path):
        who = ", ".join(h.describe() for h in users)
        return refuse(
            "in-use", f"{path} is open by {who} (a flatten still writing it?); kept", paths=(path,)
        )
    for vm in not_used_by_domain(
        path, "file", index, "removing it deletes {vm} disk: not a leftover; kept", "refuse"
    ):
        return replace(vm, paths=(path,))
    # A flatten's temporary file backs nothing; a file some image backs onto is a base that
    # only looks like one (renamed by hand, or a crafted name), and removing it loses data.
    if overlays := find_overlays(path, roots):
        return refuse(
            "has-overlays",
            f"{path} is the backing file of {', '.join(overlays)}: not a leftover; kept",
            paths=(path,),
        )
    age = (now or time.time()) - st.st_mtime
    if age < SETTLE_SECONDS:
        return refuse(
            "too-new",
            f"{path} changed {age:.0f} s ago and may belong to a flatten that is starting; kept "
            "(try again in a moment)",
            paths=(path,),
        )
    return Leftover(path, st.st_size, st.st_mtime, _stamp(st))


def _examine_folder(
    path: str,
    st: os.stat_result,
    roots: Sequence[str],
    now: float | None,
    index: DomainIndex | None,
) -> Leftover | Finding:
    """A move's folder copy left behind: removable only while no process has a file in it
    open, no VM uses one, no image outside it backs onto one, and nothing in it changed for a
    while (a move copying into it now writes its files)."""
    from imagegui.core.read.holders import holders_by_path
    from imagegui.core.read.partials import tree_bytes, tree_files

    files = tree_files(path)
    users = {h for found in holders_by_path(files).values() for h in found}
    if users:
        who = ", ".join(sorted(h.describe() for h in users))
        return refuse(
            "in-use", f"a file in {path} is open by {who} (a move still copying?); kept",
            paths=(path,),
        )  # fmt: skip
    for f in files:
        for vm in not_used_by_domain(
            f, "file", index, "removing it deletes {vm} disk: not a leftover; kept", "refuse"
        ):
            return replace(vm, paths=(path,))
        outside = [o for o in find_overlays(f, roots) if not o.startswith(path + os.sep)]
        if outside:
            return refuse(
                "has-overlays",
                f"{f} is the backing file of {', '.join(outside)}: {path} is not a leftover; kept",
                paths=(path,),
            )
    newest = max([st.st_mtime, *(_mtime(f) for f in files)])
    age = (now or time.time()) - newest
    if age < SETTLE_SECONDS:
        return refuse(
            "too-new",
            f"{path} changed {age:.0f} s ago and may belong to a move that is copying; kept "
            "(try again in a moment)",
            paths=(path,),
        )
    return Leftover(path, tree_bytes(path), newest, _stamp(st))


def _mtime(path: str) -> float:
    try:
        return os.lstat(path).st_mtime
    except OSError:
        return 0.0


@dataclass(kw_only=True)
class CleanResult(OpResult):
    removed: list[Leftover] = field(default_factory=list)
    #: The refusals that kept a file (the plan's and those found right before removing).
    kept: list[Finding] = field(default_factory=list)
    #: Removals that failed: "path: reason".
    errors: list[str] = field(default_factory=list)
    #: Bytes freed.
    freed: int = 0


@dataclass(kw_only=True)
class CleanLeftoversPlan(Plan[CleanResult]):
    op: ClassVar[str] = "clean-leftovers"
    searched_for: ClassVar[str] = "images backing onto these files"

    paths: tuple[str, ...]
    leftovers: list[Leftover] = field(default_factory=list)

    def blocking(self) -> list[Finding]:
        # A kept file keeps only itself: the others are still removed (the CLI exits 2 after).
        # With nothing left to remove, the plan as a whole is refused.
        every = super().blocking()
        return [f for f in every if f.code not in FILE_REFUSALS] if self.leftovers else every

    @property
    def kept(self) -> list[Finding]:
        return [f for f in self.findings if f.refuses and f.code in FILE_REFUSALS]

    def replan(self) -> CleanLeftoversPlan:
        return plan_clean_leftovers(self.paths, domains=self.domains)

    def _execute(self, progress: ProgressFn, cancel: CancelToken) -> CleanResult:
        removed: list[Leftover] = []
        kept: list[Finding] = list(self.kept)
        errors: list[str] = []
        index, _ = read_domains(self.domains)
        for i, planned in enumerate(self.leftovers):
            if cancel.cancelled:
                kept.append(refuse("cancelled", f"{planned.path}: not removed (cancelled)"))
                continue
            # Again, right before the unlink, over the same roots.
            now = examine(planned.path, search_roots(planned.path), index=index)
            if isinstance(now, Finding):
                kept.append(now)
            elif now.stamp != planned.stamp:
                kept.append(
                    refuse(
                        "changed",
                        f"{planned.path} was replaced or written since the plan; kept",
                        paths=(planned.path,),
                    )
                )
            else:
                try:
                    if os.path.isdir(planned.path) and not os.path.islink(planned.path):
                        shutil.rmtree(planned.path)  # a move's folder copy
                    else:
                        os.unlink(planned.path)
                except FileNotFoundError:
                    kept.append(refuse("gone", f"{planned.path} no longer exists"))
                except OSError as exc:
                    errors.append(f"{planned.path}: {exc.strerror}")
                else:
                    removed.append(planned)
            progress((i + 1) / len(self.leftovers))
        freed = sum(x.size for x in removed)
        message = f"removed {len(removed)} leftover file(s), {human_size(freed)} freed"
        if kept:
            message += f"; kept {len(kept)}"
        if errors:
            message += f"; {len(errors)} could not be removed"
        return CleanResult(
            message=message,
            changed=[x.path for x in removed],
            removed=removed,
            kept=kept,
            errors=errors,
            freed=freed,
        )


def plan_clean_leftovers(
    paths: list[str] | tuple[str, ...], domains: DomainSource | None = None
) -> CleanLeftoversPlan:
    """Plans removing ``paths`` (leftovers the scan reported, or files the user named);
    ``domains``: where to ask libvirt whether a VM uses one of them (then it is kept)."""
    paths = tuple(dict.fromkeys(canonical(os.fspath(p)) for p in paths))
    now = time.time()
    leftovers: list[Leftover] = []
    index, findings = read_domains(domains)
    searched: list[str] = []
    for path in paths:
        roots = search_roots(path)
        searched += [r for r in roots if r not in searched]
        got = examine(path, roots, now, index)
        if isinstance(got, Finding):
            findings.append(got)
        else:
            leftovers.append(got)
    changes = [f"removes {x.describe(now)}" for x in leftovers]
    total = sum(x.size for x in leftovers)
    title = f"remove {len(leftovers)} leftover file(s) ({human_size(total)})"
    return CleanLeftoversPlan(
        title=title,
        changes=changes,
        findings=findings,
        searched=tuple(searched),
        paths=paths,
        leftovers=leftovers,
        domains=domains,
    )


def found_leftovers(root: str) -> list[str]:
    """Every flatten temporary file the scan of ``root`` found: left over or still being
    written (the plan keeps the latter and says who writes it)."""
    from imagegui.core.read.scan import scan_directory

    result = scan_directory(root)
    return sorted(e.path for e in result.errors if LEFTOVER_RE.match(os.path.basename(e.path)))
