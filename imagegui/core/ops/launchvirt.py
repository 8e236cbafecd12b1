"""launch through libvirt: the VM is libvirt's, so it outlives imagegui and shows in virt-manager.

Beside the bare launch (:mod:`launch`, a qemu-system process this program owns) and with the same
guards (``launch.launch_checks``): an image that a defined domain boots (its disk names the
image: role ``top``) starts *that* domain, as it is defined; any other image starts a
*transient* domain, defined for as long as it runs and gone from libvirt when it stops, with a
minimal definition: the launch's memory and CPUs, the image as a virtio disk with its format
recorded, user networking and a VNC screen listening on 127.0.0.1 only. The plan shows the
domain XML that libvirt is given (``Plan.documents``) before anything starts.

Only this machine's libvirt: the image is a file here, and another host would not see it.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from imagegui.core.jobs import CancelToken, ProgressFn
from imagegui.core.ops.launch import LaunchOptions, launch_checks
from imagegui.core.ops.plan import Finding, OpResult, Plan, info, refuse
from imagegui.core.qemu.vm import LaunchError
from imagegui.core.read.backing import canonical
from imagegui.core.virt.connect import (
    SYSTEM_URI,
    LibvirtUnreachable,
    binding,
    is_remote,
    local_uris,
    open_connection,
)
from imagegui.core.virt.inventory import DiskUse, DomainIndex, read_host

#: The connection a libvirt launch uses when none is named.
DEFAULT_URI = SYSTEM_URI
#: The program that shows a libvirt domain's screen, when installed.
VIEWER = "virt-viewer"
#: Transient domains are named after their image: ``imagegui-<stem>``.
NAME_PREFIX = "imagegui-"


class VirtLaunchError(LaunchError):
    """libvirt did not start the domain; the message carries libvirt's own reason."""


def local_uri(uris: list[str] | tuple[str, ...] = (), fallback: str = DEFAULT_URI) -> str:
    """The connection to launch through: the first of ``uris`` on this machine, else
    ``fallback`` (a remote host cannot open a file of this machine)."""
    return next(iter(local_uris(uris)), fallback)


def unreachable(uri: str) -> str | None:
    """Why a launch through ``uri`` is not possible ("libvirt not reachable at URI: reason"),
    or None when its daemon answers. Opens a connection: call it off the GUI thread."""
    if is_remote(uri):
        return f"{uri} is another machine: a launch through libvirt starts VMs on this one only"
    try:
        open_connection(uri).close()
    except LibvirtUnreachable as exc:
        return str(exc)
    return None


def console_command(uri: str, name: str) -> list[str]:
    """virt-viewer's command line for the domain's screen; empty when it is not installed."""
    viewer = shutil.which(VIEWER)
    return [VIEWER, "--connect", uri, name] if viewer else []


def console_hint(uri: str, name: str) -> str:
    """Where to see the screen, for the command line (a console command to run)."""
    if shutil.which(VIEWER):
        return f"{VIEWER} --connect {uri} {name}"
    return f"virt-manager, or virsh -c {uri} domdisplay {name}"


def transient_name(image: str, taken: set[str]) -> str:
    """``imagegui-<stem>`` in the characters every libvirt tool accepts unquoted; ``-2``,
    ``-3``, ... when a domain already has that name."""
    stem = os.path.basename(image).split(".", 1)[0]
    stem = re.sub(r"[^A-Za-z0-9_+-]+", "-", stem).strip("-")[:48] or "image"
    name, n = NAME_PREFIX + stem, 1
    while name in taken:
        n += 1
        name = f"{NAME_PREFIX}{stem}-{n}"
    return name


def _attr(value: str) -> str:
    """An XML attribute value in single quotes, as libvirt writes its own XML."""
    return "'" + escape(value, {"'": "&apos;", '"': "&quot;"}) + "'"


