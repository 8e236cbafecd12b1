"""Deleting images safely: to the Trash (restorable) or, on request, permanently.

Deleting a base breaks every image that backs onto it, and deleting a disk a VM uses breaks that
VM, silently until it next opens the file. So a delete is a plan like any other operation
(``plan_delete``): refused for a file anything backs onto ("has-overlays", naming them) unless
the user deletes the whole tree at once (``with_overlays``: every image that depends on it,
recursively, listed and deleted top first), a file a running QEMU holds (``guards.not_in_use``)
or a libvirt VM uses, running or shut off (``guards.not_used_by_domain``, ``used-by-vm``),
anything that is not a regular file (a symbolic link would only lose its name, a device is not
an image), and a file that is gone. Each file is examined again right before it moves, and must
still be the very file the plan listed (same device, inode, size and modification time), as
``leftovers`` does for its unlinks.

To the Trash (``ops.trash``) the file is renamed, never copied: a file whose volume has no usable
Trash is refused with what a copy would cost, and deleting permanently is the way out. Each
trashed file is journalled (``journal.DeleteEntry``) so the window can offer "Restore …" and
``plan_restore`` puts it back byte-identical. A permanent delete unlinks and cannot be undone;
the plan says so.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, ClassVar

from imagegui.core.jobs import CancelToken, ProgressFn
from imagegui.core.ops import journal
from imagegui.core.ops.guards import nearby_roots, not_in_use, not_used_by_domain
from imagegui.core.ops.guards import read_domains as _read_domains
from imagegui.core.ops.plan import Finding, OpResult, Plan, info, refuse, warn
from imagegui.core.ops.trash import (
    RestoreRefused,
    Trashed,
    TrashSpot,
    TrashUnavailable,
    home_trash,
    restore,
    restore_problem,
    trash,
    trash_spot,
)
from imagegui.core.read.backing import canonical, is_inside
from imagegui.core.read.fileid import file_id
from imagegui.core.read.partials import is_leftover_dir
from imagegui.core.units import counted, human_size

if TYPE_CHECKING:
    from imagegui.core.chains.graph import ChainGraph
    from imagegui.core.virt.inventory import DomainIndex, DomainSource

#: Refusals that keep one file: with ``partial`` the plan's other files still go (``clean``).
FILE_REFUSALS = (
    "has-overlays",
    "in-use",
    "used-by-vm",
    "not-a-file",
    "symlink",
    "gone",
    "in-trash",
    "no-trash",
    "not-writable",
    "changed",
)


@dataclass(frozen=True)
class DeleteItem:
    """One file as the plan saw it."""

    path: str
    #: Apparent size and bytes allocated on disk (what deleting it frees, sparse files included).
    size: int
    on_disk: int
    #: (st_dev, st_ino, st_size, st_mtime_ns): the file moved must still be this one.
    stamp: tuple[int, int, int, int]
    #: Other names of the same file (hard links): its space is freed only with the last one.
    links: int = 1
    #: Where it goes; None for a permanent delete.
    spot: TrashSpot | None = None
    #: The file it is in the plan because of (it backs onto it, directly or further down).
    overlay_of: str | None = None
    #: The image whose data it holds (a VMDK extent, a qcow2 external data file): it goes
    #: with that image, right after it.
    extent_of: str | None = None

    @property
    def frees(self) -> int:
        """Bytes its deletion frees once gone for good (nothing while other names remain)."""
        return self.on_disk if self.links <= 1 else 0

    def describe(self) -> str:
        size = f"{human_size(self.on_disk)} on disk"
        if self.links > 1:
            size += f", {counted(self.links - 1, 'other name')}: nothing freed"
        why = f"; backs onto {self.overlay_of}" if self.overlay_of else ""
        if self.extent_of:
            why = f"; holds the data of {self.extent_of}"
        return f"{self.path} ({size}{why})"


def _stamp(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _kind(mode: int) -> str:
    from imagegui.core.read.probe import file_kind

    return file_kind(mode)


def examine(
    path: str,
    users: Users,
    index: DomainIndex | None,
    permanent: bool,
    overlays_ok: bool = False,
    owner_ok: bool = False,
) -> DeleteItem | Finding:
    """The file as something that can be deleted now, or the refusal that keeps it. ``users``:
    the images that back onto it or hold data in it; ``overlays_ok``: they are in the plan
    too and deleted before it (``with_overlays``), so they are no reason to keep it;
    ``owner_ok``: the file is a data file of an image the plan deletes before it."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return refuse("gone", f"{path} does not exist (deleted already?)", paths=(path,))
    except OSError as exc:
        return refuse("gone", f"{path} cannot be read: {exc.strerror}", paths=(path,))
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return refuse(
            "symlink",
            f"{path} is a symbolic link (to {target}): deleting it would remove only the name "
            "and free nothing, and the image stays; delete the file it leads to instead",
            paths=(path,),
        )
    if stat.S_ISDIR(st.st_mode) and is_leftover_dir(path):
        return _leftover_folder(path, st, permanent)
    if not stat.S_ISREG(st.st_mode):
        return refuse(
            "not-a-file",
            f"{path} is {_kind(st.st_mode)}, not an image file; imagegui deletes only files",
            paths=(path,),
        )
    folder = os.path.dirname(path)
    if not os.access(folder, os.W_OK | os.X_OK):
        why = "is not writable by this user"
        try:
            if os.statvfs(folder).f_flag & os.ST_RDONLY:
                why = "is on a file system mounted read-only"
        except OSError:
            pass
        return refuse(
            "not-writable", f"{path} cannot be deleted: its folder {folder} {why}", paths=(path,)
        )
    if lock := not_in_use(path, "image", index=index):
        return replace(lock, paths=(path,))
    for vm in not_used_by_domain(
        path, "image", index, "deleting it breaks {vm} disk", stopped="refuse"
    ):
        return replace(vm, paths=(path,))
    if not overlays_ok and (overlays := users.overlays(path)):
        names = ", ".join(overlays)
        them = "them" if len(overlays) > 1 else "it"
        return refuse(
            "has-overlays",
            f"{path} is the backing file of {names}: deleting it breaks {them}. Delete {them} "
            "first, or delete the image together with everything that depends on it",
            fix_cli="add --with-overlays to the same command (deletes them too)",
            paths=tuple(overlays),
        )
    if not owner_ok and (owners := users.extent_owners(path)):
        names = ", ".join(owners)
        return refuse(
            "holds-data",
            f"{path} holds the data of {names} (an extent or external data file): deleting it "
            f"destroys that image's data; delete {names} instead, which takes this file along",
            paths=tuple(owners),
        )
    spot = None if permanent else _trash_for(path)
    if isinstance(spot, Finding):
        return spot
    return DeleteItem(
        path=path,
        size=st.st_size,
        on_disk=st.st_blocks * 512,
        stamp=_stamp(st),
        links=st.st_nlink,
        spot=spot,
    )


