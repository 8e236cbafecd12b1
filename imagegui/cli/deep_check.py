"""``imagegui check DIR --deep``: the scan's problems plus what ``qemu-img check`` finds in every
image, reported in the same text and JSON as ``check``."""

from __future__ import annotations

import sys

from imagegui.cli.ops_cmds import cancelled_status, qemu_img_setting, signals_cancel
from imagegui.cli.scan_cmds import TerminalLine
from imagegui.core.chains.graph import ChainGraph
from imagegui.core.jobs import CancelledError, CancelToken
from imagegui.core.ops.deepcheck import DeepResult, check_all
from imagegui.core.units import printable


class _TerminalChecks(TerminalLine):
    """``checking... 12 of 200 images`` while the checks run."""

    def __call__(self, done: int, total: int) -> None:
        self.show(f"checking... {done:,} of {total:,} images")


def run_deep(graph: ChainGraph, jobs: int | None) -> tuple[ChainGraph, DeepResult]:
    """Checks every scanned image and returns the graph rebuilt with the findings.

    Ctrl-C, SIGTERM and SIGHUP set a cancel token rather than raise KeyboardInterrupt in the
    main thread: raised inside ``concurrent.futures.wait`` while it held the futures' locks,
    it left a finishing check unable to report and the command hung (seen once in CI)."""
    progress = _TerminalChecks(sys.stderr) if sys.stderr.isatty() else None
    token = CancelToken()
    received: list[int] = []
    try:
        with signals_cancel(token, received):
            result = check_all(
                graph.scan.images.values(), jobs, progress, token, qemu_img=qemu_img_setting()
            )
    except (KeyboardInterrupt, CancelledError) as exc:
        if progress is not None:
            progress.clear()
        partial: DeepResult | None = getattr(exc, "partial", None)
        kept = partial.checked if partial else 0
        print(
            f"imagegui: cancelled; every running qemu-img check was stopped (checks only read, "
            f"no image was changed); the {kept} finished check{'s' * (kept != 1)} are kept",
            file=sys.stderr,
        )
        raise SystemExit(cancelled_status(received)) from None
    finally:
        if progress is not None:
            progress.clear()
    if result.store.note and result.store.note != graph.checks_note:
        print(f"imagegui: note: {printable(result.store.note)}", file=sys.stderr)
    return ChainGraph(
        graph.scan, checks=result.store, domains=graph.domains, portable=graph.portable
    ), result


def deep_json(result: DeepResult, jobs: int) -> dict[str, object]:
    return {
        "checked": result.checked,
        "jobs": jobs,
        "force_share": True,
        "skipped": result.skipped,
        "shared": result.shared,
        "unrecorded": [{"path": p, "message": m} for p, m in result.unrecorded],
    }


def deep_text(result: DeepResult, rel) -> list[str]:
    """Lines for the text report: what was checked, and how."""
    n = result.checked
    lines = [
        f"deep check: {n} image{'s' * (n != 1)} checked by qemu-img check, read-only with shared "
        "access (-U), so images in use were checked too"
    ]
    if result.skipped:
        lines.append(
            f"  {len(result.skipped)} not checked: their format (raw, vpc, qcow) has no "
            "consistency check"
        )
    for path in result.shared:
        lines.append(
            f"  {rel(path)}: in use (a running VM or another program held it) while checked; "
            "what was found there may be transient"
        )
    for path, why in result.unrecorded:
        lines.append(f"  {rel(path)}: result not kept: {printable(why)}")
    return lines
