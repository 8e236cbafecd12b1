"""Undo of a new image, a convert, a snapshot taken and a disk grown (``journal.ChangeEntry``).

Each undo is the operation that takes the change back, planned and guarded like any other, plus
what makes sure it acts on that very result and nothing the user made of it since:

- a new or converted file goes to the Trash (``delete``: refused while anything backs onto it,
  it is in use or a VM uses it), and only the same file (device and inode) - one replaced
  since is not ours to remove; the desktop's Trash (or ``delete --undo``) brings it back;
- a snapshot is deleted (``snapshot`` delete) only while the image holds exactly one snapshot
  of that name with the id and date it was taken with;
- a grow is shrunk back (``resize``) only while the disk still has the grown size and nothing
  was written past the old size since (its allocation map says, the boundary's partial block
  read back): shrinking then loses nothing a guest wrote.

Snapshot apply and delete and a shrink are not journalled: what they discard is gone (their
plans say "cannot be undone").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from imagegui.core.jobs import CancelToken, ProgressFn
from imagegui.core.ops import journal
from imagegui.core.ops.plan import (
    Finding,
    GuardRefused,
    OpResult,
    Plan,
    info,
    probe_or_refuse,
    refuse,
    warn,
)
from imagegui.core.qemu import qemuimg
from imagegui.core.read.extents import MapUnavailable
from imagegui.core.read.fileid import file_id
from imagegui.core.units import human_size

if TYPE_CHECKING:
    from imagegui.core.read.model import ImageInfo
    from imagegui.core.virt.inventory import DomainSource

#: Data found past the old size within this many bytes of it is read back (the file system's
#: block or the qcow2 cluster holding the old end is allocated whole); more is a refusal.
BOUNDARY_READ = 2 * 1024 * 1024

#: What each undo does, for titles: "undo new image: ..."
_DOES = {
    journal.NEW_OP: "moves the new image to the Trash",
    journal.CONVERT_OP: "moves the converted file to the Trash",
    journal.SNAPSHOT_OP: "deletes the snapshot",
    journal.RESIZE_OP: "shrinks the disk back",
}


@dataclass(kw_only=True)
class ChangeUndoPlan(Plan[OpResult]):
    """Undo of one ``ChangeEntry``: ``inner`` is the plan that takes it back (a delete to the
    Trash, a snapshot delete, a shrink); its findings are this plan's, with the journal's."""

    op: ClassVar[str] = "undo"

    kinds: tuple[str, ...]
    #: The file asked about (``new --undo PATH``), kept for ``replan``.
    path: str | None = None
    entry: journal.ChangeEntry | None = None
    inner: Plan[Any] | None = None

    def replan(self) -> ChangeUndoPlan:
        return plan_undo_change(self.kinds, self.path, qemu_img=self.qemu_img, domains=self.domains)

    def _execute(self, progress: ProgressFn, cancel: CancelToken) -> OpResult:
        entry, inner = self.entry, self.inner
        assert entry is not None and inner is not None  # a plan without them is refused
        result = inner._execute(progress, cancel)
        trashed = ""
        if entry.kind in (journal.NEW_OP, journal.CONVERT_OP):
            # a DeleteResult: the file is kept (and said why) rather than an exception
            moved = getattr(result, "trashed", [])
            if not moved:
                kept = list(getattr(result, "kept", []))
                errors = list(getattr(result, "errors", []))
                if kept:
                    raise GuardRefused(kept)
                raise qemuimg.QemuImgError(f"{entry.image} was not moved: {'; '.join(errors)}")
            trashed = moved[0].trashed
        note = ""
        try:
            journal.record_change(journal.undo_record(entry, trashed=trashed))
        except journal.JournalError as exc:
            note = f" (not journalled: {exc})"
        return OpResult(
            message=f"undid the {entry.words}: {result.message}{note}",
            changed=result.changed,
            cli_hint=result.cli_hint,
        )


def plan_undo_change(
    kinds: tuple[str, ...] | str,
    path: str | None = None,
    qemu_img: str = "",
    domains: DomainSource | None = None,
) -> ChangeUndoPlan:
    """The undo of the last change of ``kinds`` (``journal.NEW_OP``, ...) not yet undone; with
    ``path``, the last one made to that file."""
    if isinstance(kinds, str):
        kinds = (kinds,)
    notes: list[str] = []
    entry = journal.last_change(kinds, path, notes)
    findings: list[Finding] = [warn("journal-line", n) for n in notes]
    words = " or ".join(journal.CHANGE_OPS.get(k, k).removesuffix(" of") for k in kinds)
    plan = ChangeUndoPlan(
        title=f"undo {words}" + (f" of {path}" if path else ""),
        findings=findings,
        qemu_img=qemu_img,
        domains=domains,
        kinds=kinds,
        path=path,
    )
    if entry is None:
        about = f" for {path}" if path else ""
        findings.append(
            refuse(
                "no-journal",
                f"the journal ({journal.journal_path()}) has no {words}{about} that is not "
                "undone yet",
            )
        )
        return plan
    plan.entry = entry
    plan.title = f"undo {entry.words}: {_DOES[entry.kind]}"
    if entry.kind in (journal.NEW_OP, journal.CONVERT_OP):
        inner: Plan[Any] = _undo_created(entry, findings, domains)
    elif entry.kind == journal.SNAPSHOT_OP:
        inner = _undo_snapshot(entry, findings, qemu_img, domains)
    else:
        inner = _undo_grow(entry, findings, qemu_img, domains)
    plan.inner = inner
    plan.commands = inner.commands
    plan.changes = inner.changes
    plan.searched = inner.searched
    findings += inner.findings
    return plan


# --------------------------------------------------------------------------- a new file


def _undo_created(
    entry: journal.ChangeEntry, findings: list[Finding], domains: DomainSource | None
) -> Plan[Any]:
    from imagegui.core.ops.delete import plan_delete

    recorded, now = entry.state, journal.Fingerprint.of(entry.image)
    if recorded is None:
        findings.append(refuse("unverifiable", f"the journal has no fingerprint of {entry.image}"))
    elif now is not None and (now.dev, now.ino) != (recorded.dev, recorded.ino):
        findings.append(
            refuse(
                "changed-identity",
                f"{entry.image} is a different file now (deleted and replaced, or renamed "
                "over): it is not the one imagegui created, so Undo leaves it alone",
            )
        )
    elif now is not None and recorded.differences(now):
        findings.append(
            warn(
                "written-since",
                f"{entry.image} changed since it was created "
                f"({'; '.join(recorded.differences(now))}): what was written goes to the Trash "
                "with it",
            )
        )
    if entry.kind == journal.CONVERT_OP and entry.source:
        findings.append(info("source-kept", f"{entry.source}, the convert's source, is untouched"))
    return plan_delete([entry.image], domains=domains)


# --------------------------------------------------------------------------- a snapshot taken


def _undo_snapshot(
    entry: journal.ChangeEntry,
    findings: list[Finding],
    qemu_img: str,
    domains: DomainSource | None,
) -> Plan[Any]:
    from imagegui.core.ops.snapshot import plan_snapshot
    from imagegui.core.read.formats.base import ParseError
    from imagegui.core.read.snapshots import read_snapshots

    taken = entry.snapshot or {}
    name = str(taken.get("name", ""))
    inner = plan_snapshot(entry.image, "delete", name, qemu_img=qemu_img, domains=domains)
    # Undo deletes it again: "cannot be undone" is said of a delete the user asks for.
    inner.findings = [f for f in inner.findings if f.code != "not-undoable"]
    try:
        snaps = read_snapshots(entry.image)
    except (OSError, ParseError):
        snaps = []  # the snapshot plan says the table cannot be read
    same_name = [s for s in snaps if s.name == name]
    ident = f"id {taken.get('id')}"
    if ident_now := file_id(entry.image):
        recorded = entry.state
        if recorded is not None and ident_now != (recorded.dev, recorded.ino):
            findings.append(
                refuse(
                    "changed-identity",
                    f"{entry.image} is a different file now: the snapshot was taken in another",
                )
            )
    if not same_name:
        findings.append(
            refuse(
                "snapshot-gone",
                f"{entry.image} no longer has the snapshot {name!r} ({ident}): it was deleted "
                "since",
            )
        )
    elif len(same_name) > 1:
        findings.append(
            refuse(
                "snapshot-ambiguous",
                f"{entry.image} has {len(same_name)} snapshots called {name!r}: the one taken "
                "cannot be told apart from the others for deleting by name",
            )
        )
    elif (same_name[0].id, same_name[0].date_sec, same_name[0].date_nsec) != (
        taken.get("id"),
        taken.get("date_sec"),
        taken.get("date_nsec"),
    ):
        s = same_name[0]
        findings.append(
            refuse(
                "snapshot-replaced",
                f"the snapshot {name!r} of {entry.image} is another one now (id {s.id}, taken "
                f"{s.date_text}; imagegui took {ident}): it was deleted and taken again since",
            )
        )
    return inner


# --------------------------------------------------------------------------- a disk grown


def _undo_grow(
    entry: journal.ChangeEntry,
    findings: list[Finding],
    qemu_img: str,
    domains: DomainSource | None,
) -> Plan[Any]:
    from imagegui.core.ops.resize import plan_resize

    inner = plan_resize(
        entry.image, entry.old_size, shrink=True, qemu_img=qemu_img, domains=domains
    )
    # The shrink's warning (the guest's partitions must fit) does not apply: nothing was
    # written past the old size, which is checked below.
    inner.findings = [f for f in inner.findings if f.code not in ("shrink", "not-undoable")]
    recorded, ident = entry.state, file_id(entry.image)
    if recorded is not None and ident is not None and ident != (recorded.dev, recorded.ino):
        findings.append(
            refuse(
                "changed-identity",
                f"{entry.image} is a different file now: it is not the image imagegui grew",
            )
        )
        return inner
    img = probe_or_refuse(entry.image, "image", [])
    if img is None:
        return inner  # the resize plan says why
    if img.virtual_size != entry.new_size:
        findings.append(
            refuse(
                "resized-since",
                f"{entry.image} is {human_size(img.virtual_size)} now, not the "
                f"{human_size(entry.new_size)} imagegui grew it to: it was resized since",
            )
        )
        return inner
    written = _written_past(img, entry.old_size, qemu_img)
    if written:
        findings.append(refuse("written-past", written))
    else:
        findings.append(
            info(
                "nothing-past",
                f"nothing was written past the old size ({human_size(entry.old_size)}) since "
                "the disk was grown: shrinking it back loses no data",
            )
        )
    return inner


def _written_past(img: ImageInfo, old_size: int, qemu_img: str) -> str:
    """Why the disk cannot be shrunk back to ``old_size`` without losing what a guest wrote
    past it, or "" when nothing was. The image's own allocation map says which blocks hold
    data; data in the block (or cluster) that also holds the old end is read back, since that
    block was allocated whole before the grow and may hold nothing but zeros past the end."""
    cannot = f"whether anything was written past the old size of {img.path} cannot be told"
    try:
        layer = qemuimg.read_layer_map(img, qemu_img=qemu_img)
    except (MapUnavailable, qemuimg.QemuImgError) as exc:
        return f"{cannot}: {exc}"
    past = [(max(a, old_size), b) for a, b in layer.data if b > old_size]
    if not past:
        return ""
    end = max(b for _a, b in past)
    if end - old_size > BOUNDARY_READ:
        amount = sum(b - a for a, b in past)
        return (
            f"{img.path} holds {human_size(amount)} of data past its old size "
            f"({human_size(old_size)}): a guest wrote there since it was grown, and shrinking "
            "it back would cut that off"
        )
    try:
        zeros = _reads_as_zeros(img, old_size, end - old_size)
    except (OSError, qemuimg.QemuImgError) as exc:
        return f"{cannot}: {exc}"
    if not zeros:
        return (
            f"{img.path} holds data just past its old size ({human_size(old_size)}): a guest "
            "wrote there since it was grown, and shrinking it back would cut that off"
        )
    return ""


def _reads_as_zeros(img: ImageInfo, offset: int, length: int) -> bool:
    """Whether the guest reads only zeros in [offset, offset + length): a raw file is read
    directly, another format through ``qemu-io`` (read-only, shared), which compares the range
    with a pattern of zeros."""
    if img.format == "raw":
        with open(img.path, "rb") as f:
            f.seek(offset)
            return not f.read(length).strip(b"\0")
    # qemu-io beside qemu-img (qemu-utils); the qemu-img setting names only qemu-img.
    argv = [
        "qemu-io", "-r", "-U", "-f", img.format, "-c", f"read -q -P 0 {offset} {length}",
        img.path,
    ]  # fmt: skip
    result = qemuimg.run(argv, ok_codes=(0, 1))
    if "Pattern verification failed" in result.stdout:
        return False
    if result.returncode != 0:
        raise qemuimg.QemuImgError(result.stderr.strip() or "qemu-io could not read the image")
    return True