def domain_xml(name: str, image: str, fmt: str, opts: LaunchOptions, kind: str) -> str:
    """The smallest domain that boots ``image``: ``kind`` is ``kvm`` or ``qemu`` (TCG)."""
    if kind not in ("kvm", "qemu"):
        raise ValueError(f"domain type {kind!r}: kvm or qemu")
    cpu = "  <cpu mode='host-passthrough'/>\n" if kind == "kvm" else ""
    readonly = "<readonly/>" if opts.readonly else ""
    return (
        f"<domain type='{kind}'>\n"
        f"  <name>{escape(name)}</name>\n"
        f"  <description>{escape(f'started by imagegui from {image}')}</description>\n"
        f"  <memory unit='MiB'>{int(opts.memory)}</memory>\n"
        f"  <vcpu>{int(opts.cpus)}</vcpu>\n"
        "  <os><type arch='x86_64' machine='q35'>hvm</type><boot dev='hd'/></os>\n"
        "  <features><acpi/><apic/></features>\n"
        f"{cpu}"
        "  <devices>\n"
        "    <disk type='file' device='disk'>\n"
        f"      <driver name='qemu' type={_attr(fmt)}/>\n"
        f"      <source file={_attr(image)}/>\n"
        f"      <target dev='vda' bus='virtio'/>{readonly}\n"
        "    </disk>\n"
        "    <interface type='user'><model type='virtio'/></interface>\n"
        "    <graphics type='vnc' autoport='yes'><listen type='address' address='127.0.0.1'/>"
        "</graphics>\n"
        "    <serial type='pty'/><console type='pty'/>\n"
        "  </devices>\n"
        "</domain>\n"
    )


@dataclass(kw_only=True)
class LibvirtLaunchResult(OpResult):
    uri: str
    #: The domain's name (``virsh -c URI list`` shows it).
    domain: str
    #: True for a domain made for this launch: libvirt forgets it when it stops.
    transient: bool
    #: virt-viewer's command line for its screen; empty when virt-viewer is not installed.
    console: list[str] = field(default_factory=list)
    #: Something the user should know about how it started (an accelerator fallback).
    note: str = ""


@dataclass(kw_only=True)
class LibvirtLaunchPlan(Plan[LibvirtLaunchResult]):
    op: ClassVar[str] = "launch"

    image: str
    options: LaunchOptions = field(default_factory=LaunchOptions)
    uri: str = DEFAULT_URI
    roots: tuple[str, ...] = ()
    #: The domain that starts: the defined one whose disk is the image, or the transient one.
    domain: str = ""
    transient: bool = True
    #: What libvirt is given (transient) or starts (defined); empty when refused early.
    xml: str = ""

    def replan(self) -> LibvirtLaunchPlan:
        return plan_launch_libvirt(self.image, self.options, self.uri, self.roots, self.allow)

    def _execute(self, progress: ProgressFn, cancel: CancelToken) -> LibvirtLaunchResult:
        libvirt = binding()
        try:
            conn = open_connection(self.uri, readonly=False)
        except LibvirtUnreachable as exc:
            raise VirtLaunchError(str(exc)) from None
        note = ""
        try:
            cancel.raise_if_cancelled("nothing was started")
            if self.transient:
                note = self._create(conn, libvirt)
            else:
                try:
                    conn.lookupByName(self.domain).create()
                except libvirt.libvirtError as exc:
                    why = _words(exc)
                    raise VirtLaunchError(f"libvirt did not start {self.domain}: {why}") from None
        finally:
            conn.close()
        progress(1.0)
        how = " (transient: it disappears when it stops)" if self.transient else ""
        return LibvirtLaunchResult(
            message=f"started {self.domain} through libvirt at {self.uri}{how}",
            uri=self.uri,
            domain=self.domain,
            transient=self.transient,
            console=console_command(self.uri, self.domain),
            cli_hint=f"its screen: {console_hint(self.uri, self.domain)}",
            note=note,
        )

    def _create(self, conn: Any, libvirt: Any) -> str:
        """Creates the transient domain; with the accelerator left automatic, a KVM that the
        daemon offers but that fails here (nested virtualisation) is retried with TCG."""
        try:
            conn.createXML(self.xml, 0)
            return ""
        except libvirt.libvirtError as exc:
            first = _words(exc)
            if not (self.options.accel is None and "<domain type='kvm'>" in self.xml):
                raise VirtLaunchError(f"libvirt did not start {self.domain}: {first}") from None
        tcg = self.xml.replace("<domain type='kvm'>", "<domain type='qemu'>", 1)
        tcg = tcg.replace("  <cpu mode='host-passthrough'/>\n", "", 1)
        try:
            conn.createXML(tcg, 0)
        except libvirt.libvirtError as exc:
            raise VirtLaunchError(f"libvirt did not start {self.domain}: {_words(exc)}") from None
        return f"KVM did not start here, so the VM runs with TCG (slower): {first}"


