"""check-image: ``qemu-img check --output=json`` surfaced as problems with a next step each.

Read-only unless a repair is asked for; an image a VM is writing is checked through a shared view
(``-U``) with a warning, since its metadata may be mid-update, and never repaired. Only the image's
own metadata is checked: its backing chain is not opened (``"backing": null``), so an overlay whose
base is missing is still checked, and a broken base is not reported against every overlay.

Each finished check is remembered (:mod:`imagegui.core.chains.checkstore`): its findings become the
image's ``check-errors`` / ``leaked-clusters`` problems until the file changes or is checked again.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from imagegui.core.chains import checkstore, diagnose
from imagegui.core.chains.checkstore import CheckRecord, Fingerprint
from imagegui.core.chains.diagnose import Kind, Level, cli_text
from imagegui.core.jobs import CancelToken, ProgressFn
from imagegui.core.ops import guards
from imagegui.core.ops.plan import (
    OpResult,
    Plan,
    add_findings,
    probe_or_refuse,
    warn,
)
from imagegui.core.qemu import qemuimg
from imagegui.core.read.backing import canonical
from imagegui.core.strenum import StrEnum

if TYPE_CHECKING:
    from imagegui.core.virt.inventory import DomainSource


class CheckKind(StrEnum):
    """What one finding of ``qemu-img check`` is about (``check-image``'s ``kind``): the check's
    own words, not the scan's problem kinds; what is kept of a check becomes those
    (``checkstore``)."""

    CORRUPT = "corrupt"
    LEAKS = "leaks"
    CHECK_ERROR = "check-error"
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True, kw_only=True)
class CheckProblem:
    """One thing ``qemu-img check`` found, phrased like the scanner's problems."""

    kind: CheckKind
    level: Level
    path: str
    message: str
    #: The repair command, for the command line's text only (the window offers Repair).
    fix_cli: str = ""

    @property
    def cli_text(self) -> str:
        return cli_text(self.message, self.fix_cli)

    def to_json(self) -> dict[str, str]:
        d = {
            "kind": str(self.kind),
            "severity": str(self.level),
            "path": self.path,
            "message": self.message,
        }
        if self.fix_cli:
            d["fix_cli"] = self.fix_cli
        return d


@dataclass(kw_only=True)
class CheckResult(OpResult):
    """What one ``qemu-img check`` found, and what of it is kept."""

    problems: list[CheckProblem] = field(default_factory=list)
    #: qemu-img check's exit status (``qemuimg.CHECK_EXIT``).
    returncode: int = 0
    #: Its JSON report as printed (None when it printed none).
    report: Any = None
    #: What the store keeps of it (None: nothing reliable, the image changed while checked).
    record: CheckRecord | None = None
    #: Why the store could not keep it, when it could not.
    store_note: str | None = None

    def to_json(self) -> dict[str, Any]:
        """``check-image --json``."""
        return {
            "problems": [p.to_json() for p in self.problems],
            "returncode": self.returncode,
            "report": self.report,
            "record": self.record.to_json() if self.record else None,
            "store_note": self.store_note,
        }


@dataclass(kw_only=True)
class CheckPlan(Plan[CheckResult]):
    op: ClassVar[str] = "check"

    image: str
    repair: str | None = None
    format: str
    roots: tuple[str, ...] = ()

    def replan(self) -> CheckPlan:
        return plan_check(
            self.image,
            self.repair,
            roots=self.roots,
            allow=self.allow,
            force=self.force,
            qemu_img=self.qemu_img,
            domains=self.domains,
        )

    def _execute(self, progress: ProgressFn, cancel: CancelToken) -> CheckResult:
        before = Fingerprint.of(self.image)
        res = qemuimg.run(
            self.commands[0],
            cancel=cancel,
            ok_codes=tuple(qemuimg.CHECK_EXIT),
            qemu_img=self.qemu_img,
        )
        progress(1.0)
        rec = check_record(
            self.image,
            self.format,
            res.returncode,
            res.stdout,
            res.stderr,
            before,
            Fingerprint.of(self.image),
            repaired=bool(self.repair),
        )
        store_note = None
        if rec is not None:
            store_note = checkstore.record([rec]).note
        problems = check_problems(self.image, res.returncode, res.stdout)
        if res.returncode == 1 and not res.stdout.strip():
            raise qemuimg.map_error(res.argv, res.returncode, res.stderr)
        problems += _flag_problems(self.image, problems)
        verdict = "no problems" if not problems else f"{len(problems)} problem(s)"
        return CheckResult(
            message=f"{self.image}: {verdict}",
            changed=[self.image] if self.repair else [],
            problems=problems,
            returncode=res.returncode,
            report=_json_or_none(res.stdout),
            record=rec,
            store_note=store_note,
        )


def _flag_problems(path: str, found: list[CheckProblem]) -> list[CheckProblem]:
    """The header's corrupt flag, read after the check: qemu-img check counts damage, not the
    flag, so an image qemu will only open read-only could otherwise be called "no problems"."""
    from imagegui.core.read.probe import ProbeError, probe_image

    if any(p.kind == CheckKind.CORRUPT for p in found):
        return []
    try:
        flags = probe_image(path).flags
    except ProbeError:
        return []
    if not flags.get("corrupt"):
        return []
    return [
        CheckProblem(
            kind=CheckKind.CORRUPT,
            level=Level.ERROR,
            path=path,
            message="qemu marked this image corrupt (header flag), so it opens only read-only; "
            "the check found no damage now - repairing everything clears the flag",
            fix_cli=diagnose.fix_cli(Kind.CORRUPT, path),
        )
    ]


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def check_problems(path: str, returncode: int, stdout: str) -> list[CheckProblem]:
    """Turns ``qemu-img check --output=json`` into problems with a next step each."""
    if returncode == 63:
        return [
            CheckProblem(
                kind=CheckKind.UNSUPPORTED,
                level=Level.INFO,
                path=path,
                message="this format has no consistency check",
            )
        ]
    report = _json_or_none(stdout) or {}
    out = []
    if n := report.get("corruptions", 0):
        out.append(
            CheckProblem(
                kind=CheckKind.CORRUPT,
                level=Level.ERROR,
                path=path,
                message=f"{n} corruption(s): copy the data out first (flatten it), then repair "
                "everything the check found",
                fix_cli=diagnose.fix_cli(Kind.CORRUPT, path),
            )
        )
    if n := report.get("leaks", 0):
        out.append(
            CheckProblem(
                kind=CheckKind.LEAKS,
                level=Level.WARNING,
                path=path,
                message=f"{n} leaked cluster(s) waste space but harm no data; repairing the "
                "leaks reclaims it",
                fix_cli=diagnose.fix_cli(Kind.LEAKED_CLUSTERS, path),
            )
        )
    if n := report.get("check-errors", 0):
        out.append(
            CheckProblem(
                kind=CheckKind.CHECK_ERROR,
                level=Level.ERROR,
                path=path,
                message=f"{n} error(s) while checking (I/O?)",
            )
        )
    if returncode == 1 and not report:
        out.append(
            CheckProblem(
                kind=CheckKind.CHECK_ERROR,
                level=Level.ERROR,
                path=path,
                message="the check itself failed",
            )
        )
    return out


def check_record(
    path: str,
    fmt: str,
    returncode: int,
    stdout: str,
    stderr: str,
    before: Fingerprint | None,
    after: Fingerprint | None,
    repaired: bool = False,
) -> CheckRecord | None:
    """What to remember of one ``qemu-img check`` run, or None when it says nothing reliable:
    the file vanished, or changed while a read-only check ran (the report mixes two states).
    After a repair the report describes the repaired file, so the state after it is kept."""
    if after is None or (not repaired and before != after):
        return None
    if returncode == 63:  # no consistency check for this format: nothing found
        return CheckRecord(path, after, time.time(), fmt)
    report = _json_or_none(stdout)
    if not isinstance(report, dict):
        if returncode != 1:
            return None
        return CheckRecord(path, after, time.time(), fmt, failure=failure_text(stderr))
    return CheckRecord(
        path,
        after,
        time.time(),
        fmt,
        corruptions=_count(report, "corruptions"),
        leaks=_count(report, "leaks"),
        check_errors=_count(report, "check-errors"),
    )


def _count(report: dict[str, Any], key: str) -> int:
    value = report.get(key, 0)
    return value if isinstance(value, int) and value > 0 else 0


def failure_text(stderr: str) -> str:
    """qemu-img's reason in one line, without the ``json:{...}`` name it was given."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    text = lines[-1] if lines else "qemu-img check failed without a message"
    text = re.sub(r"^qemu-img: ", "", text)
    text = re.sub(r"^Could not open '(?:[^']|'(?!: ))*': ", "", text)
    return text if text.endswith(".") else text + "."


def check_argv(
    image: str, image_format: str, repair: str | None = None, force_share: bool = False
) -> list[str]:
    """``qemu-img check`` of the image's own metadata: the backing file is not opened."""
    target = {"file": {"driver": "file", "filename": image}, "backing": None}
    argv = ["qemu-img", "check", "--output=json", "-f", image_format]
    if repair:
        argv += ["-r", repair]
    if force_share:
        argv.append("-U")
    argv.append("json:" + json.dumps(target, separators=(",", ":")))
    return argv


def plan_check(
    image: str,
    repair: str | None = None,
    roots: tuple[str, ...] = (),
    allow: tuple[str, ...] = (),
    force: bool = False,
    qemu_img: str = "",
    domains: DomainSource | None = None,
) -> CheckPlan:
    """The check opens the image without its backing file (a network backing is never
    contacted), but with its own extents and data file: those are guarded like any other
    operation's reads (``roots``/``allow``).

    A repair rewrites the image's metadata in place: refused while a VM runs on it; for a VM
    that libvirt keeps shut off (``domains``) a repair is the right moment, so it is only
    warned about, naming that VM."""
    image = canonical(image)
    index, findings = guards.read_domains(domains if repair else None)
    img = probe_or_refuse(image, "image", findings)
    force_share = False
    if img:
        own = guards.Chain(images=[img])
        findings += guards.chain_access(own, guards.access_roots(image, extra=roots), allow)
        state_finding = guards.not_in_use(image, "image", writers_only=repair is None, index=index)
        if repair:
            add_findings(findings, state_finding, guards.writable(image))
            # A shut-off VM's disk is only warned about: while the VM is off is the time to
            # repair it. A running VM's is refused (its QEMU has it open).
            findings += guards.not_used_by_domain(
                image,
                "image",
                index,
                "repairing rewrites the metadata of {vm} disk",
                stopped="warn",
                skip_running=state_finding is not None,
            )
        elif state_finding:
            force_share = True
            held = state_finding.message.split(";")[0]
            findings.append(
                warn("in-use", f"{held}; checking a shared view (-U), results may be inconsistent")
            )
    fmt = img.format if img else "?"
    argv = check_argv(image, fmt, repair, force_share)
    changes = [f"{image}: repairs {repair} (rewrites metadata)"] if repair else []
    return CheckPlan(
        title=f"check: {image}",
        commands=[argv],
        changes=changes,
        findings=findings,
        force=force,
        allow=tuple(allow),
        qemu_img=qemu_img,
        image=image,
        repair=repair,
        format=fmt,
        roots=tuple(roots),
        domains=domains,
    )
