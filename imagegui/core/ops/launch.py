"""launch: boot an image in qemu-system-x86_64, planned and guarded like every operation.

The plan says what the guest may write (the image, a throw-away snapshot, nothing), refuses a
writable boot of a base that has overlays and a chain that reads files it should not; running it
starts the VM and returns its handle (:class:`imagegui.core.qemu.vm.RunningVM`), which owns the
process and its QMP connection from then on.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, ClassVar

from imagegui.core.jobs import CancelToken, ProgressFn
from imagegui.core.ops import guards
from imagegui.core.ops.plan import (
    Finding,
    OpResult,
    Plan,
    add_findings,
    info,
    probe_or_refuse,
    refuse,
)
from imagegui.core.qemu.processes import qemu_opt
from imagegui.core.qemu.vm import QEMU_SYSTEM, START_TIMEOUT, LaunchError, RunningVM
from imagegui.core.qemu.vms import RuntimeDirError, control_socket, runtime_dir, socket_paths
from imagegui.core.read.backing import canonical
from imagegui.core.read.model import ImageInfo

if TYPE_CHECKING:
    from imagegui.core.virt.inventory import DomainIndex, DomainSource


def kvm_usable() -> bool:
    """``/dev/kvm`` exists and this user can open it read-write (else we fall back to TCG)."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


@dataclass
class LaunchOptions:
    memory: int = 1024  # MiB
    cpus: int = 1
    #: Writes go to a throw-away overlay (``snapshot=on``); the image is never written.
    snapshot: bool = False
    #: The guest sees a read-only disk.
    readonly: bool = False
    headless: bool = True
    #: "kvm", "tcg", or None for KVM when usable, else TCG.
    accel: str | None = None
    #: The emulator to run (a settings choice in the window).
    binary: str = QEMU_SYSTEM
    #: The VM dies with this process however it ends (the CLI's); the window's may outlive it.
    tied: bool = False


def build_argv(image: str, fmt: str, qmp_socket: str, opts: LaunchOptions) -> list[str]:
    """Every path and name that enters a qemu option list has its commas doubled."""
    accel = opts.accel or ("kvm" if kvm_usable() else "tcg")
    drive = f"file={qemu_opt(image)},format={fmt},if=virtio"
    if opts.snapshot:
        drive += ",snapshot=on"
    if opts.readonly:
        drive += ",readonly=on"
    argv = [
        opts.binary or QEMU_SYSTEM,
        "-name", f"imagegui:{qemu_opt(os.path.basename(image))}",
        "-machine", f"q35,accel={accel}",
        "-m", str(opts.memory),
        "-smp", str(opts.cpus),
    ]  # fmt: skip
    if accel == "kvm":
        argv += ["-cpu", "host"]
    # The control socket comes first: qemu creates it before it connects to us, so it exists as
    # soon as the VM is reported running.
    argv += ["-drive", drive, "-nic", "user,model=virtio-net-pci"]
    argv += ["-qmp", f"unix:{qemu_opt(control_socket(qmp_socket))},server=on,wait=off"]
    argv += ["-qmp", f"unix:{qemu_opt(qmp_socket)}"]
    if opts.headless:
        argv += ["-display", "none"]
    return argv


# --------------------------------------------------------------------------- plan


def _drive_format(argv: list[str]) -> str:
    """The format a built argv gives its drive (``-drive file=...,format=F,...``)."""
    drive = argv[argv.index("-drive") + 1]
    return drive.rsplit(",format=", 1)[1].split(",", 1)[0]


@dataclass(kw_only=True)
class LaunchResult(OpResult):
    #: The running VM: the caller owns it from now on (stop it, or close it to let it run on).
    vm: RunningVM


@dataclass(kw_only=True)
class LaunchPlan(Plan[LaunchResult]):
    op: ClassVar[str] = "launch"

    image: str
    options: LaunchOptions = field(default_factory=LaunchOptions)
    #: The socket we listen on for the VM's QMP connection (in our private runtime directory).
    qmp_socket: str
    roots: tuple[str, ...] = ()
    #: Seconds qemu has to come up and connect.
    start_timeout: float = START_TIMEOUT

    def replan(self) -> LaunchPlan:
        return plan_launch(
            self.image,
            self.options,
            self.roots,
            qmp_socket=self.qmp_socket,
            allow=self.allow,
            start_timeout=self.start_timeout,
            domains=self.domains,
        )

    def _execute(self, progress: ProgressFn, cancel: CancelToken) -> LaunchResult:
        """Starts the VM; returns once QMP answers.

        With the accelerator left automatic, a KVM that is present but fails at start-up (nested
        virtualisation: "failed to set MSR") is not the user's problem: the VM is started again
        with TCG and ``RunningVM.note`` says so.
        """
        argv = self.commands[0]
        tied, timeout = self.options.tied, self.start_timeout
        try:
            vm = RunningVM.start(argv, self.image, self.qmp_socket, timeout, tied=tied)
        except LaunchError as exc:
            if not (self.options.accel is None and "accel=kvm" in " ".join(argv)):
                raise
            tcg = build_argv(
                self.image,
                _drive_format(argv),
                self.qmp_socket,
                replace(self.options, accel="tcg"),
            )
            vm = RunningVM.start(tcg, self.image, self.qmp_socket, timeout, tied=tied)
            vm.note = f"KVM did not start here, so the VM runs with TCG (slower): {exc}"
        progress(1.0)
        return LaunchResult(message=f"started {self.image} (PID {vm.pid})", vm=vm)


