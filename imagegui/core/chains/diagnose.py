"""Every kind of problem a scan reports, in one place: its level, its title, what it means and
what fixes it, both as the window's action and as our own command line. The window (Problems,
Details, cards, status bar) and the command line (``scan``, ``check``) read them from here:
adding a kind is one :class:`KindInfo` in :data:`KINDS` (``tests/test_one_place.py`` holds
everyone to that).

``message`` is prose that fits both the window and the terminal (no command lines, no flags);
``fix_cli`` is the command that fixes it, which only the command line's text output adds
(``cli_text``): the window offers the same fix as an action instead.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from imagegui.core.strenum import StrEnum


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
        ),
        KindInfo(
            Kind.BACKING_LOOP,
            Level.ERROR,
            "Backing loop",
            "The chain points back at itself; qemu refuses to open any image in it. Rebase one "
            "of them onto the real base.",
            "Rebase onto the real base…",
            FixAction.REBASE,
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
            "A temporary file imagegui writes while flattening, left behind because the "
            "operation was interrupted (the program was killed or the machine stopped). It is "
            "not an image of yours and nothing uses it: remove it to get the space back.",
            "Remove leftover file…",
            FixAction.REMOVE_LEFTOVER,
            "imagegui clean-leftovers {path}",
        ),
    )
}


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
