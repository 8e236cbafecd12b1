"""overlay / rebase / commit / flatten / check-image / launch on the command line.

The same plans the GUI confirms: ``--dry-run`` prints a plan (exact command lines, what changes,
the guards' findings) and changes nothing. A run prints warnings, then a progress bar on stderr
when it is a terminal. Ctrl-C, SIGTERM and SIGHUP (the terminal closed) all cancel in order:
qemu-img is stopped, half-written files are removed, and the message says what state the images
are in. Should imagegui be killed outright (SIGKILL), its children die with it (see
``core.qemu.processes``) and the next scan notes any temporary file left behind.
Exit status: 0 done, 1 qemu failed, 2 refused by a guard or bad argument, 128 + the signal when
cancelled by one: 130 Ctrl-C (SIGINT), 129 SIGHUP, 143 SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from imagegui.cli.connect_args import add_connect_argument, domain_source
from imagegui.cli.remote_args import overlay_remote, refuse_remote, remote_uri
from imagegui.core.chains.diagnose import Level, cli_text
from imagegui.core.jobs import CancelledError, CancelToken, Throttle, no_progress
from imagegui.core.ops.check import CheckResult, plan_check
from imagegui.core.ops.commit import plan_commit
from imagegui.core.ops.flatten import plan_flatten
from imagegui.core.ops.overlay import plan_overlay
from imagegui.core.ops.plan import GuardRefused, OpResult, Plan
from imagegui.core.ops.rebase import plan_rebase, plan_undo_rebase
from imagegui.core.qemu.qemuimg import QemuImgError
from imagegui.core.units import parse_size, printable

if TYPE_CHECKING:
    from imagegui.core.ops.leftovers import CleanResult

log = logging.getLogger(__name__)

R = TypeVar("R", bound=OpResult)

EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_CANCELLED = 0, 1, 2, 130
#: The signals that cancel like Ctrl-C; the exit status is 128 + the first one received.
CANCEL_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def qemu_img_setting() -> str:
    """The qemu-img to run: ``$IMAGEGUI_QEMU_IMG`` (documented in the man page), else "" for
    the one on PATH. Read here, at the command line's edge, and passed to the engine."""
    return os.environ.get("IMAGEGUI_QEMU_IMG", "")


#: The options the writing commands share, each as (the attribute ``argparse`` gives it, the
#: plan's keyword, how its value becomes the keyword's).
_SHARED_OPTIONS: tuple[tuple[str, str, Callable[[argparse.Namespace], Any]], ...] = (
    ("root", "roots", lambda a: tuple(a.root)),
    ("allow_file", "allow", lambda a: tuple(a.allow_file)),
    ("force", "force", lambda a: a.force),
    ("connect", "domains", domain_source),
)


