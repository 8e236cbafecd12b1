"""What every operation shares: a *plan* first, then a run that plans again; findings; results.

A plan holds the exact command lines, what will change in words, and every guard's finding; the
CLI's ``--dry-run`` prints it and the window shows it before the user confirms. ``Plan.run`` plans
again and refuses when anything moved in between (a VM started, a target appeared, a format
changed) - the check and the write are milliseconds apart instead of a dialog's lifetime apart.
Each operation is one module (``overlay``, ``rebase``, ``commit``, ``flatten``, ``check``,
``launch``, ``leftovers``) with a ``plan_*`` function and a ``Plan`` subclass that says how it
plans again (``replan``) and what running it does (``_execute``), and a typed result.

Runs take the job shape of ``imagegui.core.jobs`` (progress callback, cancel token), so the same
code serves the terminal progress bar and the window's worker pool. A cancelled run raises
``CancelledError`` whose message says what state the images are in.
"""

from __future__ import annotations

import logging
import os
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from imagegui.core.chains.diagnose import Level, cli_text
from imagegui.core.jobs import CancelledError, CancelToken, Job, ProgressFn, no_progress
from imagegui.core.read import backing
from imagegui.core.read.model import ImageInfo
from imagegui.core.units import printable

if TYPE_CHECKING:
    from imagegui.core.virt.inventory import DomainSource

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- findings


@dataclass(frozen=True)
class Finding:
    """One guard's verdict. An ``ERROR`` refuses the run (``force`` lifts it when
    ``overridable``); a ``WARNING`` runs with it; an ``INFO`` is a note."""

    level: Level
    code: str
    #: Prose for the window and the terminal alike: no command lines or flags.
    message: str
    overridable: bool = False
    #: The command that fixes it, added only by the command line's text (see ``cli_text``).
    fix_cli: str = ""
    #: The images the finding is about (a shared base's other overlays), so a window can list
    #: them once and refer to them by count; not part of the JSON.
    paths: tuple[str, ...] = field(default=(), compare=False)
    #: The one file (or protocol source) the finding is about, when allowing exactly that file
    #: explicitly lifts it (``ACCESS_CODES``).
    subject: str | None = None

    @property
    def refuses(self) -> bool:
        return self.level is Level.ERROR

    @property
    def cli_text(self) -> str:
        return cli_text(self.message, self.fix_cli)

    @property
    def allowable(self) -> bool:
        return self.refuses and self.code in ACCESS_CODES and self.subject is not None

    def to_json(self) -> dict[str, object]:
        d: dict[str, object] = {
            "level": str(self.level),
            "code": self.code,
            "message": self.message,
            "overridable": self.overridable,
        }
        if self.fix_cli:
            d["fix_cli"] = self.fix_cli
        if self.subject is not None:
            d["file"] = self.subject
        return d


#: Refusals lifted by allowing the named file explicitly (``--allow-file``, the dialogs'
#: "Allow reading ..." box), never by ``force``.
ACCESS_CODES = ("outside-roots", "device-file", "private-file", "protocol-backing")

#: How a finding's level reads to a person (the dry run's tags, the window's preview).
LEVEL_WORDS = {Level.ERROR: "refused", Level.WARNING: "warning", Level.INFO: "note"}


def refuse(
    code: str,
    message: str,
    overridable: bool = False,
    fix_cli: str = "",
    paths: tuple[str, ...] = (),
    subject: str | None = None,
) -> Finding:
    return Finding(Level.ERROR, code, message, overridable, fix_cli, paths, subject)


def warn(code: str, message: str, fix_cli: str = "", subject: str | None = None) -> Finding:
    return Finding(Level.WARNING, code, message, fix_cli=fix_cli, subject=subject)


def info(code: str, message: str, fix_cli: str = "") -> Finding:
    return Finding(Level.INFO, code, message, fix_cli=fix_cli)


class GuardRefused(Exception):
    """A guard said no; the message lists every reason (exit status 2 on the command line)."""

    def __init__(self, findings: list[Finding] | tuple[Finding, ...]):
        self.findings = list(findings)
        super().__init__("; ".join(f.message for f in self.findings))