def launch_checks(
    image: str,
    writable: bool,
    roots: tuple[str, ...] = (),
    allow: tuple[str, ...] = (),
    index: DomainIndex | None = None,
) -> tuple[ImageInfo | None, list[Finding], list[str]]:
    """The guards every launch passes, however the VM is started (here, or through libvirt):
    the chain complete and readable, nothing running on it, and a base with overlays never
    booted writable. Returns the image's header (None when unreadable: refused), the findings
    and the folders searched for overlays. ``image`` is canonical already. ``index``: libvirt's
    VMs (``guards.read_domains``); a writable boot of a VM's disk, or of a file below it,
    changes that VM's disk and is refused."""
    findings: list[Finding] = []
    img = probe_or_refuse(image, "image", findings)
    searched: list[str] = []
    if img:
        chain = guards.follow_chain(image)
        add_findings(findings, guards.chain_problem(chain, "a launch"))
        findings += guards.chain_access(chain, guards.access_roots(image, extra=roots), allow)
        if writable:
            add_findings(findings, guards.writable(image))
        lock = guards.not_in_use(image, "image", writers_only=not writable, index=index)
        add_findings(findings, lock)
        for member in chain.images[1:]:
            add_findings(
                findings,
                guards.not_in_use(member.path, "backing file", writers_only=True, index=index),
            )
        if writable:
            findings += guards.not_used_by_domain(
                image,
                "image",
                index,
                "booting it writable changes {vm} disk; launch it as a snapshot (or read-only)",
                stopped="refuse",
                fix_cli="add --snapshot or --read-only",
                skip_running=lock is not None,
            )
        else:
            add_findings(findings, guards.domain_note(image, "image", index, "; it is only read"))
        if writable:
            # Booting a base writable corrupts its overlays: search for them (these roots only,
            # stated in the plan), further out than a commit does, as the mistake is costlier.
            searched = guards.nearby_roots(image, extra=roots, widen=True)
            children = guards.find_overlays(image, searched)
            findings.append(
                info(
                    "searched",
                    f"looked for overlays of {image} under {', '.join(searched)}",
                    fix_cli="add --root DIR if clones live elsewhere too",
                )
            )
            if children:
                findings.append(
                    refuse(
                        "base-has-overlays",
                        f"{image} is the backing file of {', '.join(children)}: booting it "
                        "writable would corrupt them; launch it as a snapshot (or read-only)",
                        fix_cli="add --snapshot or --read-only",
                    )
                )
    return img, findings, searched


def plan_launch(
    image: str,
    options: LaunchOptions | None = None,
    roots: tuple[str, ...] = (),
    qmp_socket: str | None = None,
    allow: tuple[str, ...] = (),
    start_timeout: float = START_TIMEOUT,
    domains: DomainSource | None = None,
) -> LaunchPlan:
    """``allow``: files beyond ``roots`` (or devices, private files, protocol sources) the
    chain may read because the user allowed them by name (``guards.chain_access``);
    ``domains``: where to ask libvirt which VMs use the image (``launch_checks``)."""
    image = canonical(image)
    opts = options or LaunchOptions()
    index, notes = guards.read_domains(domains)
    img, findings, searched = launch_checks(
        image, not (opts.snapshot or opts.readonly), roots, allow, index
    )
    findings[:0] = notes
    if not qmp_socket:
        try:
            directory = runtime_dir()
        except (RuntimeDirError, OSError) as exc:
            findings.append(refuse("runtime-dir", f"no private place for the VM's sockets: {exc}"))
            directory = os.path.join(tempfile.gettempdir(), f"imagegui-{os.geteuid()}")
        qmp_socket = socket_paths(directory, secrets.token_hex(4))[0]
    argv = build_argv(image, img.format if img else "raw", qmp_socket, opts)
    if opts.snapshot:
        changes = [f"{image} is only read; the guest's writes are thrown away when it stops"]
    elif opts.readonly:
        changes = [f"{image} is only read; the guest sees a read-only disk"]
    else:
        changes = [f"{image}: the guest writes to it while it runs"]
    changes.append(f"QMP control sockets in {os.path.dirname(qmp_socket)} (private to this user)")
    return LaunchPlan(
        title=f"launch: {image}",
        commands=[argv],
        changes=changes,
        findings=findings,
        allow=tuple(allow),
        image=image,
        options=opts,
        qmp_socket=qmp_socket,
        roots=tuple(roots),
        start_timeout=start_timeout,
        searched=tuple(searched),
        domains=domains,
    )