def _words(exc: Exception) -> str:
    get = getattr(exc, "get_error_message", None)
    return " ".join(((get() if get else None) or str(exc)).split())


def _offers_kvm(conn: Any) -> bool:
    try:
        return "<domain type='kvm'" in conn.getCapabilities()
    except Exception:  # noqa: BLE001 - a daemon that cannot say: TCG always works
        return False


def _domain_kind(conn: Any, accel: str | None) -> str:
    if accel == "tcg":
        return "qemu"
    if accel == "kvm":
        return "kvm"
    return "kvm" if os.path.exists("/dev/kvm") and _offers_kvm(conn) else "qemu"


def _without(index: DomainIndex, name: str) -> DomainIndex:
    """``index`` less the domain that is about to start: its own disk is its to write; every
    other VM's use of the image is still checked (``launch_checks``)."""
    return DomainIndex(
        replace(inv, domains=[d for d in inv.domains if d.name != name])
        for inv in index.inventories
    )


def _defined(
    uses: list[DiskUse], image: str, opts: LaunchOptions, conn: Any, findings: list[Finding]
) -> tuple[str, bool, str]:
    """(name, writable, XML) of the defined domain whose disk is ``image``; refusals added."""
    names = sorted({u.domain.name for u in uses})
    dom = uses[0].domain
    if len(names) > 1:
        findings.append(
            refuse(
                "several-domains",
                f"{image} is the disk of several domains ({', '.join(names)}): start the one "
                "you mean in virt-manager",
            )
        )
    if dom.active:
        findings.append(
            refuse("domain-running", f"{dom.name} already runs ({dom.state}) and uses {image}")
        )
    if opts.snapshot or opts.readonly:
        findings.append(
            refuse(
                "domain-as-defined",
                f"{image} is the disk of the defined domain {dom.name}, which starts as it is "
                "defined: a snapshot or read-only boot of it runs without libvirt",
                fix_cli="drop --snapshot and --read-only, or drop --libvirt",
            )
        )
    writable = not any(u.disk.readonly for u in uses if u.domain.name == dom.name)
    try:
        xml = conn.lookupByName(dom.name).XMLDesc(0)
    except binding().libvirtError as exc:
        findings.append(refuse("domain-gone", f"{dom.name} cannot be read: {_words(exc)}"))
        xml = ""
    return dom.name, writable, xml