# --------------------------------------------------------------------------- results


@dataclass(kw_only=True)
class OpResult:
    """What a finished operation did, in words and paths (the window rescans these). Operations
    that return more say so with a subclass (``RebaseResult``, ``CheckResult``, ...)."""

    message: str
    changed: list[str] = field(default_factory=list)
    #: A follow-up for the command line only (how to undo it there); the window has actions.
    cli_hint: str = ""


R = TypeVar("R", bound=OpResult)


# --------------------------------------------------------------------------- plans


@dataclass(kw_only=True)
class Plan(Generic[R]):
    """The exact commands an operation will run, what they change, and the guards' findings."""

    #: The operation's name (``overlay``, ``commit``, ...), as the JSON and the log say it.
    op: ClassVar[str]
    #: What the search over ``searched`` looks for, in words the plan's text and the window use.
    searched_for: ClassVar[str] = "other overlays"

    title: str
    commands: list[list[str]] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    #: The folders searched (each scanned whole) for other users of an image: a base's other
    #: overlays. A plan that searches also says so in a note (``searched``) naming them, so the
    #: user knows what was not looked at; empty when the operation searches nothing.
    searched: tuple[str, ...] = ()
    #: Lifts refusals marked ``overridable`` (a shared base's siblings), never the others.
    force: bool = False
    #: Files (and protocol sources) the user allowed this plan to read by name although they lie
    #: outside its directories, are devices or private (``guards.chain_access``).
    allow: tuple[str, ...] = ()
    #: The qemu-img program to run (a setting of the window, ``$IMAGEGUI_QEMU_IMG`` on the
    #: command line); empty: ``qemu-img`` on PATH. The command lines shown keep the bare name.
    qemu_img: str = ""
    #: Documents handed to a program or an API instead of (or beside) a command line, each as
    #: (caption, text): the domain XML given to libvirt. Shown with the commands, compared like
    #: them when the plan runs (a definition edited since the preview refuses the run).
    documents: list[tuple[str, str]] = field(default_factory=list)
    #: Where to ask libvirt which VMs use the images (``guards.read_domains``); read afresh by
    #: each planning, so ``run`` sees a VM defined after the preview. None: libvirt not asked.
    domains: DomainSource | None = None

    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.refuses and not (self.force and f.overridable)]

    def forced(self, finding: Finding) -> bool:
        """``finding`` is a refusal this plan's ``force`` lifts."""
        return finding.refuses and self.force and finding.overridable

    @property
    def refused(self) -> bool:
        return bool(self.blocking())

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level is Level.WARNING]

    def verdict(self) -> str:
        """One line for the log: refused and why, or how many warnings it runs with."""
        blocking = self.blocking()
        if blocking:
            return "refused: " + "; ".join(printable(f.message) for f in blocking)
        warns = sum(1 for f in self.findings if f.level is not Level.INFO)
        return f"may run ({len(self.commands)} commands, {warns} warnings)"

    def command_lines(self) -> list[str]:
        return [shlex.join(argv) for argv in self.commands]

    @property
    def search_line(self) -> bool:
        """Whether the text states ``searched`` on a line of its own: not when a ``searched``
        note already says it (with what was not looked at), once is enough."""
        return bool(self.searched) and not any(f.code == "searched" for f in self.findings)

    def describe(self) -> str:
        """The text ``--dry-run`` prints (the window shows ``plan_dialog.plan_html`` instead):
        one line per item, each with its control characters escaped (a name with a line feed
        must not forge a line such as the verdict)."""
        lines = [printable(self.title), "commands:"]
        lines += [f"  $ {printable(c)}" for c in self.command_lines()] or ["  (none)"]
        for caption, text in self.documents:
            lines.append(f"{printable(caption)}:")
            lines += [f"  {printable(line)}" for line in text.splitlines()]
        lines.append("will change:")
        lines += [f"  - {printable(c)}" for c in self.changes] or ["  nothing"]
        if self.search_line:
            roots = ", ".join(printable(r) for r in self.searched)
            lines.append(f"searched for {self.searched_for} in: {roots}")
        if self.findings:
            lines.append("checks:")
            for f in self.findings:
                tag = "forced" if self.forced(f) else LEVEL_WORDS[f.level]
                lines.append(f"  [{tag}] {printable(f.cli_text)}")
        lines.append("verdict: " + ("REFUSED" if self.refused else "ok to run"))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "op": self.op,
            "title": self.title,
            "commands": self.commands,
            "command_lines": self.command_lines(),
            "changes": self.changes,
            "searched": list(self.searched),
            "findings": [f.to_json() for f in self.findings],
            "refused": self.refused,
        }
        if self.documents:  # only plans that hand libvirt a document have the key
            doc["documents"] = [{"title": c, "text": t} for c, t in self.documents]
        return doc

    # -- running

    def replan(self) -> Plan[R]:
        """The same plan made again from the same inputs, as things are now."""
        raise NotImplementedError

    def _execute(self, progress: ProgressFn, cancel: CancelToken) -> R:
        """Runs the checked plan (the operation's own part of ``run``)."""
        raise NotImplementedError

    def run(self, progress: ProgressFn | None = None, cancel: CancelToken | None = None) -> R:
        """Checks the guards again, then runs. Raises ``GuardRefused``, ``CancelledError`` or a
        ``QemuImgError``."""
        progress = progress or no_progress
        cancel = cancel or CancelToken()
        fresh = self.replan()
        title = printable(self.title)
        if fresh.blocking():
            log.warning(
                "plan %s refused: %s",
                title,
                "; ".join(printable(f.message) for f in fresh.blocking()),
            )
            raise GuardRefused(fresh.blocking())
        if fresh.commands != self.commands or fresh.documents != self.documents:
            log.warning("plan %s refused: the images changed since it was made", title)
            raise GuardRefused(
                [refuse("changed", "the images changed since this plan was made; review it again")]
            )
        log.info(
            "plan %s: runs (%d commands%s; %d findings)",
            title,
            len(self.commands),
            ", forced" if self.force else "",
            len(fresh.findings),
        )
        try:
            cancel.raise_if_cancelled("nothing was changed")
            result = self._execute(progress, cancel)
        except CancelledError as exc:
            log.warning("plan %s cancelled: %s", title, printable(str(exc)))
            raise
        except Exception as exc:
            log.warning("plan %s failed: %s", title, printable(str(exc)))
            raise
        log.info("plan %s done: %s", title, printable(result.message))
        return result

    def job(self) -> Job[R]:
        return Job(self.title, self.run)


