"""The safety checks every writing operation runs, each returning a finding a user can act on.

An operation's plan collects these findings before anything runs (``--dry-run`` and the GUI's
confirmation show them) and checks them again right before running, because a VM can start in
between. Guards read headers natively (``probe_image``) and ask the kernel about qemu's locks
(``lock_state``); they never open an image with qemu, so checking is cheap and has no side effects.
"""

from __future__ import annotations

import os
import shlex
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from imagegui.core.chains import diagnose
from imagegui.core.chains.diagnose import Kind
from imagegui.core.ops.plan import Finding, info, refuse, warn
from imagegui.core.read.backing import canonical, is_inside, is_protocol, open_error
from imagegui.core.read.fileid import file_id
from imagegui.core.read.holders import describe_holders
from imagegui.core.read.locks import lock_state
from imagegui.core.read.model import ImageInfo
from imagegui.core.units import human_size

if TYPE_CHECKING:
    from imagegui.core.virt.inventory import DomainIndex, DomainSource
    from imagegui.core.virt.model import DomainUse

#: Formats whose backing pointer ``qemu-img rebase`` can rewrite.
REBASEABLE = ("qcow2", "qed")
#: Keep this much on top of ``qemu-img measure``'s figure: metadata growth, other writers.
SPACE_MARGIN = 0.02


# --------------------------------------------------------------------------- chains


@dataclass
class Chain:
    """An image and its backing files as the headers say, top first, read without qemu."""

    images: list[ImageInfo] = field(default_factory=list)
    #: The resolved path of a backing file that does not exist (the chain ends there).
    missing: str | None = None
    #: The stored name the missing file came from, and the image that stores it.
    missing_name: str | None = None
    missing_in: str | None = None
    #: A backing name that is a protocol (nbd:, json:): the chain cannot be followed.
    protocol: str | None = None
    loop: bool = False
    #: A file in the chain that is not a readable image.
    unreadable: str | None = None
    #: Why it cannot be read (permission denied, a device, no image header).
    unreadable_why: str = ""

    @property
    def complete(self) -> bool:
        return not (self.missing or self.protocol or self.loop or self.unreadable)

    def file_ids(self) -> set[tuple[int, int]]:
        return {i.file_id for i in self.images}


def follow_chain(path: str, limit: int = 256) -> Chain:
    """Reads ``path`` and each backing file in turn; stops at a missing file, a loop, a protocol."""
    from imagegui.core.read.probe import ProbeError, probe_image

    chain = Chain()
    seen: set[tuple[int, int]] = set()
    current: str | None = path
    while current is not None and len(chain.images) < limit:
        try:
            img = probe_image(current)
        except ProbeError as exc:
            if not os.path.lexists(current) and chain.images:
                chain.missing = current
                chain.missing_name = chain.images[-1].backing_file
                chain.missing_in = chain.images[-1].path
            else:
                chain.unreadable = current
                chain.unreadable_why = str(exc)
            return chain
        if img.file_id in seen:
            chain.loop = True
            return chain
        seen.add(img.file_id)
        chain.images.append(img)
        if img.backing_protocol:
            chain.protocol = img.backing_file
            return chain
        current = img.backing_path
    return chain


def chain_problem(chain: Chain, what: str) -> Finding | None:
    """A refusal when a chain that must be read whole is broken, naming the repair. (A protocol
    backing is not broken: :func:`chain_access` refuses it unless allowed.)"""
    if chain.missing:
        why = open_error(chain.missing) or "No such file or directory"
        return refuse(
            "missing-backing",
            f"{chain.missing_in} backs onto {chain.missing_name!r}, which cannot be opened "
            f"({chain.missing}: {why}); {what} needs the whole chain. If the base was moved or "
            "renamed, repair the pointer first",
            fix_cli=diagnose.fix_cli(Kind.MISSING_BACKING, chain.missing_in or "IMAGE"),
        )
    if chain.loop:
        return refuse("backing-loop", f"the backing chain of {chain.images[0].path} loops")
    if chain.unreadable:
        why = f": {chain.unreadable_why}" if chain.unreadable_why else ""
        return refuse("unreadable", f"{chain.unreadable} cannot be read as a disk image{why}")
    # A VMDK extent or a qcow2 data file that is gone breaks the chain as a missing backing
    # file does (the scan's missing-extent): qemu would fail to open it after an "ok to run".
    for img in chain.images:
        for extent in img.extents:
            if extent != img.path and not os.path.lexists(extent):
                return refuse(
                    "missing-extent",
                    f"{img.path} keeps its data in {extent}, which does not exist; {what} needs "
                    "the whole chain. Put that file back (it holds the guest's data)",
                )
    return None


