"""Cleaning up a directory: what the space accounting finds reclaimable, moved to the Trash.

``core.chains.space`` lists the reclaimable files by category (``leftover``, ``empty-overlay``,
``orphan`` older than the age limit, ``nova-unused-base`` by Nova's own rules); a clean is one
delete plan (``ops.delete``, ``partial``: a file a guard keeps keeps only itself) over the
categories chosen, with the same guards as any delete, examined again right before each move.
The report is a snapshot; the plan asks the files, the locks and libvirt afresh.

Two things are stricter here than in the report. An empty overlay is offered only once it is as
old as the age limit: an overlay made a minute ago is empty because its VM has not started yet.
A leftover temporary file goes through ``leftovers.examine`` as ``clean-leftovers`` does (kept
while any process has it open, or when it changed in the last seconds). And Nova's caches: a
``_base`` directory is often shared over NFS by several compute hosts, whose instance disks are
invisible from here, so the plan warns that a base only they use looks unused.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, ClassVar

from imagegui.core.chains.space import (
    DAY,
    DEFAULT_OLDER_THAN_DAYS,
    Category,
    Reclaimable,
    SpaceReport,
)
from imagegui.core.jobs import CancelToken, Job, ProgressFn
from imagegui.core.ops.delete import DeletePlan, plan_delete
from imagegui.core.ops.guards import read_domains
from imagegui.core.ops.plan import Finding, warn
from imagegui.core.units import counted, human_size

if TYPE_CHECKING:
    from imagegui.core.read.extents import LayerMap
    from imagegui.core.read.model import ImageInfo
    from imagegui.core.virt.inventory import DomainSource

#: What ``clean`` takes without ``--nova``; Nova's caches only when asked.
DEFAULT_CATEGORIES = (Category.LEFTOVER, Category.EMPTY_OVERLAY, Category.ORPHAN)

NFS_WARNING = (
    "other compute hosts that share this _base folder (over NFS) are not visible from here: a "
    "cached base only their instances use looks unused and would be moved to the Trash; check "
    "them before emptying the Trash"
)


def categories(nova: bool = False) -> tuple[Category, ...]:
    return (*DEFAULT_CATEGORIES, Category.NOVA_UNUSED_BASE) if nova else DEFAULT_CATEGORIES


def select(
    report: SpaceReport,
    chosen: Iterable[Category],
    older_than_days: float | None = None,
    now: float | None = None,
) -> list[Reclaimable]:
    """The report's reclaimable files in the ``chosen`` categories; empty overlays (and
    orphans) only when last written more than ``older_than_days`` ago (the report's limit when
    None)."""
    wanted = set(chosen)
    limit = (report.older_than_days if older_than_days is None else older_than_days) * DAY
    now = time.time() if now is None else now
    out = []
    for r in report.reclaimable:
        if r.category not in wanted:
            continue
        if r.category in (Category.EMPTY_OVERLAY, Category.ORPHAN):
            try:
                age = now - os.lstat(r.path).st_mtime
            except OSError:
                continue
            if age <= limit:
                continue
        out.append(r)
    return out


@dataclass(kw_only=True)
class CleanPlan(DeletePlan):
    """A delete plan over a report's reclaimable files, which it keeps for the listing."""

    op: ClassVar[str] = "clean"

    root: str = ""
    reclaimable: list[Reclaimable] = field(default_factory=list)
    #: Findings of the clean itself (the NFS warning, leftovers kept, the report's notes),
    #: carried over when the plan is made again.
    clean_findings: list[Finding] = field(default_factory=list)

    @property
    def reclaimed(self) -> int:
        """Bytes the plan moves to the Trash (freed when it is emptied)."""
        return sum(i.frees for i in self.items)

    def replan(self) -> CleanPlan:
        return _wrap(super().replan(), self.root, self.reclaimable, self.clean_findings)


def _wrap(
    plan: DeletePlan, root: str, reclaimable: list[Reclaimable], extra: list[Finding]
) -> CleanPlan:
    values = {f.name: getattr(plan, f.name) for f in fields(plan) if f.init}
    values["findings"] = [*extra, *plan.findings]
    size = human_size(sum(i.frees for i in plan.items))
    verb = "delete" if plan.permanent else "move"
    where = " permanently" if plan.permanent else " to the Trash"
    values["title"] = f"clean up {root}: {verb} {counted(len(plan.items), 'file')}{where} ({size})"
    return CleanPlan(**values, root=root, reclaimable=reclaimable, clean_findings=extra)


def plan_clean(
    reclaimable: Sequence[Reclaimable],
    root: str,
    domains: DomainSource | None = None,
    permanent: bool = False,
    notes: Iterable[str] = (),
) -> CleanPlan:
    """One delete plan for ``reclaimable`` (``select``): a file a guard keeps keeps only itself.
    ``notes``: sentences of the report worth a warning (libvirt was not reachable: a VM
    defined there and shut off holds no lock, so its disk looks like an orphan)."""
    from imagegui.core.ops.leftovers import examine as examine_leftover
    from imagegui.core.ops.leftovers import search_roots

    extra: list[Finding] = [warn("space-note", n) for n in notes]
    if any(r.category is Category.NOVA_UNUSED_BASE for r in reclaimable):
        extra.append(warn("nova-shared-base", NFS_WARNING))
    paths: list[str] = []
    index = None
    for r in reclaimable:
        if r.category is Category.LEFTOVER:
            if index is None and domains is not None:
                index, _ = read_domains(domains)
            kept = examine_leftover(r.path, search_roots(r.path), index=index)
            if isinstance(kept, Finding):
                extra.append(kept)
                continue
        paths.append(r.path)
    plan = plan_delete(paths, permanent=permanent, domains=domains, roots=(root,), partial=True)
    if not paths:
        plan.findings = [f for f in plan.findings if f.code != "nothing"]
    return _wrap(plan, root, list(reclaimable), extra)


@dataclass(frozen=True)
class CleanRequest:
    """What to clean: a directory, the categories, the age limit, the libvirt connections."""

    root: str
    nova: bool = False
    older_than_days: float = DEFAULT_OLDER_THAN_DAYS
    domains: DomainSource | None = None
    qemu_img: str = ""


def clean_job(request: CleanRequest) -> Job[CleanPlan]:
    """Scan, allocation maps, space report and the clean plan, as one job for a worker or the
    terminal (the maps take the time: progress and cancel are theirs)."""

    def run(progress: ProgressFn, cancel: CancelToken) -> CleanPlan:
        from imagegui.core.chains.graph import ChainGraph
        from imagegui.core.chains.space import read_maps, space_report
        from imagegui.core.qemu.qemuimg import read_layer_map
        from imagegui.core.read.scan import scan_directory

        index, _ = read_domains(request.domains)
        graph = ChainGraph(scan_directory(request.root), domains=index)
        cancel.raise_if_cancelled()

        def reader(img: ImageInfo, token: CancelToken) -> LayerMap:
            return read_layer_map(img, token, qemu_img=request.qemu_img)

        maps = read_maps(graph, reader, progress, cancel)
        report = space_report(graph, maps, older_than_days=request.older_than_days)
        chosen = select(report, categories(request.nova), request.older_than_days)
        notes = [m for p, m in report.notes if p == report.root]
        return plan_clean(chosen, graph.root, request.domains, notes=notes)

    return Job(f"Looking for reclaimable space in {request.root}", run)
