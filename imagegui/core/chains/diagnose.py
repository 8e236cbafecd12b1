"""The problem kinds a scan reports, each with a level and a sentence a user can act on.

``message`` is prose that fits both the window and the terminal (no command lines, no flags);
``fix_cli`` is the command that fixes it, which only the command line's text output adds
(``cli_text``): the window offers the same fix as an action instead.
"""

from __future__ import annotations

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


#: A kind's name for people: the Problems panel's group titles, card and status-bar lines.
KIND_TITLES: dict[Kind, str] = {
    Kind.MISSING_BACKING: "Missing backing file",
    Kind.BACKING_LOOP: "Backing loop",
    Kind.NO_BACKING_FORMAT: "No backing format recorded",
    Kind.BACKING_FORMAT_MISMATCH: "Wrong backing format",
    Kind.PROTOCOL_BACKING: "Network / protocol backing",
    Kind.BACKING_OUTSIDE_ROOT: "Depends on files outside the directory",
    Kind.UNREADABLE: "Unreadable image",
    Kind.DIRTY: "Not closed cleanly",
    Kind.CORRUPT: "Marked corrupt",
    Kind.EXTERNAL_DATA_FILE: "External data file",
    Kind.MISSING_EXTENT: "Missing data file",
    Kind.LEFTOVER: "Leftover temporary file",
    Kind.CHECK_ERRORS: "Damaged metadata",
    Kind.LEAKED_CLUSTERS: "Leaked clusters",
}

#: What each kind means and what fixes it: the details panel and ``check`` explain with these.
EXPLANATIONS: dict[Kind, str] = {
    Kind.MISSING_BACKING: "The overlay stores only its own changes; without its backing file the "
    "guest sees no disk. Find the base (moved or renamed?) and point the overlay at it again "
    "(Repair Missing Backing finds candidates).",
    Kind.BACKING_LOOP: "The chain points back at itself; qemu refuses to open any image in it. "
    "Rebase one of them onto the real base.",
    Kind.NO_BACKING_FORMAT: "qemu 6.1+ and libvirt refuse to guess a backing file's format, and "
    "guessing lets a guest turn a raw base into a qcow2 that points at any host file. Record the "
    "format (an unsafe rebase onto the same file: only the header changes).",
    Kind.BACKING_FORMAT_MISMATCH: "qemu will read the base with the recorded format, so the guest "
    "sees the wrong bytes. Record the real format (an unsafe rebase onto the same file).",
    Kind.PROTOCOL_BACKING: "The base is a network or protocol source (nbd:, rbd:, json:, URL); "
    "imagegui cannot see it and it may not be reachable from every host.",
    Kind.BACKING_OUTSIDE_ROOT: "The image depends on a file outside the scanned directory, so "
    "moving or copying the directory breaks it.",
    Kind.UNREADABLE: "The file looks like a disk image but its header cannot be read: truncated, "
    "damaged, a format it does not really have, or not readable by this user.",
    Kind.DIRTY: "The image was not closed cleanly (lazy refcounts); qemu repairs it on the next "
    "writable open, or check it and repair what the check finds.",
    Kind.CORRUPT: "qemu marked the image corrupt and will only open it read-only. Back it up, then "
    "check it and repair everything the check finds.",
    Kind.EXTERNAL_DATA_FILE: "The guest's data lives in a separate file; copying or moving the "
    "image alone loses it.",
    Kind.MISSING_EXTENT: "Part of the guest's data lives in a separate file (a VMDK extent or a "
    "qcow2 external data file) that is gone; qemu cannot open the image. Put the file back "
    "(restore it or move it next to the image) - the image itself cannot replace it.",
    Kind.CHECK_ERRORS: "A full check of the image found its metadata damaged (or could not read "
    "it): parts of the guest's disk may read back wrong or be overwritten by the next write. "
    "Copy the data out first (flatten into a new image), then Repair all; repair rewrites the "
    "metadata and can lose the damaged parts for good.",
    Kind.LEAKED_CLUSTERS: "A full check found clusters that are allocated in the file but used "
    "by nothing, usually after a crash or a killed VM. They waste disk space and harm no data; "
    "Repair leaks gives them back.",
    Kind.LEFTOVER: "A temporary file imagegui writes while flattening, left behind because the "
    "operation was interrupted (the program was killed or the machine stopped). It is not an "
    "image of yours and nothing uses it: remove it to get the space back.",
}


@dataclass(frozen=True)
class Problem:
    kind: Kind
    level: Level
    path: str
    message: str
    #: The command that fixes it, for the command line's text output only ("" if none).
    fix_cli: str = ""

    @property
    def explanation(self) -> str:
        return EXPLANATIONS[self.kind]

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


def cli_text(message: str, fix_cli: str) -> str:
    """``message`` followed by its command-line fix (``Fix: imagegui rebase …``), as a sentence
    of its own: refusals end without a full stop and read run together with it."""
    if not fix_cli:
        return message
    end = "" if message.rstrip().endswith((".", "!", "?", ":")) else "."
    return f"{message.rstrip()}{end} Fix: {fix_cli}"
