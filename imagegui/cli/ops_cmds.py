"""overlay / rebase / commit / flatten / check-image / launch on the command line.

The same plans the GUI confirms: ``--dry-run`` prints a plan (exact command lines, what changes,
the guards' findings) and changes nothing. A run prints warnings, then a progress bar on stderr
when it is a terminal. Ctrl-C cancels in order: qemu-img is stopped, half-written files are
removed, and the message says what state the images are in.
Exit status: 0 done, 1 qemu failed, 2 refused by a guard or bad argument, 130 cancelled.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from imagegui.core.checkimage import plan_check
from imagegui.core.guards import GuardRefused
from imagegui.core.jobs import CancelledError, CancelToken, Throttle, no_progress
from imagegui.core.operations import (
    Plan,
    plan_commit,
    plan_flatten,
    plan_overlay,
    plan_rebase,
    plan_undo_rebase,
)
from imagegui.core.problems import cli_text
from imagegui.core.qemuimg import QemuImgError
from imagegui.core.units import parse_size, printable

EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_CANCELLED = 0, 1, 2, 130


def _usage_error(message: str) -> Exception:
    from imagegui.cli import UsageError  # imported late: imagegui.cli imports this module

    return UsageError(message)


# --------------------------------------------------------------------------- progress bar


class ProgressBar:
    """``[#########---------]  47.3%  flatten: ...`` redrawn in place on a terminal."""

    def __init__(self, title: str, stream: TextIO, width: int = 30):
        self.title = printable(title)
        self.stream = stream
        self.width = width
        self.drawn = False

    def __call__(self, fraction: float) -> None:
        filled = int(round(fraction * self.width))
        bar = "#" * filled + "-" * (self.width - filled)
        title = self.title if len(self.title) <= 50 else "..." + self.title[-47:]
        self.stream.write(f"\r[{bar}] {fraction * 100:5.1f}%  {title}")
        self.stream.flush()
        self.drawn = True

    def finish(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


@contextmanager
def _sigint_cancels(token: CancelToken) -> Iterator[None]:
    """Ctrl-C sets the token (qemu-img is stopped by it) instead of raising mid-cleanup."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(*_: object) -> None:
        # Not token.cancel() here: the handler interrupts the main thread anywhere, possibly
        # inside the token's own lock. A short thread takes the lock in the normal way.
        threading.Thread(target=token.cancel, name="cancel").start()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _err(message: str) -> None:
    print(f"imagegui: {printable(message)}", file=sys.stderr)


def execute(
    plan: Plan, args: argparse.Namespace, report: Callable[[object], None] | None = None
) -> int:
    """Prints (dry run) or runs a plan; maps the outcome onto the exit status."""
    if args.dry_run:
        if getattr(args, "json", False):
            print(json.dumps(plan.to_json(), indent=2))
        else:
            print(plan.describe())  # each line escaped by describe()
        return EXIT_REFUSED if plan.refused else EXIT_OK
    if plan.refused:
        _refused(plan.blocking())
        return EXIT_REFUSED
    for f in plan.findings:
        if f.level == "warn" or (f.level == "refuse" and plan.force):
            _err(f"warning: {f.cli_text}")
    token = CancelToken()
    bar = ProgressBar(plan.title, sys.stderr) if sys.stderr.isatty() else None
    progress = Throttle(bar, 0.1) if bar else no_progress
    try:
        with _sigint_cancels(token):
            result = plan.run(progress, token)
    except CancelledError as exc:
        _finish(bar)
        _err(str(exc))
        return EXIT_CANCELLED
    except GuardRefused as exc:
        _finish(bar)
        _refused(exc.findings)
        return EXIT_REFUSED
    except QemuImgError as exc:
        _finish(bar)
        _err(cli_text(str(exc), exc.fix_cli))
        return EXIT_FAILED
    _finish(bar)
    if report:
        report(result)
    else:
        hint = f" ({result.cli_hint})" if result.cli_hint else ""
        print(printable(result.message + hint))
    return EXIT_OK


def _refused(findings: list) -> None:
    """Each refusal with its command-line fix (``--allow-file PATH`` for a file it names)."""
    for f in findings:
        _err(f"refused: {f.cli_text}")


def _finish(bar: ProgressBar | None) -> None:
    if bar:
        bar.finish()


# --------------------------------------------------------------------------- commands


def _overlay(args: argparse.Namespace) -> int:
    size = None
    if args.size:
        try:
            size = parse_size(args.size)
        except ValueError as exc:
            raise _usage_error(str(exc)) from None
    plan = plan_overlay(
        args.base, args.new, size, absolute=args.absolute, allow=tuple(args.allow_file)
    )
    return execute(plan, args)


def _rebase(args: argparse.Namespace) -> int:
    if args.undo:
        if args.new_backing is not None:
            raise _usage_error("--undo takes only IMAGE")
        return execute(plan_undo_rebase(args.image), args)  # names only what it restores
    if args.new_backing is None:
        raise _usage_error('rebase needs NEW_BACKING (or "" to make IMAGE independent)')
    plan = plan_rebase(
        args.image, args.new_backing, unsafe=args.unsafe, absolute=args.absolute,
        allow=tuple(args.allow_file), force=args.force,
    )  # fmt: skip
    return execute(plan, args)


def _commit(args: argparse.Namespace) -> int:
    plan = plan_commit(
        args.image, force=args.force, roots=tuple(args.root), allow=tuple(args.allow_file)
    )
    return execute(plan, args)


def _flatten(args: argparse.Namespace) -> int:
    return execute(plan_flatten(args.image, args.out, allow=tuple(args.allow_file)), args)


def _check_image(args: argparse.Namespace) -> int:
    outcome = {"problems": False}

    def report(result: object) -> None:
        problems = result.data["problems"]  # type: ignore[attr-defined]
        outcome["problems"] = any(p.severity != "info" for p in problems)
        if note := result.data.get("store_note"):  # type: ignore[attr-defined]
            print(f"imagegui: note: {printable(note)}", file=sys.stderr)
        if args.json:
            data = dict(result.data)  # type: ignore[attr-defined]
            data["problems"] = [p.to_json() for p in problems]
            data["record"] = data["record"].to_json() if data.get("record") else None
            print(json.dumps(data, indent=2))
            return
        print(printable(result.message))  # type: ignore[attr-defined]
        for p in problems:
            print(f"  [{p.severity}] {p.kind}: {printable(p.cli_text)}")

    plan = plan_check(args.image, args.repair, allow=tuple(args.allow_file), force=args.force)
    status = execute(plan, args, report)
    if status == EXIT_OK and outcome["problems"]:
        return EXIT_FAILED  # like `imagegui check`: problems found -> 1
    return status


def _launch(args: argparse.Namespace) -> int:
    from imagegui.core.launch import LaunchError, LaunchOptions, plan_launch

    if args.memory < 16 or args.cpus < 1:
        raise _usage_error("--memory must be at least 16 (MB) and --cpus at least 1")
    opts = LaunchOptions(
        memory=args.memory, cpus=args.cpus, snapshot=args.snapshot, readonly=args.read_only,
        headless=args.headless, accel=args.accel,
    )  # fmt: skip
    plan = plan_launch(args.image, opts, roots=tuple(args.root), allow=tuple(args.allow_file))
    if args.dry_run or plan.refused:
        return execute(plan, args)
    try:
        vm = plan.start()
    except GuardRefused as exc:
        _refused(exc.findings)
        return EXIT_REFUSED
    except (LaunchError, QemuImgError) as exc:
        _err(str(exc))
        return EXIT_FAILED
    if vm.note:
        _err(vm.note)
    try:  # from here on Ctrl-C powers the VM down, even during the announcement
        print(
            f"VM running: {printable(plan.image)} (PID {vm.pid}); Ctrl-C powers it down",
            flush=True,
        )
        rc = vm.wait()
        vm.close()
        print(f"VM stopped (qemu exit status {rc})", flush=True)
        return EXIT_OK if rc == 0 else EXIT_FAILED
    except KeyboardInterrupt:
        print("powering down ...", file=sys.stderr, flush=True)
        try:
            rc = vm.stop(timeout=args.stop_timeout)
        except KeyboardInterrupt:  # a second Ctrl-C: no more waiting
            vm.proc.kill()
            rc = vm.stop(timeout=0)
        print(f"VM stopped (qemu exit status {rc})", flush=True)
        return EXIT_OK


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the exact commands, what would change and the checks; change nothing",
    )
    p.add_argument(
        "--allow-file",
        action="append",
        default=[],
        metavar="PATH",
        help="let the chain read this file (or protocol source such as nbd:HOST:PORT) although "
        "it lies outside the images' directories, is a device, private to another user or on "
        "the network; repeat for each file. Refused otherwise",
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the operation subcommands."""
    p = sub.add_parser(
        "overlay",
        help="create a qcow2 overlay (linked clone) on a base image",
        description="Create NEW as a qcow2 overlay of BASE, recording BASE's real format. The "
        "backing name is stored relative to NEW's directory unless --absolute.",
    )
    p.add_argument("base")
    p.add_argument("new")
    p.add_argument("--size", help="virtual size, larger than the base's (e.g. 40G)")
    p.add_argument("--absolute", action="store_true", help="store the base's absolute path")
    _add_common(p)
    p.set_defaults(func=_overlay)

    p = sub.add_parser(
        "rebase",
        help="point an image at another backing file (safe by default)",
        description="Safe mode keeps every byte the guest sees (copies what differs). --unsafe "
        "only rewrites the pointer: the repair for a moved or renamed base. The old pointer is "
        "journalled; --undo restores it.",
    )
    p.add_argument("image")
    p.add_argument("new_backing", nargs="?", help='new backing file ("" = make independent)')
    p.add_argument("--unsafe", action="store_true", help="rewrite only the pointer, copy nothing")
    p.add_argument("--absolute", action="store_true", help="store the absolute path")
    p.add_argument("--undo", action="store_true", help="undo the last rebase of IMAGE")
    p.add_argument("--force", action="store_true", help="write IMAGE even if made read-only")
    _add_common(p)
    p.set_defaults(func=_rebase)

    p = sub.add_parser(
        "commit",
        help="write an overlay's data into its backing file",
        description="Refused when the backing file has other overlays (they would silently "
        "change) unless --force. Directories scanned for them: the two images' and any --root.",
    )
    p.add_argument("image")
    p.add_argument("--force", action="store_true", help="commit even into a shared base")
    p.add_argument("--root", action="append", default=[], help="also look here for other overlays")
    _add_common(p)
    p.set_defaults(func=_commit)

    p = sub.add_parser(
        "flatten",
        help="copy an image's whole chain into one independent qcow2",
        description="qemu-img convert into a temporary file beside OUT, renamed on success; "
        "free space is checked first (qemu-img measure). OUT must not exist.",
    )
    p.add_argument("image")
    p.add_argument("out")
    _add_common(p)
    p.set_defaults(func=_flatten)

    p = sub.add_parser(
        "check-image",
        help="run qemu-img check on one image",
        description="Exit status 1 when problems are found.",
    )
    p.add_argument("image")
    p.add_argument("--repair", choices=("leaks", "all"), help="repair (writes the image)")
    p.add_argument("--force", action="store_true", help="repair even a read-only image")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _add_common(p)
    p.set_defaults(func=_check_image)

    p = sub.add_parser(
        "launch",
        help="boot an image in qemu-system-x86_64 until it stops",
        description="Runs until the VM powers off; Ctrl-C powers it down (ACPI), then quits it "
        "after --stop-timeout. A base with overlays only starts with --snapshot or --read-only.",
    )
    p.add_argument("image")
    p.add_argument("--snapshot", action="store_true", help="throw the guest's writes away")
    p.add_argument("--read-only", action="store_true", help="give the guest a read-only disk")
    p.add_argument("--memory", type=int, default=1024, metavar="MB")
    p.add_argument("--cpus", type=int, default=1)
    p.add_argument("--headless", action="store_true", help="no display window")
    p.add_argument("--accel", choices=("kvm", "tcg"), help="default: kvm when usable")
    p.add_argument("--stop-timeout", type=float, default=60.0, metavar="SECONDS")
    p.add_argument("--root", action="append", default=[], help="also look here for overlays")
    _add_common(p)
    p.set_defaults(func=_launch)