def _trash_for(path: str) -> TrashSpot | Finding:
    """The Trash ``path`` goes to, or why it cannot go to one (it is in the Trash already, or
    only a copy could take it there)."""
    if is_inside(path, home_trash()):
        return refuse("in-trash", f"{path} is in the Trash already", paths=(path,))
    try:
        spot = trash_spot(path)
    except TrashUnavailable as exc:
        return refuse(
            "no-trash",
            f"{exc}; delete it permanently instead (it cannot be restored then)",
            fix_cli="add --permanent to the same command",
            paths=(path,),
        )
    if is_inside(path, spot.directory):
        return refuse("in-trash", f"{path} is in the Trash already", paths=(path,))
    return spot


def _leftover_folder(path: str, st: os.stat_result, permanent: bool) -> DeleteItem | Finding:
    """A move's folder copy left behind (``clean`` offers it, checked as a leftover first):
    deleted whole, unless a file in it is open (a move still copying into it)."""
    from imagegui.core.read.holders import holders_by_path
    from imagegui.core.read.partials import tree_bytes, tree_files

    users = {h for found in holders_by_path(tree_files(path)).values() for h in found}
    if users:
        who = ", ".join(sorted(h.describe() for h in users))
        return refuse("in-use", f"a file in {path} is open by {who}; kept", paths=(path,))
    spot = None if permanent else _trash_for(path)
    if isinstance(spot, Finding):
        return spot
    size = tree_bytes(path)
    return DeleteItem(path=path, size=size, on_disk=size, stamp=_stamp(st), spot=spot)


