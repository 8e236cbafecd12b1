"""move: move or rename images (or whole folders) without breaking a chain.

Every image whose backing pointer would stop leading to its backing file is rewritten with
``qemu-img rebase -u`` (only the pointer: the guest's bytes are untouched): the images that back
onto a moved file (found by scanning the folders near the sources, stated in the plan), and a
moved image's own pointer when it is relative and the move changes what it resolves to. A
pointer keeps its form (relative stays relative, recomputed from the overlay's new folder;
absolute stays absolute) and its recorded backing format. Relative links inside a moved folder
keep working on their own and are left alone.

On one file system the pointers are rewritten first, then the files renamed (never replacing a
file); across file systems each file (or folder, file by file) is copied to a temporary name
beside its destination (``.NAME.<8 hex>.partial``: a file of that name left by a killed imagegui
is reported by the scan; a folder is not, yet), compared byte for byte with the source, renamed,
then the pointers are rewritten and only then the source removed.
A failure or a cancel undoes what was done (renames back, pointers back, the copy removed), so
the source is intact. A finished move is journalled as one change (``journal.MoveEntry``: the
renames and every rewrite, each rewrite also as a rebase entry naming the move, so a move killed
part-way can be undone pointer by pointer); ``move_undo`` undoes it as one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, ClassVar

from imagegui.core.jobs import CancelledError, CancelToken, ProgressFn
from imagegui.core.ops import guards, journal
from imagegui.core.ops.filemove import (
    copy_tree,
    copy_verified,
    data_bytes,
    rename_no_replace,
    tree_problem,
    tree_stamps,
)
from imagegui.core.ops.newfile import claim_new_file, link_no_replace, release_new_file
from imagegui.core.ops.plan import (
    Finding,
    GuardRefused,
    OpResult,
    Plan,
    add_findings,
    info,
    refuse,
    warn,
)
from imagegui.core.qemu import qemuimg
from imagegui.core.read.backing import is_within, reaches
from imagegui.core.read.fileid import FileId, file_id
from imagegui.core.read.model import ImageInfo

if TYPE_CHECKING:
    from imagegui.core.virt.inventory import DomainSource


class MoveError(qemuimg.QemuImgError):
    """The move failed part-way; the message says what was undone and what state is left."""


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Relocation:
    """One file or folder moved: from ``src`` to ``dst`` (both with real parent folders)."""

    src: str
    dst: str
    is_dir: bool = False
    #: Across file systems: the temporary file the copy is written to first, beside ``dst``.
    partial: str = ""


@dataclass(frozen=True)
class Rewrite:
    """One backing pointer rewritten so it still leads to its backing file after the move."""

    #: The image as it is named before the move, and ``final`` after it.
    image: str
    final: str
    image_format: str
    old_name: str
    old_format: str | None
    new_name: str
    new_format: str
    #: The file the new name must open once everything has moved.
    target: str
    #: The image moves too (its own pointer: rewritten on the copy across file systems).
    moved: bool = False


@dataclass(kw_only=True)
class MoveResult(OpResult):
    #: (from, to) of each file or folder moved.
    moved: list[tuple[str, str]] = field(default_factory=list)
    #: The images whose pointer was rewritten (where they are now).
    rewritten: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- paths


def real(path: str) -> str:
    """``path`` absolute, with its folder resolved through symbolic links (the name itself kept:
    a link is moved as the link). Moves and pointers are worked out between real folders, so
    ``..`` climbs what the kernel climbs."""
    path = os.path.abspath(path)
    head, tail = os.path.split(path)
    return os.path.join(os.path.realpath(head), tail) if tail else os.path.realpath(path)


class Mapping:
    """Where each path is once the relocations are done."""

    def __init__(self, relocations: Iterable[Relocation]):
        self.files = {r.src: r.dst for r in relocations if not r.is_dir}
        self.dirs = [(r.src, r.dst) for r in relocations if r.is_dir]

    def __call__(self, path: str) -> str:
        if path in self.files:
            return self.files[path]
        for src, dst in self.dirs:
            if is_within(path, src):
                return dst + path[len(src) :]
        return path

    def moves(self, path: str) -> bool:
        return self(path) != path


# --------------------------------------------------------------------------- the plan


@dataclass(kw_only=True)
class MovePlan(Plan[MoveResult]):
    op: ClassVar[str] = "move"
    searched_for: ClassVar[str] = "images that back onto the moved files"

    sources: tuple[str, ...]
    dest: str
    relocations: list[Relocation] = field(default_factory=list)
    rewrites: list[Rewrite] = field(default_factory=list)
    cross_fs: bool = False
    #: The images that move (real path -> its header as planned): checked again after the move.
    moved_images: dict[str, ImageInfo] = field(default_factory=dict)
    roots: tuple[str, ...] = ()

    def replan(self) -> MovePlan:
        return plan_move(
            self.sources,
            self.dest,
            roots=self.roots,
            force=self.force,
            qemu_img=self.qemu_img,
            domains=self.domains,
            partials={r.src: r.partial for r in self.relocations if r.partial},
        )

    def _execute(self, progress: ProgressFn, cancel: CancelToken) -> MoveResult:
        run = _Run(self, progress, cancel)
        if self.cross_fs:
            run.across()
        else:
            run.within()
        run.record()
        moved = [(r.src, r.dst) for r in self.relocations]
        what = ", ".join(f"{s} -> {d}" for s, d in moved)
        n = len(self.rewrites)
        message = f"moved {what}; {n} backing pointer{'s' * (n != 1)} rewritten"
        if run.late_note:
            message += f" ({run.late_note})"
        hint = "journalled: imagegui move --undo undoes it"
        return MoveResult(
            message=message,
            changed=[r.dst for r in self.relocations] + [w.final for w in self.rewrites],
            moved=moved,
            rewritten=[w.final for w in self.rewrites],
            cli_hint=hint,
        )


class _Run:
    """One run of a plan: what was done so far, so that a failure can undo it in reverse."""

    def __init__(self, plan: MovePlan, progress: ProgressFn, cancel: CancelToken):
        self.plan = plan
        self.progress = progress
        self.cancel = cancel
        self.renamed: list[Relocation] = []
        self.rewritten: list[tuple[Rewrite, str, str]] = []  # (rewrite, path written, entry id)
        self.copies: list[tuple[str, FileId]] = []  # new files made (partial or final name)
        #: Folders copied (partial or final name, and the folder's identity once made).
        self.trees: list[tuple[str, FileId | None]] = []
        self.late_note = ""
        #: The id of this move's journal entry; each rewrite's rebase entry names it.
        self.move_id = journal.new_id()
        #: The last rewrite had finished when its cancel came (it is undone with the rest).
        self.late_rewrite = False

    # -- one file system

    def within(self) -> None:
        plan = self.plan
        steps = len(plan.rewrites) + len(plan.relocations) + 1
        done = 0
        try:
            for w in plan.rewrites:
                self._check_cancel()
                self._rewrite(w, w.image)
                done += 1
                self.progress(done / steps)
            for r in plan.relocations:
                self._check_cancel()
                rename_no_replace(r.src, r.dst)
                self.renamed.append(r)
                done += 1
                self.progress(done / steps)
            self._verify()
        except CancelledError:
            state = self._undo()
            raise CancelledError(f"move cancelled: {state}") from None
        except (OSError, qemuimg.QemuImgError, GuardRefused, journal.JournalError) as exc:
            state = self._undo()
            if isinstance(exc, GuardRefused):
                raise GuardRefused([*exc.findings, refuse("undone", state)]) from None
            raise MoveError(f"move failed: {_why(exc)}; {state}") from exc
        except BaseException:  # KeyboardInterrupt and the like: undo, then let it go on
            self._undo()
            raise
        self.progress(1.0)

    # -- across file systems

    def across(self) -> None:
        plan = self.plan
        total = max(1, 2 * sum(_tree_data_bytes(r) for r in plan.relocations))
        done = [0]

        def step(n: int) -> None:
            done[0] += n
            self.progress(min(0.99, done[0] / total))

        own = {w.image: w for w in plan.rewrites if w.moved}
        stamps: dict[str, object] = {}
        try:
            for r in plan.relocations:
                self._check_cancel()
                if r.is_dir:
                    self._copy_folder(r, own, stamps, step)
                else:
                    self._copy_file(r, own, stamps, step)
                self.progress(min(0.99, done[0] / total))  # named: the rewrites come next
            for w in plan.rewrites:
                if not w.moved:
                    self._check_cancel()
                    self._rewrite(w, w.image)
            self._verify()
            for r in plan.relocations:  # the last check: the source is still as copied
                self._check_cancel()
                if _source_state(r) != stamps[r.src]:
                    raise GuardRefused(
                        [refuse("changed", f"{r.src} was written while it was being moved")]
                    )
                for path in plan.moved_images:
                    lock = guards.not_in_use(path, "source") if is_within(path, r.src) else None
                    if lock is not None:
                        raise GuardRefused([lock])
        except CancelledError:
            state = self._undo()
            raise CancelledError(f"move cancelled: {state}") from None
        except (OSError, qemuimg.QemuImgError, GuardRefused, journal.JournalError) as exc:
            state = self._undo()
            if isinstance(exc, GuardRefused):
                raise GuardRefused([*exc.findings, refuse("undone", state)]) from None
            raise MoveError(f"move failed: {_why(exc)}; {state}") from exc
        except BaseException:  # KeyboardInterrupt and the like: undo, then let it go on
            self._undo()
            raise
        # Past this point the copies are in place and every pointer leads to them: removing the
        # sources is what remains; a failure here leaves both (said, not undone).
        left = []
        for r in plan.relocations:
            try:
                if r.is_dir:
                    shutil.rmtree(r.src)
                else:
                    os.unlink(r.src)
            except OSError as exc:
                left.append(f"{r.src} ({exc.strerror})")
        if left:
            self.late_note = (
                "the copies are in place and in use by the chains, but the source could not be "
                f"removed: {', '.join(left)}; remove it yourself"
            )
        self.progress(1.0)

    def _copy_file(
        self,
        r: Relocation,
        own: dict[str, Rewrite],
        stamps: dict[str, object],
        step: Callable[[int], None],
    ) -> None:
        st = os.stat(r.src)
        stamps[r.src] = _source_state(r)
        ident = claim_new_file(r.partial, stat.S_IMODE(st.st_mode) | 0o600)
        self.copies.append((r.partial, ident))
        with contextlib.suppress(OSError):
            os.chmod(r.partial, stat.S_IMODE(st.st_mode) | 0o600)
            if os.geteuid() == 0:
                os.chown(r.partial, st.st_uid, st.st_gid)
        copy_verified(r.src, r.partial, step, self.cancel)
        if _source_state(r) != stamps[r.src]:
            raise GuardRefused(
                [refuse("changed", f"{r.src} was written while it was being copied")]
            )
        w = own.get(r.src)
        if w is not None:
            self._run_rebase(w, r.partial)
        else:
            os.utime(r.partial, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.chmod(r.partial, stat.S_IMODE(st.st_mode))
        self._check_cancel()
        link_no_replace(r.partial, r.dst)
        self.copies[-1] = (r.dst, ident)
        if w is not None:
            self.rewritten.append((w, r.dst, self._journal(w, r.dst)))

    def _copy_folder(
        self,
        r: Relocation,
        own: dict[str, Rewrite],
        stamps: dict[str, object],
        step: Callable[[int], None],
    ) -> None:
        stamps[r.src] = _source_state(r)
        self.trees.append((r.partial, None))
        copy_tree(r.src, r.partial, step, self.cancel)
        self.trees[-1] = (r.partial, file_id(r.partial))
        if _source_state(r) != stamps[r.src]:
            raise GuardRefused(
                [refuse("changed", f"something in {r.src} changed while it was being copied")]
            )
        inside = [w for w in own.values() if is_within(w.image, r.src)]
        for w in inside:  # the copies' own pointers, before the folder gets its name
            self._run_rebase(w, r.partial + w.image[len(r.src) :])
        self._check_cancel()
        rename_no_replace(r.partial, r.dst)
        self.trees[-1] = (r.dst, self.trees[-1][1])
        for w in inside:
            self.rewritten.append((w, w.final, self._journal(w, w.final)))

    # -- steps

    def _check_cancel(self) -> None:
        if self.cancel.cancelled:
            raise CancelledError("cancelled")

    def _rebase_argv(self, w: Rewrite, path: str) -> list[str]:
        return qemuimg.rebase_argv(path, w.image_format, w.new_name, w.new_format, True)

    def _run_rebase(self, w: Rewrite, path: str) -> None:
        """Rewrites one pointer; a cancel stops a qemu-img that hangs (a stale NFS mount), and
        the pointer is then read back: a rewrite that got through is counted as done, so the
        undo puts it back too."""
        try:
            qemuimg.run(self._rebase_argv(w, path), cancel=self.cancel, qemu_img=self.plan.qemu_img)
        except CancelledError:
            if _stored(path) != (w.new_name, w.new_format):
                raise
            self.late_rewrite = True

    def _rewrite(self, w: Rewrite, path: str) -> None:
        """Rewrites one pointer in place and journals it (the journal is opened first: a
        rewrite that could not be recorded never runs)."""
        fd = journal.open_for_append()
        self.late_rewrite = False
        try:
            self._run_rebase(w, path)
        except BaseException:
            os.close(fd)
            raise
        self.rewritten.append((w, path, self._journal(w, path, fd)))
        if self.late_rewrite:
            raise CancelledError("cancelled")

    def _journal(self, w: Rewrite, path: str, fd: int | None = None) -> str:
        return journal.record_rewrite(
            path,
            (w.old_name, w.old_format),
            (w.new_name, w.new_format),
            move=self.move_id,
            fd=fd,
        )

    def record(self) -> None:
        """Journals the finished move as one unit (what Undo offers): every rename and every
        rewritten pointer, each file as the move left it. A move that cannot be recorded is
        still done; its rewrites stay undoable one by one, and the message says so."""
        plan = self.plan
        entries = {w.image: entry_id for w, _path, entry_id in self.rewritten}
        renames = []
        for r in plan.relocations:
            # A folder by its identity only: its files are the rewrites' business.
            ident = file_id(r.dst) if r.is_dir else None
            state = None if r.is_dir else journal.Fingerprint.of(r.dst)
            recorded = {"dev": ident[0], "ino": ident[1]} if ident else None
            renames.append(
                {
                    "src": r.src,
                    "dst": r.dst,
                    "is_dir": r.is_dir,
                    "fingerprint": asdict(state) if state else recorded,
                }
            )
        rewrites = []
        for w in plan.rewrites:
            state = journal.Fingerprint.of(w.final)
            rewrites.append(
                {
                    "image": w.image,
                    "final": w.final,
                    "image_format": w.image_format,
                    "old_backing": w.old_name,
                    "old_format": w.old_format,
                    "new_backing": w.new_name,
                    "new_format": w.new_format,
                    "entry": entries.get(w.image, ""),
                    "fingerprint": asdict(state) if state else None,
                }
            )
        name = os.path.basename(plan.relocations[0].src) if plan.relocations else ""
        try:
            journal.record_move(
                journal.MoveEntry(
                    id=self.move_id,
                    time=time.time(),
                    name=name,
                    renames=renames,
                    rewrites=rewrites,
                    cross_fs=plan.cross_fs,
                )
            )
        except journal.JournalError as exc:
            note = f"the move could not be journalled as one change ({exc})"
            self.late_note = f"{self.late_note}; {note}" if self.late_note else note

    def _verify(self) -> None:
        """Reads every moved and rewritten image back where it now is: its pointer must lead to
        the planned file, its data files must exist. Anything else is undone."""
        from imagegui.core.read.probe import ProbeError, probe_image

        plan = self.plan
        after = Mapping(plan.relocations)
        expected: dict[str, str | None] = {}
        for path, img in plan.moved_images.items():
            if img.backing_path and not img.backing_protocol and os.path.exists(img.backing_path):
                expected[after(path)] = after(os.path.realpath(img.backing_path))
            else:
                expected[after(path)] = None
        for w in plan.rewrites:
            expected[w.final] = w.target
        problems = []
        for path, target in sorted(expected.items()):
            try:
                img = probe_image(path)
            except ProbeError as exc:
                problems.append(f"{path} cannot be read back: {exc}")
                continue
            if target is not None and not (
                img.backing_file and reaches(os.path.dirname(path), img.backing_file, target)
            ):
                problems.append(f"{path}'s backing pointer {img.backing_file!r} misses {target}")
            for extent in img.extents:
                if extent != path and not os.path.exists(extent):
                    problems.append(f"{path}'s data file {extent} is not there")
        if problems:
            raise MoveError("read back after the move: " + "; ".join(problems))

    def _undo(self) -> str:
        """Undoes what was done, newest first; says the state it leaves."""
        failed: list[str] = []
        for r in reversed(self.renamed):
            try:
                rename_no_replace(r.dst, r.src)
            except (OSError, GuardRefused) as exc:
                failed.append(f"{r.dst} could not be moved back to {r.src} ({_why(exc)})")
        self.renamed.clear()
        for w, path, entry_id in reversed(self.rewritten):
            if w.moved and self.plan.cross_fs:
                continue  # the copy goes away below; the source was never written
            back = qemuimg.rebase_argv(path, w.image_format, w.old_name, w.old_format, True)
            try:
                qemuimg.run(back, qemu_img=self.plan.qemu_img)
            except qemuimg.QemuImgError as exc:
                failed.append(
                    f"{path} still backs onto {w.new_name!r} (restoring {w.old_name!r} failed: "
                    f"{exc}; imagegui rebase --undo {path} restores it)"
                )
                continue
            with contextlib.suppress(journal.JournalError):
                journal.record_rewrite(
                    path,
                    (w.new_name, w.new_format),
                    (w.old_name, w.old_format),
                    undo_of=entry_id,
                    move=self.move_id,
                )
        self.rewritten.clear()
        for path, ident in reversed(self.copies):
            release_new_file(path, ident)
            if os.path.lexists(path) and file_id(path) == ident:
                failed.append(f"the copy {path} could not be removed")
        self.copies.clear()
        for path, folder in reversed(self.trees):
            # Only the folder this run made (its identity; a half-made one by its name, which
            # was free when the run began and is imagegui's temporary name).
            if os.path.isdir(path) and (folder is None or file_id(path) == folder):
                shutil.rmtree(path, ignore_errors=True)
            if os.path.lexists(path) and (folder is None or file_id(path) == folder):
                failed.append(f"the copy {path} could not be removed")
        self.trees.clear()
        sources = ", ".join(r.src for r in self.plan.relocations)
        if failed:
            return "undoing it failed in part: " + "; ".join(failed)
        if self.plan.cross_fs:
            return f"{sources} untouched, no copy left and every backing pointer as it was"
        return f"nothing was moved ({sources} where they were) and every backing pointer as it was"


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename or ''}: {exc.strerror}".lstrip(": ")
    return str(exc)


def _stamp(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _stored(path: str) -> tuple[str | None, str | None] | None:
    """The backing name and format ``path`` stores now (None when it cannot be read)."""
    from imagegui.core.read.probe import ProbeError, probe_image

    try:
        img = probe_image(path)
    except (ProbeError, OSError):
        return None
    return (img.backing_file, img.backing_format)


def _source_state(r: Relocation) -> object:
    """What the source is now: the file's stamp, or every entry of the folder's."""
    return tree_stamps(r.src) if r.is_dir else _stamp(os.stat(r.src))


def _tree_data_bytes(r: Relocation) -> int:
    if not r.is_dir:
        return data_bytes(r.src)
    total = 0
    for dirpath, _dirs, names in os.walk(r.src):
        for name in names:
            path = os.path.join(dirpath, name)
            if os.path.isfile(path) and not os.path.islink(path):
                total += data_bytes(path)
    return total


# --------------------------------------------------------------------------- planning


def plan_move(
    sources: Sequence[str],
    dest: str,
    roots: Sequence[str] = (),
    force: bool = False,
    qemu_img: str = "",
    domains: DomainSource | None = None,
    partials: dict[str, str] | None = None,
) -> MovePlan:
    """Moves ``sources`` (images or folders) into the folder ``dest``, or renames the one source
    to ``dest`` when no such folder exists. ``roots``: further folders to search for images that
    back onto the moved ones (besides the sources' own folders); ``force`` lifts the refusals
    that allow it (an overlay its owner made read-only, a shut-off libvirt VM's disk);
    ``domains``: where to ask libvirt which VMs use the files; ``partials``: the temporary names
    of a cross-file-system copy (a replan keeps them)."""
    from imagegui.core.read.probe import ProbeError, probe_image
    from imagegui.core.read.scan import scan_directory

    index, findings = guards.read_domains(domains)
    srcs = tuple(dict.fromkeys(real(s) for s in sources))
    dest_real = real(dest)
    relocations: list[Relocation] = []
    into = os.path.isdir(dest)
    if not srcs:
        findings.append(refuse("no-source", "nothing to move"))
    if not into and len(srcs) > 1:
        findings.append(
            refuse(
                "not-a-folder",
                f"{dest} is not a folder: several files or folders move only into an existing "
                "folder",
            )
        )
    dest_dir = os.path.realpath(dest) if into else os.path.dirname(dest_real)
    partials = partials or {}
    for src in srcs:
        dst = os.path.join(dest_dir, os.path.basename(src)) if into else dest_real
        finding = _source_problem(src, dst)
        if finding is not None:
            findings.append(finding)
            continue
        add_findings(findings, guards.target_free(dst, "destination"))
        is_dir = os.path.isdir(src)
        relocations.append(Relocation(src, dst, is_dir))
    for r in relocations:
        for other in relocations:
            if other is not r and other.is_dir and is_within(r.src, other.src):
                findings.append(refuse("nested", f"{r.src} is inside {other.src}, also moved"))
    after = Mapping(relocations)

    # Which file system: a rename, or a copy.
    cross_fs = False
    for r in relocations:
        with contextlib.suppress(OSError):  # a missing folder: target_free says so
            cross_fs |= os.stat(r.src).st_dev != os.stat(os.path.dirname(r.dst)).st_dev
    if cross_fs:
        for i, r in enumerate(relocations):
            if r.is_dir:
                try:
                    why = tree_problem(r.src)
                except OSError as exc:
                    why = f"{exc.filename}: {exc.strerror}"
                if why is not None:
                    findings.append(
                        refuse(
                            "cannot-copy",
                            f"{r.src} must be copied to the other file system file by file, "
                            f"and {why}",
                        )
                    )
            partial = partials.get(r.src) or os.path.join(
                os.path.dirname(r.dst),
                f".{os.path.basename(r.dst)}.{secrets.token_hex(4)}.partial",
            )
            if os.path.lexists(partial):
                findings.append(refuse("target-exists", f"temporary file {partial} already exists"))
            relocations[i] = Relocation(r.src, r.dst, r.is_dir, partial)

    # The images that move.
    moved: dict[str, ImageInfo] = {}
    for r in relocations:
        if r.is_dir:
            try:
                scan = scan_directory(r.src)
            except OSError as exc:
                findings.append(refuse("unreadable", f"{r.src} cannot be read: {exc.strerror}"))
                continue
            for path, img in scan.images.items():
                moved.setdefault(real(path), img)
        else:
            try:
                moved[r.src] = probe_image(r.src)
            except ProbeError as exc:
                findings.append(refuse("unreadable", f"{r.src} is not a readable image: {exc}"))
    for path, img in moved.items():
        lock = guards.not_in_use(path, "image", index=index)
        add_findings(findings, lock)
        findings += guards.not_used_by_domain(
            path,
            "image",
            index,
            "moving it changes where {vm} disk or its backing chain lives",
            skip_running=lock is not None,
        )
        for extent in img.extents:
            if extent != path and not after.moves(os.path.realpath(extent)):
                findings.append(
                    refuse(
                        "data-file-left-behind",
                        f"{path} keeps its data in {extent}, which does not move with it; move "
                        "the folder holding both instead",
                    )
                )

    # Who else backs onto them: the sources' folders and their parents (each scanned whole: an
    # overlay left behind loses its base, so the search is as wide as a launch's) and ``roots``.
    searched = guards.nearby_roots(*srcs, extra=roots, widen=True) if relocations else []
    dependents: dict[str, ImageInfo] = {}
    for root in searched:
        try:
            scan = scan_directory(root)
        except OSError as exc:
            findings.append(warn("unsearched", f"{root} cannot be searched: {exc.strerror}"))
            continue
        for path, img in scan.images.items():
            base = img.backing_path
            if base and not img.backing_protocol and after.moves(os.path.realpath(base)):
                dependents.setdefault(real(path), img)
    if relocations:
        findings.append(
            info(
                "searched",
                f"looked for images that back onto the moved files under {', '.join(searched)}; "
                "images kept anywhere else are not seen and would lose their backing file",
                fix_cli="add --root DIR if overlays live elsewhere too",
            )
        )

    rewrites: list[Rewrite] = []
    for path in sorted({**dependents, **moved}):
        img = moved.get(path) or dependents[path]
        w = _rewrite_for(path, img, after, path in moved, findings)
        if w is None:
            continue
        rewrites.append(w)
        if path in moved:
            add_findings(findings, guards.rebaseable(img), guards.writable(path, "image"))
        else:
            add_findings(findings, guards.rebaseable(img))
            findings += guards.vm_guards(
                path, "overlay", index, "rewriting its backing pointer changes {vm} disk"
            )
            add_findings(findings, guards.writable(path, "overlay"))
    # The moving images' own pointers first, then the dependents', each in path order.
    rewrites.sort(key=lambda w: (not w.moved, w.image))
    if rewrites and (why := journal.writable_problem()) is not None:
        findings.append(refuse("journal", why))
    if cross_fs:
        needed = sum(_allocated(r) for r in relocations)
        folders = {os.path.dirname(r.dst) for r in relocations}
        for folder in sorted(folders):
            if os.path.isdir(folder):
                findings.append(guards.free_space(folder, needed))

    commands, changes = _describe(relocations, rewrites, cross_fs, moved)
    title = (
        f"move: {', '.join(r.src for r in relocations)} to {dest_real}"
        if relocations
        else f"move: {', '.join(srcs)} to {dest_real}"
    )
    return MovePlan(
        title=title,
        commands=commands,
        changes=changes,
        findings=findings,
        searched=tuple(searched),
        force=force,
        qemu_img=qemu_img,
        domains=domains,
        sources=tuple(sources),
        dest=dest,
        relocations=relocations,
        rewrites=rewrites,
        cross_fs=cross_fs,
        moved_images=moved,
        roots=tuple(roots),
    )


def _source_problem(src: str, dst: str) -> Finding | None:
    if not os.path.lexists(src):
        return refuse("no-source", f"{src} does not exist")
    if os.path.islink(src):
        return refuse(
            "symlink",
            f"{src} is a symbolic link: move the file it points to, or the link by hand",
        )
    try:
        mode = os.stat(src).st_mode
    except OSError as exc:
        return refuse("unreadable", f"{src} cannot be read: {exc.strerror}")
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return refuse("not-a-file", f"{src} is neither a file nor a folder")
    if src == dst:
        return refuse("same-place", f"{src} is already there")
    if stat.S_ISDIR(mode) and is_within(dst, src):
        return refuse("into-itself", f"{src} cannot move into itself ({dst})")
    parent = os.path.dirname(src)
    if not os.access(parent, os.W_OK | os.X_OK):
        return refuse("not-writable", f"cannot move files out of {parent} (permission denied)")
    return None


def _allocated(r: Relocation) -> int:
    """Bytes the source takes on disk (a folder's files and links, summed)."""
    paths = [r.src]
    if r.is_dir:
        paths = [os.path.join(d, n) for d, _dirs, names in os.walk(r.src) for n in names]
    total = 0
    for path in paths:
        with contextlib.suppress(OSError):
            total += os.lstat(path).st_blocks * 512
    return total


def _rewrite_for(
    path: str, img: ImageInfo, after: Mapping, moves: bool, findings: list[Finding]
) -> Rewrite | None:
    """The rewrite ``img`` (at the real ``path``) needs so its pointer still leads to its
    backing file after the move, or None when the stored name keeps working as it is."""
    name = img.backing_file
    if not name or img.backing_protocol or not img.backing_path:
        return None
    base_now = os.path.realpath(img.backing_path)
    if not os.path.exists(base_now):
        if moves and not name.startswith("/"):
            findings.append(
                warn(
                    "missing-backing",
                    f"{path}'s backing file {img.backing_path} is missing: its pointer is kept "
                    "as it is (repair it after the move)",
                )
            )
        return None
    final, base_final = after(path), after(base_now)
    if final == path and base_final == base_now:
        return None
    if _still_leads(name, path, final, base_now, base_final):
        return None
    absolute = name.startswith("/")
    new_name = base_final if absolute else os.path.relpath(base_final, os.path.dirname(final))
    new_format = img.backing_format
    if new_format is None:
        new_format = _real_format(base_now)
        findings.append(
            info(
                "format-recorded",
                f"{path} does not record its backing file's format; the rewritten pointer "
                f"records it ({new_format})",
            )
        )
    return Rewrite(
        image=path,
        final=final,
        image_format=img.format,
        old_name=name,
        old_format=img.backing_format,
        new_name=new_name,
        new_format=new_format,
        target=base_final,
        moved=moves,
    )


def _still_leads(name: str, path: str, final: str, base_now: str, base_final: str) -> bool:
    """Whether ``name``, stored in the image now at ``path``, still opens the backing file once
    the image is at ``final`` and the backing file at ``base_final`` (worked out between real
    folders; a name through a symbolic link is rewritten whenever either moves)."""
    if name.startswith("/"):
        return base_final == base_now
    now = os.path.normpath(os.path.join(os.path.dirname(path), name))
    if now != base_now:
        return False
    return os.path.normpath(os.path.join(os.path.dirname(final), name)) == base_final


def _real_format(path: str) -> str:
    from imagegui.core.read.probe import ProbeError, probe_image

    try:
        return probe_image(path).format
    except ProbeError:
        return "raw"


def _describe(
    relocations: list[Relocation],
    rewrites: list[Rewrite],
    cross_fs: bool,
    moved: dict[str, ImageInfo],
) -> tuple[list[list[str]], list[str]]:
    """The plan's commands (in the order they run; the moves as the shell command a user would
    type for the same step) and its changes in words."""
    commands: list[list[str]] = []
    changes: list[str] = []

    def rebase(w: Rewrite, path: str) -> list[str]:
        return qemuimg.rebase_argv(path, w.image_format, w.new_name, w.new_format, True)

    own = {w.image: w for w in rewrites if w.moved}
    others = [w for w in rewrites if not w.moved]
    if cross_fs:
        for r in relocations:
            if r.is_dir:
                commands.append(["cp", "-a", "--sparse=always", "--", r.src, r.partial])
                commands.append(["diff", "-r", "--no-dereference", "--", r.src, r.partial])
                for w in own.values():
                    if is_within(w.image, r.src):
                        commands.append(rebase(w, r.partial + w.image[len(r.src) :]))
            else:
                commands.append(["cp", "--sparse=always", "--", r.src, r.partial])
                commands.append(["cmp", "--", r.src, r.partial])
                if r.src in own:
                    commands.append(rebase(own[r.src], r.partial))
            commands.append(["mv", "-n", "-T", "--", r.partial, r.dst])
            what = "every file of the folder " if r.is_dir else ""
            changes.append(
                f"{what}{r.src} is copied to {r.dst} (through {os.path.basename(r.partial)} "
                "beside it, compared byte for byte before it gets its name), and removed once "
                "every pointer leads to the copy"
            )
        commands += [rebase(w, w.image) for w in others]
        commands += [["rm", *(["-r"] if r.is_dir else []), "--", r.src] for r in relocations]
    else:
        commands += [rebase(w, w.image) for w in rewrites]
        for r in relocations:
            commands.append(["mv", "-n", "-T", "--", r.src, r.dst])
            what = "folder" if r.is_dir else "file"
            changes.append(f"the {what} {r.src} is renamed {r.dst}")
    for w in rewrites:
        where = f" (moving to {w.final})" if w.moved else ""
        fmt = f" ({w.old_format} kept)" if w.old_format else f" (format {w.new_format} recorded)"
        changes.append(
            f"{w.image}{where}: backing pointer {w.old_name!r} -> {w.new_name!r}{fmt}; only the "
            "pointer is rewritten, the guest sees the same bytes"
        )
    kept = len([p for p in moved if moved[p].backing_file]) - len(own)
    if kept > 0 and any(r.is_dir for r in relocations):
        changes.append(
            f"{kept} backing pointer{'s' * (kept != 1)} of moved images keep working as stored "
            "(relative links inside the folder) and are not touched"
        )
    if rewrites:
        changes.append(
            f"each old pointer is recorded in {journal.journal_path()}, so it can be undone"
        )
    if not rewrites:
        changes.append("no backing pointer needs rewriting")
    return commands, changes