def plan_options(args: argparse.Namespace, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The keyword arguments of a ``plan_*`` call that come from the options every writing
    command shares: ``roots`` (``--root``), ``allow`` (``--allow-file``), ``force``
    (``--force``), ``domains`` (``--connect``), each only if the command's parser defines the
    option, and ``qemu_img`` (``$IMAGEGUI_QEMU_IMG``). ``skip``: keywords the plan does not
    take. One place, so that a shared option means the same to every command."""
    out: dict[str, Any] = {"qemu_img": qemu_img_setting()}
    for attr, keyword, value in _SHARED_OPTIONS:
        if hasattr(args, attr):
            out[keyword] = value(args)
    for keyword in skip:
        out.pop(keyword, None)
    return out


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
        with suppress(OSError):  # the terminal went away (SIGHUP follows): keep working
            self.stream.write(f"\r[{bar}] {fraction * 100:5.1f}%  {title}")
            self.stream.flush()
        self.drawn = True

    def finish(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


@contextmanager
def signals_cancel(token: CancelToken, received: list[int]) -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP set the token (qemu-img is stopped by it) instead of raising
    mid-cleanup; ``received`` gets each signal's number."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        received.append(signum)
        # Not token.cancel() here: the handler interrupts the main thread anywhere, possibly
        # inside the token's own lock. A short thread takes the lock in the normal way.
        threading.Thread(target=token.cancel, name="cancel").start()

    previous = {sig: signal.signal(sig, handler) for sig in CANCEL_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def cancelled_status(received: list[int]) -> int:
    """128 + the first signal (130 for Ctrl-C, the shell's convention)."""
    return 128 + received[0] if received else EXIT_CANCELLED


def _err(message: str) -> None:
    # After SIGHUP the terminal may be gone: the clean-up matters more than the message.
    with suppress(OSError):
        print(f"imagegui: {printable(message)}", file=sys.stderr, flush=True)


def partial_status(errors: Sequence[object], kept: Sequence[object]) -> int:
    """The exit status of a run that did what it could: 1 when something failed, 2 when
    something was kept back (refused), 0 when all of it was done."""
    if errors:
        return EXIT_FAILED
    return EXIT_REFUSED if kept else EXIT_OK


def execute(
    plan: Plan[R],
    args: argparse.Namespace,
    report: Callable[[R], int | None] | None = None,
    kept: Sequence[object] = (),
) -> int:
    """Prints (dry run) or runs a plan; maps the outcome onto the exit status.

    ``report`` prints a finished run's result and may return its exit status (a run that did
    only part of its work). ``kept`` are the findings the plan keeps back while doing the rest:
    a dry run that lists any exits 2, as the run itself would."""
    log.info(
        "plan %s%s: %s", printable(plan.title), " (dry run)" if args.dry_run else "", plan.verdict()
    )
    if args.dry_run:
        if getattr(args, "json", False):
            print(json.dumps(plan.to_json(), indent=2))
        else:
            print(plan.describe())  # each line escaped by describe()
        return EXIT_REFUSED if plan.refused or kept else EXIT_OK
    if plan.refused:
        _refused(plan.blocking())
        return EXIT_REFUSED
    for f in plan.findings:
        if f.level is Level.WARNING or (f.refuses and plan.force):
            _err(f"warning: {f.cli_text}")
    token = CancelToken()
    received: list[int] = []
    bar = ProgressBar(plan.title, sys.stderr) if sys.stderr.isatty() else None
    progress = Throttle(bar, 0.1) if bar else no_progress
    try:
        with signals_cancel(token, received):
            result = plan.run(progress, token)
    except CancelledError as exc:
        _finish(bar)
        _err(str(exc))
        return cancelled_status(received)
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
        return report(result) or EXIT_OK
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
        with suppress(OSError):
            bar.finish()


# --------------------------------------------------------------------------- commands


def _overlay(args: argparse.Namespace) -> int:
    uri = remote_uri(args)
    if uri is not None:  # another host's files: libvirt's storage API creates it there
        return overlay_remote(args, uri)
    size = None
    if args.size:
        try:
            size = parse_size(args.size)
        except ValueError as exc:
            raise _usage_error(str(exc)) from None
    plan = plan_overlay(
        args.base,
        args.new,
        size,
        absolute=args.absolute,
        **plan_options(args),
    )
    return execute(plan, args)


def _rebase(args: argparse.Namespace) -> int:
    if args.undo:
        if args.new_backing is not None:
            raise _usage_error("--undo takes only IMAGE")
        plan = plan_undo_rebase(args.image, **plan_options(args))
        return execute(plan, args)
    if args.new_backing is None:
        raise _usage_error('rebase needs NEW_BACKING (or "" to make IMAGE independent)')
    plan = plan_rebase(
        args.image,
        args.new_backing,
        unsafe=args.unsafe,
        absolute=args.absolute,
        **plan_options(args),
    )
    return execute(plan, args)


def _commit(args: argparse.Namespace) -> int:
    plan = plan_commit(args.image, **plan_options(args))
    return execute(plan, args)


def _flatten(args: argparse.Namespace) -> int:
    plan = plan_flatten(args.image, args.out, **plan_options(args))
    return execute(plan, args)


def _check_image(args: argparse.Namespace) -> int:
    def report(result: CheckResult) -> int:
        problems = result.problems
        if note := result.store_note:
            print(f"imagegui: note: {printable(note)}", file=sys.stderr)
        if args.json:
            print(json.dumps(result.to_json(), indent=2))
        else:
            print(printable(result.message))
            for p in problems:
                print(f"  [{p.level}] {p.kind}: {printable(p.cli_text)}")
        # like `imagegui check`: problems found -> 1
        return EXIT_FAILED if any(p.level != Level.INFO for p in problems) else EXIT_OK

    plan = plan_check(args.image, args.repair, **plan_options(args))
    return execute(plan, args, report)


class _Signalled(BaseException):
    """Raised by the launch's signal handler in the main thread (like KeyboardInterrupt)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextmanager
def _signals_raise() -> Iterator[None]:
    """While a VM runs, Ctrl-C, SIGTERM and SIGHUP interrupt the wait (and then the power-down
    wait) by raising ``_Signalled``."""

    def handler(signum: int, _frame: object) -> None:
        raise _Signalled(signum)

    previous = {sig: signal.signal(sig, handler) for sig in CANCEL_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _say(message: str, stream: TextIO | None = None) -> None:
    with suppress(OSError):
        print(message, file=stream or sys.stdout, flush=True)


def _launch(args: argparse.Namespace) -> int:
    from imagegui.core.ops.launch import LaunchOptions, plan_launch
    from imagegui.core.qemu.vm import LaunchError

    if args.memory < 16 or args.cpus < 1:
        raise _usage_error("--memory must be at least 16 (MB) and --cpus at least 1")
    if args.libvirt:
        return _launch_libvirt(args)
    opts = LaunchOptions(
        memory=args.memory,
        cpus=args.cpus,
        snapshot=args.snapshot,
        readonly=args.read_only,
        headless=args.headless,
        accel=args.accel,
        tied=True,
    )
    plan = plan_launch(args.image, opts, **plan_options(args, skip=("qemu_img", "force")))
    if args.dry_run or plan.refused:
        return execute(plan, args)
    try:
        vm = plan.run().vm
    except GuardRefused as exc:
        _refused(exc.findings)
        return EXIT_REFUSED
    except (LaunchError, QemuImgError) as exc:
        _err(str(exc))
        return EXIT_FAILED
    if vm.note:
        _err(vm.note)
    signum = 0
    try:
        with _signals_raise():  # from here on a signal powers the VM down, even mid-announcement
            try:
                _say(f"VM running: {printable(plan.image)} (PID {vm.pid}); Ctrl-C powers it down")
                rc = vm.wait()
                vm.close()
                _say(f"VM stopped (qemu exit status {rc})")
                return EXIT_OK if rc == 0 else EXIT_FAILED
            except _Signalled as first:
                signum = first.signum
                _say(
                    f"powering down (the guest has {args.stop_timeout:g} s, then qemu is told to "
                    "quit); Ctrl-C again to force off",
                    sys.stderr,
                )
                rc = vm.stop(timeout=args.stop_timeout)
    except _Signalled:  # a second signal: no more waiting
        with _signals_ignored():
            _say("forcing off", sys.stderr)
            rc = vm.force_off()
    except KeyboardInterrupt:  # a Ctrl-C before our handlers were in place
        signum = signal.SIGINT
        with _signals_ignored():
            rc = vm.stop(timeout=args.stop_timeout)
    _say(f"VM stopped (qemu exit status {rc})")
    return 128 + signum


def _launch_libvirt(args: argparse.Namespace) -> int:
    """``launch --libvirt``: the VM is libvirt's (a defined domain whose disk is the image, or a
    transient one): started, it outlives this command, which returns at once."""
    from imagegui.core.ops.launch import LaunchOptions
    from imagegui.core.ops.launchvirt import LibvirtLaunchResult, local_uri, plan_launch_libvirt

    named = list(dict.fromkeys(args.connect or ()))
    # A remote connection alone is kept, so that the plan says why it cannot serve.
    uri = local_uri(named, fallback=named[0]) if named else local_uri()
    opts = LaunchOptions(
        memory=args.memory,
        cpus=args.cpus,
        snapshot=args.snapshot,
        readonly=args.read_only,
        accel=args.accel,
    )
    plan = plan_launch_libvirt(args.image, opts, uri, tuple(args.root), tuple(args.allow_file))

    def report(result: LibvirtLaunchResult) -> None:
        if result.note:
            _err(result.note)
        _say(printable(result.message))
        _say(printable(result.cli_hint))

    return execute(plan, args, report)


@contextmanager
def _signals_ignored() -> Iterator[None]:
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in CANCEL_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# --------------------------------------------------------------------------- vms, stop


def _vms(args: argparse.Namespace) -> int:
    from imagegui.core.qemu.vms import RuntimeDirError, find_vms, runtime_dir

    try:
        directory = runtime_dir(create=False)
    except RuntimeDirError as exc:
        _err(str(exc))
        return EXIT_FAILED
    found = find_vms(directory)
    if args.json:
        doc = {"runtime_dir": directory, "vms": [v.to_json() for v in found]}
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    if not found:
        print("no VM started by imagegui is running")
        return EXIT_OK
    for v in found:
        who = f"launched by PID {v.launcher}" if v.launcher else "its launcher is gone"
        print(printable(f"PID {v.pid}  {v.name or '?'}  {v.image}  ({who})"))
    return EXIT_OK


def _stop(args: argparse.Namespace) -> int:

    from imagegui.core.ops.guards import same_file
    from imagegui.core.qemu.vms import VmControlError, find_vms

    found = find_vms()
    if args.vm.isdigit():
        matches = [v for v in found if v.pid == int(args.vm)]
    else:
        from imagegui.core.read.backing import canonical

        target = canonical(args.vm)
        matches = [v for v in found if v.image and same_file(v.image, target)]
    if not matches:
        raise _usage_error(
            f"no VM started by imagegui runs {args.vm} (`imagegui vms` lists the ones that do)"
        )
    if len(matches) > 1:
        pids = ", ".join(str(v.pid) for v in matches)
        raise _usage_error(f"{len(matches)} VMs run {args.vm} (PIDs {pids}): name one by its PID")
    (vm,) = matches
    label = f"VM {vm.name or vm.image} (PID {vm.pid})"
    token = CancelToken()
    received: list[int] = []
    try:
        with signals_cancel(token, received):
            if args.force:
                _say(f"forcing off {printable(label)}", sys.stderr)
            else:
                _say(
                    f"powering down {printable(label)}: the guest has {args.timeout:g} s, then "
                    "qemu is told to quit; Ctrl-C to force off now",
                    sys.stderr,
                )
            vm.stop(timeout=args.timeout, cancel=token, force=args.force)
    except VmControlError as exc:
        _err(str(exc))
        return EXIT_FAILED
    if vm.running():
        _err(f"{label} is still running")
        return EXIT_FAILED
    _say(printable(f"{label} stopped"))
    return EXIT_OK


# --------------------------------------------------------------------------- clean-leftovers


def _clean_leftovers(args: argparse.Namespace) -> int:
    """Lists the flatten temporary files under each DIR (and each FILE named), then removes the
    ones that are safe to remove. 0 all removed (or none found), 2 one or more kept (open by a
    process, not a leftover's name, just written), 1 a removal failed."""
    import os

    from imagegui.core.ops.leftovers import found_leftovers, plan_clean_leftovers

    paths: list[str] = []
    for target in args.paths:
        if os.path.isdir(target):
            try:
                paths += found_leftovers(target)
            except OSError as exc:
                raise _usage_error(f"{target}: {exc.strerror}") from None
        elif os.path.lexists(target):
            paths.append(target)
        else:
            raise _usage_error(f"{target}: no such file or directory")
    plan = plan_clean_leftovers(paths, domains=domain_source(args))
    if not paths:
        print("no leftover temporary files found")
        return EXIT_OK
    if not args.dry_run:
        for line in plan.changes:
            print(printable(f"leftover: {line.removeprefix('removes ')}"))
        for f in plan.kept:
            _err(f"refused: {f.cli_text}")
        if not plan.leftovers:
            return EXIT_REFUSED

    def report(result: CleanResult) -> int:
        for x in result.removed:
            print(printable(f"removed {x.path} ({x.size:,} bytes)"))
        for f in result.kept:
            if f not in plan.kept:  # those were said above
                _err(f"refused: {f.cli_text}")
        for e in result.errors:
            _err(f"cannot remove {e}")
        print(printable(result.message))
        return partial_status(result.errors, result.kept)

    return execute(plan, args, report, kept=plan.kept)


def _add_read_root(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--root",
        action="append",
        default=[],
        metavar="DIR",
        help="the chain may also read files under DIR (without it: the images' folders and "
        "their parents; anything else needs --allow-file)",
    )


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
        "backing name is stored relative to NEW's directory unless --absolute. With --connect "
        "naming another host (qemu+ssh://USER@HOST/system), BASE and NEW are absolute paths on "
        "that host: BASE a storage volume, NEW in an active pool's directory, created there "
        "through libvirt's storage API (--dry-run prints the volume XML). Other writing "
        "commands refuse another host.",
    )
    p.add_argument("base")
    p.add_argument("new")
    p.add_argument("--size", help="virtual size, larger than the base's (e.g. 40G)")
    p.add_argument("--absolute", action="store_true", help="store the base's absolute path")
    _add_read_root(p)
    add_connect_argument(p)
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
    p.add_argument(
        "--force",
        action="store_true",
        help="write IMAGE even if made read-only or a shut-off libvirt VM uses it",
    )
    _add_read_root(p)
    add_connect_argument(p)
    _add_common(p)
    p.set_defaults(func=refuse_remote(_rebase))

    p = sub.add_parser(
        "commit",
        help="write an overlay's data into its backing file",
        description="Refused when the backing file has other overlays (they would silently "
        "change) or a libvirt VM uses either image, unless --force (never while that VM runs). "
        "Directories scanned for overlays: the two images' and any --root.",
    )
    p.add_argument("image")
    p.add_argument(
        "--force",
        action="store_true",
        help="commit even into a shared base, or one a shut-off libvirt VM uses",
    )
    p.add_argument(
        "--root",
        action="append",
        default=[],
        help="also look here for other overlays (and let the chain read files here)",
    )
    add_connect_argument(p)
    _add_common(p)
    p.set_defaults(func=refuse_remote(_commit))

    p = sub.add_parser(
        "flatten",
        help="copy an image's whole chain into one independent qcow2",
        description="qemu-img convert into a temporary file beside OUT, renamed on success; "
        "free space is checked first (qemu-img measure). OUT must not exist.",
    )
    p.add_argument("image")
    p.add_argument("out")
    _add_read_root(p)
    add_connect_argument(p)
    _add_common(p)
    p.set_defaults(func=refuse_remote(_flatten))

    p = sub.add_parser(
        "check-image",
        help="run qemu-img check on one image",
        description="Exit status 1 when problems are found.",
    )
    p.add_argument("image")
    p.add_argument("--repair", choices=("leaks", "all"), help="repair (writes the image)")
    p.add_argument("--force", action="store_true", help="repair even a read-only image")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _add_read_root(p)
    add_connect_argument(p)
    _add_common(p)
    p.set_defaults(func=refuse_remote(_check_image))

    p = sub.add_parser(
        "launch",
        help="boot an image in qemu-system-x86_64 until it stops",
        description="Runs until the VM powers off; Ctrl-C (or SIGTERM, SIGHUP) powers it down "
        "(ACPI), then quits it after --stop-timeout; Ctrl-C again forces it off at once. Exit "
        "status 0 when the guest powered off by itself, 128 + the signal when stopped by one "
        "(130 for Ctrl-C). The VM never outlives this command. A base with overlays only starts "
        "with --snapshot or --read-only. With --libvirt the VM is libvirt's instead and keeps "
        "running: an image a defined domain boots starts that domain, any other a transient "
        "domain (gone when it stops); the command returns once it runs (exit status 0, 1 when "
        "libvirt did not start it, 2 refused) and --dry-run shows the domain XML.",
    )
    p.add_argument("image")
    p.add_argument("--snapshot", action="store_true", help="throw the guest's writes away")
    p.add_argument("--read-only", action="store_true", help="give the guest a read-only disk")
    p.add_argument("--memory", type=int, default=1024, metavar="MB")
    p.add_argument("--cpus", type=int, default=1)
    p.add_argument("--headless", action="store_true", help="no display window")
    p.add_argument("--accel", choices=("kvm", "tcg"), help="default: kvm when usable")
    p.add_argument("--stop-timeout", type=float, default=60.0, metavar="SECONDS")
    p.add_argument(
        "--libvirt",
        action="store_true",
        help="start it through libvirt (the first --connect on this machine, default "
        "qemu:///system): it keeps running and appears in virt-manager",
    )
    p.add_argument(
        "--root",
        action="append",
        default=[],
        help="also look here for overlays (and let the chain read files here)",
    )
    add_connect_argument(p)
    _add_common(p)
    p.set_defaults(func=_launch)

    p = sub.add_parser(
        "vms",
        help="list the VMs imagegui started that are still running",
        description="VMs started by imagegui (from the window or the command line) that are still "
        "running, including those whose launcher is gone: PID, name, image, launcher.",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_vms)

    p = sub.add_parser(
        "stop",
        help="stop a VM imagegui started (by its image or PID)",
        description="Powers the guest down (ACPI) and waits up to --timeout, then tells qemu to "
        "quit; --force (or Ctrl-C while waiting) turns it off at once. Exit status 0 stopped, "
        "1 could not be stopped, 2 no such VM.",
    )
    p.add_argument("vm", metavar="IMAGE|PID")
    p.add_argument("--force", action="store_true", help="turn it off now (no power-down)")
    p.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS")
    p.set_defaults(func=_stop)

    p = sub.add_parser(
        "clean-leftovers",
        help="remove the temporary files (and folder copies) interrupted moves, flattens, converts "
        "and new images left behind",
        description="Lists every leftover temporary file (.NAME.<8 hex>.partial) of a flatten "
        "under each DIR, with its size and age, and removes it. A file a process has open, one "
        "written in the last few seconds or one whose name is not exactly a leftover's is kept. "
        "Exit status 0 all removed (or none found), 2 something was kept, 1 a removal failed.",
    )
    p.add_argument("paths", nargs="+", metavar="DIR|FILE")
    p.add_argument(
        "--dry-run", action="store_true", help="list what would be removed and kept; remove nothing"
    )
    p.add_argument("--json", action="store_true", help="with --dry-run: the plan as JSON")
    add_connect_argument(p)
    p.set_defaults(func=refuse_remote(_clean_leftovers))


# --------------------------------------------------------------------------- shared


#: What the other writing commands' modules (clonevm_cmds) share with these, by public names.
add_common = _add_common
add_read_root = _add_read_root
usage_error = _usage_error
print_error = _err