def data_files(path: str) -> list[str]:
    """The other files ``path``'s image keeps its data in (a VMDK's extents, a qcow2's external
    data file): deleting the image deletes them too. Empty for a file that is no image."""
    from imagegui.core.read.probe import ProbeError, probe_image

    try:
        img = probe_image(path)
    except (ProbeError, OSError):
        return []
    return [canonical(e) for e in dict.fromkeys(img.extents) if canonical(e) != path]


class Users:
    """Which images need a file: those that back onto it and those that keep data in it (a VMDK
    descriptor its extent), found in one scan of each of ``roots``, taken when first asked. A
    plan asks about many files and each would otherwise scan every folder again; files gone
    since the scan (the overlays a run has already moved) no longer count."""

    def __init__(self, roots: Iterable[str]):
        self.roots = tuple(roots)
        self._graphs: list[ChainGraph] | None = None

    def _scanned(self) -> list[ChainGraph]:
        if self._graphs is None:
            from imagegui.core.chains.graph import ChainGraph
            from imagegui.core.read.scan import scan_directory

            self._graphs = [ChainGraph(scan_directory(r)) for r in self.roots]
        return self._graphs

    def overlays(self, base: str) -> list[str]:
        """The images that back onto ``base`` (through links and ``..``), as
        ``guards.find_overlays`` finds them, each file once."""
        found: set[str] = set()
        for graph in self._scanned():
            node = graph.resolve(base)
            if node is not None:
                found.update(c for c in graph.children(node) if os.path.lexists(c))
        unique: dict[tuple[int, int] | str, str] = {}
        for p in sorted(found):
            unique.setdefault(file_id(p) or p, p)
        return sorted(unique.values())

    def extent_owners(self, path: str) -> list[str]:
        """The images that keep data in ``path`` (as an extent or data file). Only a raw file
        can be one (an extent, a data file has no header): other files are not looked up."""
        from imagegui.core.read.probe import ProbeError, probe_image

        try:
            if probe_image(path).format != "raw":
                return []
        except (ProbeError, OSError):
            pass
        ident = file_id(path)
        found: set[str] = set()
        for graph in self._scanned():
            for img in graph.scan.images.values():
                if not os.path.lexists(img.path):
                    continue
                for extent in img.extents:
                    if extent != img.path and file_id(extent) == ident:
                        found.add(img.path)
        return sorted(found)


def dependents(path: str, users: Users) -> list[tuple[str, str]]:
    """Every image that depends on ``path`` (backs onto it, or onto one that does, ...), each
    with the file it backs onto, in the order they can be deleted: the tops first, each image
    only after all that back onto it."""
    order: list[tuple[str, str]] = []
    seen = {path}

    def visit(base: str) -> None:
        for child in users.overlays(base):
            if child in seen:
                continue  # a loop, or reached twice: once is enough
            seen.add(child)
            visit(child)
            order.append((child, base))

    visit(path)
    return order