# --------------------------------------------------------------------------- guards


def target_free(path: str, role: str = "target") -> Finding | None:
    """Never overwrite: qemu-img create/convert would silently truncate an existing file."""
    if os.path.lexists(path):
        return refuse(
            "target-exists",
            f"{role} {path} already exists; imagegui never overwrites a file: choose another "
            "name or remove it yourself",
        )
    parent = os.path.dirname(canonical(path))
    if not os.path.isdir(parent):
        return refuse("no-directory", f"directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        return refuse("not-writable", f"cannot create files in {parent} (permission denied)")
    return None


def not_in_use(
    path: str,
    role: str = "image",
    writers_only: bool = False,
    index: DomainIndex | None = None,
) -> Finding | None:
    """Refuses when a running QEMU holds ``path``.

    A VM holds write locks on the image it runs and read locks on that image's backing files; either
    way writing the file changes a disk under a running guest. ``writers_only`` is for reads that
    only need the data to hold still. With libvirt's ``index``, the holder is named as the user
    knows it (``the running VM web01 (libvirt qemu:///system)``) rather than by its process.
    """
    state = lock_state(path)
    if not state.in_use or (writers_only and not state.writer):
        return None
    how = "a running VM writes it" if state.writer else "it is a backing file of a running VM"
    running = [u for u in index.uses_of(path) if u.active] if index is not None else []
    if running:  # libvirt's name for the VM, not its process
        vms = _one_per_domain(running)
        names = _join(f"{u.name} (libvirt {u.uri})" for u in vms)
        how = "which writes it" if state.writer else "which reads it through a backing chain"
        who = f"used by the running VM{'s' * (len(vms) > 1)} {names}, {how}"
        return refuse("in-use", f"{role} {path} is {who}; shut {_it(len(vms) > 1)} down first")
    return refuse(
        "in-use", f"{role} {path} is {describe_holders(path)} ({how}); shut that VM down first"
    )


def writable(path: str, role: str = "image") -> Finding | None:
    """Refuses a file this user cannot write, and one its owner made read-only (no write bit
    for anyone): root could write it, but the owner said not to (``force`` lifts that)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = 0o200
    can = os.access(path, os.W_OK)
    if not mode & 0o222:
        return refuse(
            "read-only",
            f"{role} {path} is read-only (mode {stat.S_IMODE(mode):04o}): its owner protected "
            "it from writes"
            + (
                "; make it writable first, or override this check where the operation offers it"
                if can
                else "; make it writable first"
            ),
            overridable=can,
            fix_cli="add --force to the same command" if can else f"chmod u+w {path}",
        )
    if not can:
        return refuse("not-writable", f"{role} {path} is not writable by this user")
    return None


def rebaseable(img: ImageInfo) -> Finding | None:
    if img.format in REBASEABLE:
        return None
    return refuse(
        "format-cannot-rebase",
        f"{img.path} is a {img.format} image: only qcow2 and qed store a backing pointer that "
        "a rebase can rewrite (flatten it into a qcow2 first)",
        fix_cli=f"imagegui flatten {img.path} NEW.qcow2",
    )


def free_space(directory: str, needed: int) -> Finding:
    """Refuses when the file system holding ``directory`` has less than ``needed`` plus the
    margin; either way the finding says the figures, margin included."""
    st = os.statvfs(directory)
    free = st.f_bavail * st.f_frsize
    want = int(needed * (1 + SPACE_MARGIN))
    needs = f"needs {human_size(needed)} plus a {SPACE_MARGIN:.0%} margin ({human_size(want)})"
    if free >= want:
        return info("space", f"{needs}; {human_size(free)} is free in {directory}")
    return refuse(
        "no-space",
        f"{needs} but only {human_size(free)} is free in {directory}: free some space or choose "
        "another directory",
    )


def backing_format_recorded(img: ImageInfo, backing: ImageInfo) -> Finding | None:
    """A commit writes the base with the *recorded* format; a wrong one destroys the base."""
    if img.backing_format is None:
        return refuse(
            "no-backing-format",
            f"{img.path} does not record its backing file's format; record it first (an "
            "unsafe rebase onto the same file)",
            fix_cli=diagnose.fix_cli(Kind.NO_BACKING_FORMAT, img.path, backing.path),
        )
    if img.backing_format != backing.format:
        return refuse(
            "backing-format-mismatch",
            f"{img.path} records its backing file as {img.backing_format} but it is a "
            f"{backing.format} image; writing through the wrong format would destroy it. Record "
            "the real format first (an unsafe rebase onto the same file)",
            fix_cli=diagnose.fix_cli(Kind.BACKING_FORMAT_MISMATCH, img.path, backing.path),
        )
    return None


def same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return canonical(a) == canonical(b)


# --------------------------------------------------------------------------- internal snapshots

#: What happens to an image's internal snapshots in each operation that does not carry them
#: along (checked against qemu 7.2): ``{n}`` the count with its names, ``{path}`` the image.
_SNAPSHOTS_LEFT = {
    # qemu-img convert copies the current state only.
    "flatten": "the new image has none of them (a flatten copies the current state only); "
    "they stay in {path}",
    "convert": "the new image has none of them (a convert copies the current state only); "
    "they stay in {path}",
    # qemu-img commit writes the overlay's current data into the base and empties it; the
    # snapshots stay in the overlay but read what they did not store from the changed base.
    "commit": "they are not committed into the base; they stay in {path}, but what they did "
    "not store themselves they read from the base, which this commit changes, so reverting to "
    "one afterwards no longer gives what it recorded",
    # qemu-img rebase (safe) copies the differences into the current state only.
    "rebase": "they are not rebased; they stay in {path}, but what they did not store "
    "themselves they read from the new backing file (as zeros without one), so reverting to "
    "one afterwards no longer gives what it recorded",
}


def snapshot_count(img: ImageInfo) -> int:
    """How many internal snapshots the header says ``img`` has (only qcow2 has them)."""
    count = img.flags.get("nb_snapshots", 0) if img.format == "qcow2" else 0
    return count if isinstance(count, int) else 0


def snapshots_not_carried(img: ImageInfo, op: str) -> Finding | None:
    """A warning that ``img``'s internal snapshots (qcow2) are not carried along by ``op``
    (``flatten``, ``convert``, ``commit``, ``rebase``); None when it has none."""
    count = snapshot_count(img)
    if not count:
        return None
    from imagegui.core.read.formats.base import ParseError
    from imagegui.core.read.snapshots import read_snapshots

    try:
        names = ", ".join(repr(s.name) for s in read_snapshots(img.path)[:5])
    except (OSError, ParseError):
        names = ""
    more = "..." if count > 5 else ""
    what = f"{count} internal snapshot{'s' * (count > 1)}" + (f" ({names}{more})" if names else "")
    return warn(
        "snapshots-not-carried",
        f"{img.path} has {what}: " + _SNAPSHOTS_LEFT[op].format(path=img.path),
    )


# --------------------------------------------------------------------------- who else uses a base
# Finding a base's other overlays means scanning directory trees: a search, not a check. A plan
# builder chooses the roots (``nearby_roots``), calls ``find_overlays`` over exactly
# those, and states them (``Plan.searched``), so the user sees what was not looked at.


def nearby_roots(*paths: str, extra: Iterable[str] = (), widen: bool = False) -> list[str]:
    """Directories to search for other users of a base: the given files' directories, the
    user's ``--root``s and, for an OpenStack ``_base`` directory, the instances directory above
    it. ``widen`` adds each directory's parent too (templates/ has clones in ../vms/) where a
    mistake is costly, as booting a base writable is. A guess never reaches a directory every
    user shares (``/tmp``) nor the home directory or one above it (``too_wide``)."""
    roots: list[str] = []
    for p in paths:
        d = os.path.dirname(canonical(p))
        roots.append(d)
        if os.path.basename(d) == "_base" and not too_wide(os.path.dirname(d)):
            roots.append(os.path.dirname(d))
    if widen:
        roots += [os.path.dirname(d) for d in roots if not too_wide(os.path.dirname(d))]
    # Overlay and base in sibling folders (templates/ and clones/): clones of the same base
    # often sit in a third sibling (vms/), so their common parent is searched too - when it is
    # close by and not too wide.
    common = os.path.commonpath(roots) if roots else "/"
    if (
        common not in roots
        and not too_wide(common)
        and all(_levels_below(r, common) <= 2 for r in roots)
    ):
        roots.append(common)
    roots += [canonical(r) for r in extra]
    # Drop roots inside another root: the scan is recursive.
    roots = sorted(set(roots), key=len)
    kept: list[str] = []
    for r in roots:
        if not any(r == k or r.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(r)
    return kept


def too_wide(directory: str) -> bool:
    """Never searched (nor read from without asking) on a guess: the file system's root, the
    home directory and the directories above it (``/home``), and a directory every user may
    write (sticky and world-writable: ``/tmp``, ``/var/tmp``, ``/dev/shm``) - a file in
    ``/tmp/x`` must not make imagegui scan, or trust, the whole of ``/tmp``. A folder the user
    names (an image's own folder, ``--root``) is searched all the same."""
    home = os.path.expanduser("~").rstrip("/") or "/"
    if directory == "/" or directory == home or home.startswith(directory.rstrip("/") + "/"):
        return True
    try:
        mode = os.stat(directory).st_mode
    except OSError:
        return False
    return bool(mode & stat.S_ISVTX and mode & stat.S_IWOTH)


def _levels_below(path: str, parent: str) -> int:
    return len(os.path.relpath(path, parent).split(os.sep))


def find_overlays(base: str, roots: Sequence[str]) -> list[str]:
    """The images under ``roots`` (each scanned whole) whose backing file is ``base`` (through
    links and ``..``). Only ``roots`` are searched: state them wherever the answer is shown."""
    from imagegui.core.chains.graph import ChainGraph
    from imagegui.core.read.scan import scan_directory

    found: set[str] = set()
    for root in roots:
        graph = ChainGraph(scan_directory(root))
        node = graph.resolve(base)
        if node is not None:
            found.update(graph.children(node))
    # The same file reached under two names (a symlink) counts once.
    unique: dict[tuple[int, int] | str, str] = {}
    for p in sorted(found):
        unique.setdefault(file_id(p) or p, p)
    return sorted(unique.values())


# --------------------------------------------------------------------------- what a chain reads


def access_roots(*paths: str, extra: Iterable[str] = ()) -> list[str]:
    """The directories a plan may read from without asking: those of the files the user named,
    their parents (unless ``too_wide``), the scanned roots (``extra``)."""
    return nearby_roots(*paths, extra=extra, widen=True)


def is_allowed(name: str, allow: Iterable[str]) -> bool:
    """``name`` (a path or a protocol source) is one the user allowed explicitly."""
    for a in allow:
        if a == name:
            return True
        if is_protocol(a) or is_protocol(name):
            continue
        if canonical(a) == canonical(name) or same_file(a, name):
            return True
    return False


def chain_access(chain: Chain, roots: Sequence[str], allow: Iterable[str] = ()) -> list[Finding]:
    """Refusals for what running the plan would make qemu read beyond the files the user named:
    a backing file or extent outside ``roots``, a device, a file the user would not otherwise
    read, a protocol source (the network). A crafted header can name any of these, and a flatten
    or a VM then copies the host's file out; each is refused unless allowed by name."""
    allow = tuple(allow)
    findings: list[Finding] = []
    euid = os.geteuid()
    for i, img in enumerate(chain.images):
        owner = _owner(img.path)
        if i > 0:
            prev = chain.images[i - 1]
            findings += _file_access(
                img.path, f"the backing file of {prev.path}", roots, allow, euid, _owner(prev.path)
            )
        for extent in img.extents:
            if extent != img.path:
                findings += _file_access(
                    extent, f"a data file of {img.path}", roots, allow, euid, owner
                )
    if chain.protocol:
        top = chain.images[-1].path if chain.images else "the image"
        if is_allowed(chain.protocol, allow):
            findings.append(
                warn(
                    "allowed",
                    f"allowed: reads {chain.protocol!r} ({top}'s backing)",
                    subject=chain.protocol,
                )
            )
        else:
            findings.append(
                refuse(
                    "protocol-backing",
                    f"{top} reads its backing from {chain.protocol!r}, a network or protocol "
                    "source that imagegui cannot check: running this would contact it. Refused "
                    "unless you allow that source explicitly",
                    fix_cli=f"add --allow-file {shlex.quote(chain.protocol)} to the same command",
                    subject=chain.protocol,
                )
            )
    return findings


def _owner(path: str) -> int | None:
    try:
        return os.stat(path).st_uid
    except OSError:
        return None


def _file_access(
    path: str,
    role: str,
    roots: Sequence[str],
    allow: tuple[str, ...],
    euid: int,
    referrer_uid: int | None,
) -> list[Finding]:
    try:
        st = os.stat(path)
    except OSError:
        return []  # missing: the chain and the scan report it
    code = why = ""
    if not stat.S_ISREG(st.st_mode):
        from imagegui.core.read.probe import file_kind

        code, why = "device-file", f"is {file_kind(st.st_mode)}, not a file"
    elif not os.access(path, os.R_OK):
        code, why = "private-file", "is not readable by you"
    elif st.st_uid not in (euid, referrer_uid) and not st.st_mode & stat.S_IROTH:
        code, why = (
            "private-file",
            (f"belongs to {_user_name(st.st_uid)} and is not readable by others"),
        )
    elif not any(is_inside(path, r) for r in roots):
        code, why = "outside-roots", f"lies outside {', '.join(roots)}"
    if not code:
        return []
    if is_allowed(path, allow):
        return [warn("allowed", f"allowed: reads {path} ({role}), which {why}", subject=path)]
    return [
        refuse(
            code,
            f"{path}, {role}, {why}: a crafted image can make qemu read any host file this way "
            "and copy it into a new image or hand it to a VM. Refused unless you allow this "
            "file explicitly",
            fix_cli=f"add --allow-file {shlex.quote(path)} to the same command",
            subject=path,
        )
    ]


def _user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"user {uid}"


def new_file_mode(chain: Chain) -> int:
    """Permissions for a file that will hold (or expose) ``chain``'s data: the narrowest of the
    sources' modes, or 0600 when a source belongs to someone else; never wider (the umask
    narrows it further). The owner keeps read and write, which qemu needs."""
    euid = os.geteuid()
    mode = 0o666
    for img in chain.images:
        for path in (img.path, *img.extents):
            try:
                st = os.stat(path)
            except OSError:
                continue
            if st.st_uid != euid:
                return 0o600
            mode &= st.st_mode
    return (mode & 0o666) | 0o600


# --------------------------------------------------------------------------- libvirt's VMs
# A VM defined in libvirt but shut off holds no lock: only libvirt knows that it will open the
# image at its next start. A plan reads its ``DomainSource`` afresh each time it is made (the
# preview and the run), like the locks above.


def read_domains(source: DomainSource | None) -> tuple[DomainIndex | None, list[Finding]]:
    """The index of which VMs use which files (None when libvirt is not asked), and a warning
    for each connection the user named that did not answer: its VMs were not checked."""
    if source is None:
        return None, []
    index, hosts = source.read()
    if source.uris is None:
        return index, []
    findings = []
    for uri in hosts.asked:
        if uri in hosts.unreachable:
            why = hosts.unreachable[uri]
            findings.append(
                warn(
                    "libvirt-unreachable",
                    f"libvirt at {uri} was not reachable{f' ({why})' if why else ''}; VMs "
                    "defined there were not checked",
                )
            )
    return index, findings


def _how(use: DomainUse) -> str:
    if use.role == "top":
        return f"as its disk {use.disk}"
    return f"through the backing chain of its disk {use.disk}"


def _join(items: Iterable[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _one_per_domain(uses: Iterable[DomainUse]) -> list[DomainUse]:
    seen: dict[tuple[str, str], DomainUse] = {}
    for u in uses:
        seen.setdefault((u.uri, u.name), u)
    return list(seen.values())


def _it(many: bool) -> str:
    return "them" if many else "it"


def _that(many: bool) -> str:
    return "those VMs are" if many else "that VM is"


def _vms(uses: list[DomainUse], running: bool = False) -> str:
    """``the VM web01 (shut off) as its disk vda``; running ones name their libvirt too."""
    many = len(_one_per_domain(uses)) > 1
    if running:
        parts = [f"{u.name} (libvirt {u.uri}) {_how(u)}" for u in uses]
        return f"the running VM{'s' * many} {_join(parts)}"
    return f"the VM{'s' * many} {_join(f'{u.describe()} {_how(u)}' for u in uses)}"


def not_used_by_domain(
    path: str,
    role: str,
    index: DomainIndex | None,
    consequence: str = "writing it changes {vm} disk",
    stopped: str = "force",
    fix_cli: str = "",
    skip: Iterable[DomainUse] = (),
    skip_running: bool = False,
) -> list[Finding]:
    """Findings for writing ``path`` while a libvirt VM uses it, directly (its disk) or through
    its disk's backing chain, naming the VMs, their state, the disks and how.

    Running VMs are refused outright (their QEMU has the file open). Shut-off VMs, by
    ``stopped``: ``"force"`` refuses with an override (the user may know the VM is obsolete),
    ``"refuse"`` refuses (``fix_cli`` the way round it), ``"warn"`` only warns (a repair is
    meant for a VM that is off). ``consequence`` says what the write does to the VM (``{vm}``
    becomes "that VM's" or "those VMs'"). ``skip``: uses another finding already names;
    ``skip_running``: the lock guard already refused (and named) the running ones."""
    if index is None:
        return []
    skipped = {(u.uri, u.name, u.disk) for u in skip}
    uses = [u for u in index.uses_of(path) if (u.uri, u.name, u.disk) not in skipped]
    findings = []
    for running in (True, False):
        group = [u for u in uses if u.active == running]
        if not group or (running and skip_running):
            continue
        many = len(_one_per_domain(group)) > 1
        effect = consequence.format(vm="those VMs'" if many else "that VM's")
        message = f"{role} {path} is used by {_vms(group, running)}; {effect}"
        if running:
            findings.append(refuse("used-by-vm", f"{message}; shut {_it(many)} down first"))
        elif stopped == "warn":
            findings.append(
                warn("used-by-vm", f"{message}: do not start {_it(many)} until this has finished")
            )
        elif stopped == "force":
            findings.append(
                refuse(
                    "used-by-vm",
                    f"{message}; if {_that(many)} obsolete, override this check where the "
                    "operation offers it",
                    overridable=True,
                    fix_cli="add --force to the same command",
                )
            )
        else:
            findings.append(refuse("used-by-vm", message, fix_cli=fix_cli))
    return findings


def domain_note(path: str, role: str, index: DomainIndex | None, why: str = "") -> Finding | None:
    """An information note naming the VMs that use ``path`` when the operation only reads it
    (``base X is also used by web01 (shut off)``); None when none does."""
    if index is None:
        return None
    uses = _one_per_domain(index.uses_of(path))
    if not uses:
        return None
    names = _join(u.describe() for u in uses)
    return info("used-by-vm", f"{role} {path} is also used by {names}{why}")


def vm_guards(
    path: str,
    role: str,
    index: DomainIndex | None,
    consequence: str,
    skip: Iterable[DomainUse] = (),
) -> list[Finding]:
    """The lock guard and the libvirt guard for writing ``path`` in place (a shut-off VM's disk
    is refused with the ``force`` override), without saying the same running VM twice: the
    lock refusal names it."""
    lock = not_in_use(path, role, index=index)
    found = [lock] if lock else []
    return found + not_used_by_domain(
        path, role, index, consequence, skip=skip, skip_running=lock is not None
    )