# --------------------------------------------------------------------------- planning helpers


def probe_or_refuse(path: str, role: str, findings: list[Finding]) -> ImageInfo | None:
    """The image's header, or None with a refusal added that names ``role`` and why."""
    from imagegui.core.read.probe import ProbeError, probe_image

    try:
        return probe_image(path)
    except ProbeError as exc:
        findings.append(refuse("unreadable", f"{role} {path}: {exc}"))
        return None


def add_findings(findings: list[Finding], *maybe: Finding | None) -> None:
    """Adds the guards' answers that are findings (a guard returns None when all is well)."""
    findings.extend(f for f in maybe if f is not None)


def backing_name(target: str, base: str, absolute: bool) -> str | None:
    """The name to store in ``target``: relative to its directory (survives moving the whole
    directory), or absolute on request (survives moving the overlay alone). The name is one the
    kernel resolves from ``target``'s directory to ``base`` itself (symlinked directories and
    ``..`` included); None when no name does (the directory is missing)."""
    directory = os.path.dirname(target)
    if absolute:
        return base if backing.reaches(directory, base, base) else None
    return backing.relative_name(directory, base)


def backing_name_finding(target: str, name: str | None, base: str) -> Finding | None:
    """Refuses a stored name that would make qemu open another file than the plan names."""
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        return None  # target_free says so
    if name is not None and backing.reaches(directory, name, base):
        return None
    return refuse(
        "backing-name",
        f"no backing name stored in {target} would lead qemu to {base} (the directories are "
        "linked in a way imagegui cannot express); store the absolute path instead",
    )