@dataclass(kw_only=True)
class DeleteResult(OpResult):
    """What a delete did: the files moved to the Trash (with where), those removed for good,
    those kept (and why) and those whose removal failed."""

    trashed: list[Trashed] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: Bytes freed now (permanent deletes), and bytes now held by the Trash (freed when it is
    #: emptied).
    freed: int = 0
    in_trash: int = 0


@dataclass(kw_only=True)
class DeletePlan(Plan[DeleteResult]):
    op: ClassVar[str] = "delete"
    searched_for: ClassVar[str] = "images that back onto these files"

    paths: tuple[str, ...]
    permanent: bool = False
    with_overlays: bool = False
    #: Further folders to search for images that back onto the files (``--root``, the window's
    #: scanned folder).
    roots: tuple[str, ...] = ()
    #: A refused file keeps only itself; the others are still deleted (``clean``). Otherwise
    #: one refusal refuses the whole plan.
    partial: bool = False
    #: In the order they are deleted (the tops of a tree first).
    items: list[DeleteItem] = field(default_factory=list)

    def blocking(self) -> list[Finding]:
        every = super().blocking()
        if self.partial and self.items:
            return [f for f in every if f.code not in FILE_REFUSALS]
        return every

    @property
    def kept(self) -> list[Finding]:
        """The refusals that keep a file (``partial`` plans delete the others)."""
        return [f for f in self.findings if f.refuses and f.code in FILE_REFUSALS]

    @property
    def total(self) -> int:
        """Bytes on disk of every file the plan deletes."""
        return sum(i.on_disk for i in self.items)

    def replan(self) -> DeletePlan:
        fresh = plan_delete(
            self.paths,
            permanent=self.permanent,
            with_overlays=self.with_overlays,
            domains=self.domains,
            roots=self.roots,
            partial=self.partial,
        )
        if [(i.path, i.stamp) for i in fresh.items] != [(i.path, i.stamp) for i in self.items]:
            fresh.findings.append(
                refuse(
                    "plan-changed",
                    "the files changed since this plan was made (an image was added, written "
                    "or removed); review it again",
                )
            )
        return fresh

    def _execute(self, progress: ProgressFn, cancel: CancelToken) -> DeleteResult:
        index, _ = _read_domains(self.domains)
        # The folders are scanned again as the run starts (not once per file: a clean moves
        # hundreds); each file's own state, locks and VMs are looked at right before it moves.
        users = Users(self.searched)
        kept: list[Finding] = list(self.kept)
        errors: list[str] = []
        trashed: list[Trashed] = []
        removed: list[str] = []
        freed = in_trash = 0
        batch = ""
        for n, planned in enumerate(self.items):
            if cancel.cancelled:
                kept.append(refuse("cancelled", f"{planned.path}: not deleted (cancelled)"))
                continue
            # Again, right before it moves: the very file, still free of users.
            now = examine(planned.path, users, index, self.permanent)
            if isinstance(now, Finding):
                kept.append(now)
                progress((n + 1) / len(self.items))
                continue
            if now.stamp != planned.stamp:
                kept.append(
                    refuse(
                        "changed",
                        f"{planned.path} was replaced or written since the plan; kept",
                        paths=(planned.path,),
                    )
                )
                progress((n + 1) / len(self.items))
                continue
            try:
                if self.permanent and stat.S_ISDIR(os.lstat(planned.path).st_mode):
                    shutil.rmtree(planned.path)  # a move's leftover folder copy
                    removed.append(planned.path)
                    freed += planned.frees
                elif self.permanent:
                    os.unlink(planned.path)
                    removed.append(planned.path)
                    freed += planned.frees
                else:
                    moved = trash(planned.path, now.spot)
                    trashed.append(moved)
                    in_trash += planned.frees
                    entry = journal.delete_entry_for(moved, batch, planned.extent_of or "")
                    batch = entry.batch
                    try:
                        journal.record_delete(entry)
                    except journal.JournalError as exc:
                        errors.append(str(exc))
            except TrashUnavailable as exc:
                kept.append(
                    refuse(
                        "no-trash",
                        f"{exc}; delete it permanently instead (it cannot be restored then)",
                        fix_cli="add --permanent to the same command",
                        paths=(planned.path,),
                    )
                )
            except OSError as exc:
                errors.append(f"{planned.path}: {exc.strerror or exc}")
            progress((n + 1) / len(self.items))
        return DeleteResult(
            message=_summary(self.permanent, trashed, removed, kept, errors, freed, in_trash),
            changed=[t.original for t in trashed] + removed,
            trashed=trashed,
            removed=removed,
            kept=kept,
            errors=errors,
            freed=freed,
            in_trash=in_trash,
            cli_hint=_undo_hint(trashed),
        )


def _summary(
    permanent: bool,
    trashed: list[Trashed],
    removed: list[str],
    kept: list[Finding],
    errors: list[str],
    freed: int,
    in_trash: int,
) -> str:
    if permanent:
        message = f"deleted {counted(len(removed), 'file')} permanently, {human_size(freed)} freed"
    else:
        message = (
            f"moved {counted(len(trashed), 'file')} to the Trash ({human_size(in_trash)}, freed "
            "when the Trash is emptied)"
        )
    if kept:
        message += f"; kept {len(kept)}"
    if errors:
        message += f"; {counted(len(errors), 'error')}"
    return message


def _undo_hint(trashed: list[Trashed]) -> str:
    if not trashed:
        return ""
    names = " ".join(_quote(t.original) for t in trashed[:3])
    more = " ..." if len(trashed) > 3 else ""
    return f"imagegui delete --undo {names}{more} puts it back"


def _quote(path: str) -> str:
    import shlex

    return shlex.quote(path)


def plan_delete(
    paths: Iterable[str | os.PathLike[str]],
    permanent: bool = False,
    with_overlays: bool = False,
    domains: DomainSource | None = None,
    roots: Iterable[str] = (),
    partial: bool = False,
) -> DeletePlan:
    """Plans deleting ``paths`` (to the Trash, or ``permanent``ly). ``with_overlays``: every
    image that depends on one of them is deleted too, first, and listed; otherwise such a
    file is refused naming them. ``domains``: where to ask libvirt which VMs use the files;
    ``roots``: folders searched for dependent images besides the files' own (``nearby_roots``);
    ``partial``: a refused file keeps only itself."""
    named = tuple(dict.fromkeys(canonical(os.fspath(p)) for p in paths))
    extra = tuple(canonical(r) for r in roots)
    index, findings = _read_domains(domains)
    search = nearby_roots(*named, extra=extra) if named else list(extra)
    users = Users(search)
    items: list[DeleteItem] = []
    planned: set[str] = set()

    def add(got: DeleteItem | Finding) -> None:
        """The item (then its data files, right after it) or the refusal."""
        if isinstance(got, Finding):
            findings.append(got)
            return
        items.append(got)
        for extent in data_files(got.path):
            if extent in planned:
                continue
            planned.add(extent)
            part = examine(extent, users, index, permanent, owner_ok=True)
            if isinstance(part, Finding):
                findings.append(part)
            else:
                items.append(replace(part, extent_of=got.path))

    chosen = set(named)
    for path in named:
        if path in planned:
            continue  # named and also above another named file: deleted with it
        tree = dependents(path, users)
        # Everything that depends on it named too: they go together, the tops first, as
        # with_overlays would take them.
        together = bool(tree) and all(child in chosen for child, _ in tree)
        if with_overlays or together:
            for child, base in tree:
                if child in planned:
                    continue
                planned.add(child)
                got = examine(child, users, index, permanent, overlays_ok=True)
                add(got if isinstance(got, Finding) else replace(got, overlay_of=base))
        planned.add(path)
        add(examine(path, users, index, permanent, overlays_ok=with_overlays or together))
    findings += _notes(items, permanent)
    if not items and not findings:
        findings.append(refuse("nothing", "no file to delete"))
    return DeletePlan(
        title=_title(items, permanent),
        changes=[_change(i, permanent) for i in items],
        findings=findings,
        searched=tuple(search),
        domains=domains,
        paths=named,
        permanent=permanent,
        with_overlays=with_overlays,
        roots=extra,
        partial=partial,
        items=items,
    )


def _title(items: list[DeleteItem], permanent: bool) -> str:
    size = human_size(sum(i.on_disk for i in items))
    what = os.path.basename(items[0].path) if len(items) == 1 else counted(len(items), "file")
    if permanent:
        return f"delete {what} permanently ({size})"
    return f"move {what} to the Trash ({size})"


def _change(item: DeleteItem, permanent: bool) -> str:
    if permanent:
        return f"deletes {item.describe()} permanently"
    where = item.spot.describe() if item.spot else "the Trash"
    return f"moves {item.describe()} to {where}"


def _notes(items: list[DeleteItem], permanent: bool) -> list[Finding]:
    out: list[Finding] = []
    if not items:
        return out
    if permanent:
        out.append(
            warn(
                "permanent",
                f"deleted permanently: {counted(len(items), 'file')} cannot be restored or undone",
            )
        )
    elif problem := journal.predicted_problem():
        out.append(
            warn(
                "journal",
                f"{problem}; the files can still be restored from the desktop's Trash",
            )
        )
    else:
        out.append(
            info("restorable", "the files can be restored from the Trash until it is emptied")
        )
    linked = [i for i in items if i.links > 1]
    if linked:
        out.append(
            info(
                "hard-links",
                f"{', '.join(i.path for i in linked)} also "
                f"{'have' if len(linked) > 1 else 'has'} other names (hard links): the space "
                "stays in use under those",
            )
        )
    return out


# --------------------------------------------------------------------------- restore


@dataclass(kw_only=True)
class RestoreResult(OpResult):
    restored: list[str] = field(default_factory=list)
    kept: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class RestorePlan(Plan[RestoreResult]):
    """Puts files deleted to the Trash back where they were (a journal undo, like a rebase's)."""

    op: ClassVar[str] = "restore"

    entries: list[journal.DeleteEntry] = field(default_factory=list)
    #: The paths asked for (the command line), to plan again from the journal.
    asked: tuple[str, ...] = ()

    def replan(self) -> RestorePlan:
        if self.asked:
            return plan_restore(self.asked)
        return plan_restore_entries(self.entries)

    def _execute(self, progress: ProgressFn, cancel: CancelToken) -> RestoreResult:
        restored: list[str] = []
        kept: list[Finding] = []
        errors: list[str] = []
        for n, entry in enumerate(self.entries):
            if cancel.cancelled:
                kept.append(refuse("cancelled", f"{entry.original}: not restored (cancelled)"))
                continue
            try:
                restore(entry.trashed_file())
            except RestoreRefused as exc:
                kept.append(refuse("cannot-restore", str(exc), paths=(entry.original,)))
            else:
                restored.append(entry.original)
                try:
                    journal.record_delete(journal.restore_entry_for(entry))
                except journal.JournalError as exc:
                    errors.append(str(exc))
            progress((n + 1) / len(self.entries))
        message = f"restored {counted(len(restored), 'file')}"
        if kept:
            message += f"; {len(kept)} could not be"
        return RestoreResult(
            message=message, changed=restored, restored=restored, kept=kept, errors=errors
        )


def plan_restore_entries(
    entries: Sequence[journal.DeleteEntry], findings: Iterable[Finding] = ()
) -> RestorePlan:
    """Plans putting back the files of these journal entries (the window's Restore: a
    ``UndoTarget.batch``); refused, naming why, for each one that cannot go back."""
    found = list(findings)
    for e in entries:
        if problem := restore_problem(e.trashed_file()):
            found.append(refuse("cannot-restore", problem, paths=(e.original,)))
    if not entries and not found:
        found.append(refuse("nothing", "nothing to restore"))
    if len(entries) == 1:
        title = f"restore {os.path.basename(entries[0].original)} from the Trash"
    else:
        title = f"restore {counted(len(entries), 'file')} from the Trash"
    changes = [f"moves {e.trashed} back to {e.original}" for e in entries]
    changes += [f"removes {e.trashinfo}" for e in entries]
    return RestorePlan(title=title, changes=changes, findings=found, entries=list(entries))


def plan_restore(paths: Iterable[str | os.PathLike[str]]) -> RestorePlan:
    """Plans putting back the files last deleted from ``paths`` (their original places), as the
    journal recorded them; a path with no deletion recorded is refused."""
    asked = tuple(canonical(os.fspath(p)) for p in paths)
    notes: list[str] = []
    entries: list[journal.DeleteEntry] = []
    findings: list[Finding] = []
    for path in asked:
        entry = journal.last_deletion(path, notes)
        if entry is None:
            findings.append(
                refuse(
                    "not-deleted",
                    f"no deletion of {path} to the Trash is recorded (or it was restored already)",
                )
            )
        else:
            # Its data files first: the image is whole the moment it is back.
            entries += [e for e in journal.parts_of(entry) if e not in entries]
            entries.append(entry)
    findings += [info("journal", n) for n in notes]
    plan = plan_restore_entries(entries, findings)
    plan.asked = asked
    return plan


def deleted_at(entry: journal.DeleteEntry) -> str:
    """When ``entry``'s file was deleted, as a person reads it."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.time))