def plan_launch_libvirt(
    image: str,
    options: LaunchOptions | None = None,
    uri: str = DEFAULT_URI,
    roots: tuple[str, ...] = (),
    allow: tuple[str, ...] = (),
) -> LibvirtLaunchPlan:
    """Reads ``uri``'s domains (read-only) to choose between starting a defined domain and a
    transient one, then runs the bare launch's guards on the image. ``allow`` as for
    ``launch.plan_launch``."""
    image = canonical(image)
    opts = options or LaunchOptions()
    plan = LibvirtLaunchPlan(
        title=f"launch through libvirt: {image}",
        allow=tuple(allow),
        image=image,
        options=opts,
        uri=uri,
        roots=tuple(roots),
    )
    if is_remote(uri):
        plan.findings.append(
            refuse(
                "remote-libvirt",
                f"{uri} is another machine: a launch through libvirt starts VMs on this machine "
                f"only, where {image} is",
            )
        )
        return plan
    try:
        image.encode("utf-8")
    except UnicodeEncodeError:
        plan.findings.append(
            refuse("not-utf8", f"{image}: libvirt takes only UTF-8 file names (XML)")
        )
        return plan
    try:
        conn = open_connection(uri)
    except LibvirtUnreachable as exc:
        plan.findings.append(refuse("libvirt-unreachable", str(exc)))
        return plan
    try:
        try:
            index = DomainIndex([read_host(conn, uri)])
        except LibvirtUnreachable as exc:
            plan.findings.append(refuse("libvirt-unreachable", str(exc)))
            return plan
        tops = [d for d in index.top_uses() if d.path == image or _same(d.path, image)]
        findings: list[Finding] = []
        checked = index
        if tops:
            plan.domain, writable, plan.xml = _defined(tops, image, opts, conn, findings)
            plan.transient = False
            checked = _without(index, plan.domain)
        else:
            writable = not opts.readonly
            if opts.snapshot:
                findings.append(
                    refuse(
                        "libvirt-snapshot",
                        "a snapshot boot is not offered through libvirt (it would leave a file "
                        "beside the image and the image owned by the account its VMs run as): "
                        "boot it read-only, or without libvirt",
                        fix_cli="use --read-only instead, or drop --libvirt",
                    )
                )
            taken = {d.name for d in index.domains()}
            plan.domain = transient_name(image, taken)
        img, checks, searched = launch_checks(image, writable, roots, allow, index=checked)
        findings += checks
        if plan.transient and img is not None:
            kind = _domain_kind(conn, opts.accel)
            plan.xml = domain_xml(plan.domain, image, img.format, opts, kind)
    finally:
        conn.close()
    plan.searched = tuple(searched)
    plan.findings += findings
    plan.findings.append(_console_note(uri, plan.domain))
    _describe(plan, writable)
    return plan


def _same(a: str, b: str) -> bool:
    from imagegui.core.ops.guards import same_file

    return same_file(a, b)


def _console_note(uri: str, name: str) -> Finding:
    if shutil.which(VIEWER):
        return info(
            "console",
            f"its screen opens in {VIEWER} (also in virt-manager)",
            fix_cli=console_hint(uri, name),
        )
    return info(
        "console",
        f"{VIEWER} is not installed: see its screen in virt-manager, or ask virsh domdisplay "
        "for its address",
        fix_cli=console_hint(uri, name),
    )


def _describe(plan: LibvirtLaunchPlan, writable: bool) -> None:
    """What changes, and the XML as a document of the plan."""
    image, name, uri = plan.image, plan.domain, plan.uri
    if plan.transient:
        plan.changes.append(
            f"starts {name}, a transient domain at {uri}: it keeps running when imagegui ends "
            "and disappears from libvirt when it stops (nothing stays defined)"
        )
        caption = f"domain XML given to libvirt at {uri} (transient)"
    else:
        plan.changes.append(
            f"starts the defined domain {name} at {uri} as it is defined (its own memory, CPUs, "
            "disks and networks); it keeps running when imagegui ends"
        )
        caption = f"the definition of {name} at {uri}, started as it is"
    if writable:
        plan.changes.append(f"{image}: the guest writes to it while it runs")
    else:
        plan.changes.append(f"{image} is only read; the guest sees a read-only disk")
    plan.changes.append(
        "while it runs, libvirt may hand the image and its backing files to the account its "
        "VMs run as"
    )
    if plan.xml:
        plan.documents.append((caption, plan.xml))


def escape(text: str, entities: dict[str, str] | None = None) -> str:
    """``xml.sax.saxutils.escape``, imported when first used: importing it at start brings
    urllib.request, http.client, email and ssl into every process that imports this module."""
    from xml.sax.saxutils import escape as sax_escape

    return sax_escape(text, entities or {})
