"""Fixtures for tests against a real libvirtd (and a real sshd for ``qemu+ssh://``).

Registered in conftest.py (``pytest_plugins``). The daemons are real and shared by the whole test
session, the things a test makes are its own:

- ``libvirt_uri`` (session): ``"qemu:///system"``. A daemon that already answers is reused;
  otherwise, as root, the fixture starts ``virtlogd`` and ``libvirtd`` itself the way
  the packages' systemd units would (there is no systemd here) and stops them again - only
  them - when the last test session using them ends. Skips, saying why, when libvirt-python is not
  installed, the daemons are not installed, they do not start, or nothing answers and the tests are
  not root.
- ``libvirt_conn`` (function): an open ``virConnect`` to it, closed after the test.
- ``define_domain(disks=[...], name=None, fmt="qcow2", extra_xml="")`` (function, factory): a
  persistent, shut-off domain using those disk images, undefined after the test.
- ``define_pool(path, name=None)`` (function, factory): a started ``dir`` pool on a directory,
  destroyed and undefined after the test.
- ``ssh_libvirt_uri`` (session): the same daemon through ``qemu+ssh://root@127.0.0.1:PORT/...``
  against an sshd this fixture starts on a free loopback port with keys of its own.

Several test sessions (other worktrees, CI jobs) may share one machine and so one libvirtd: the
start-up is serialised by a lock file, each session holds it shared while it runs, and the daemons
a fixture started are stopped by whichever session is the last one out. Names made here start with
``imagegui-test-`` and a random part, so concurrent sessions never meet on a name."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest

SYSTEM_URI = "qemu:///system"
NAME_PREFIX = "imagegui-test-"
INSTALL_HINT = "libvirt-python not installed: pip install imagegui[libvirt]"
START_DEADLINE = 60.0  # s: a cold libvirtd answers in ~8 s here; a loaded CI machine is slower
POLL = 0.05  # s between two connection attempts while a daemon comes up

# Shared by every test session on the machine (root only: only root starts daemons).
LOCK_FILE = Path("/run/imagegui-tests-libvirtd.lock")
STARTED_FILE = Path("/run/imagegui-tests-libvirtd.json")  # {"libvirtd": pid, "virtlogd": pid}
PID_FILES = {"libvirtd": Path("/var/run/libvirtd.pid"), "virtlogd": Path("/var/run/virtlogd.pid")}


def _libvirt():
    """The libvirt module, or a skip saying how to install it."""
    try:
        import libvirt
    except ImportError:
        pytest.skip(INSTALL_HINT)
    # libvirt prints every error to stderr by default, also the ones a test expects and handles.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    return libvirt


def _try_open(libvirt, uri: str) -> tuple[object | None, str]:
    """(connection, "") when the daemon answers at ``uri``, else (None, libvirt's reason)."""
    try:
        return libvirt.open(uri), ""
    except libvirt.libvirtError as e:
        return None, str(e)


def _pid_alive(pid: int, name: str) -> bool:
    """Whether ``pid`` is a running process whose command is ``name`` (not a recycled pid)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return False
    return os.path.basename(cmd.decode(errors="replace")) == name


def _pid_from(path: Path, name: str) -> int | None:
    """The pid in a daemon's pid file when that process is running, else None."""
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid, name) else None


def _prepare_for_qemu_driver() -> None:
    """What the packages' systemd units and udev rules would have done: runtime dirs, the
    ``libvirt-qemu`` user (the QEMU driver will not start without it) in group kvm, and /dev/kvm
    open to that group (without it every define re-probes QEMU and takes 30-48 s)."""
    for d in ("/var/log/libvirt", "/var/run/libvirt", "/var/lib/libvirt", "/var/cache/libvirt"):
        os.makedirs(d, exist_ok=True)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    if subprocess.run(["id", "libvirt-qemu"], **quiet).returncode != 0:
        subprocess.run(["useradd", "-r", "-s", "/usr/sbin/nologin", "libvirt-qemu"], **quiet)
    subprocess.run(["groupadd", "-f", "kvm"], **quiet)
    subprocess.run(["usermod", "-aG", "kvm", "libvirt-qemu"], **quiet)
    if os.path.exists("/dev/kvm"):
        subprocess.run(["chgrp", "kvm", "/dev/kvm"], **quiet)
        os.chmod("/dev/kvm", 0o660)


def _start_daemon(name: str) -> int:
    """Runs ``NAME -d`` (it returns once the daemon has set itself up) and returns the daemon's
    pid from its pid file; a skip with the daemon's own words when it does not start."""
    binary = shutil.which(name) or f"/usr/sbin/{name}"
    # Its words go to a file, not a pipe: a pipe the daemon kept open would never reach EOF.
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.run([binary, "-d"], stdout=out, stderr=out, timeout=START_DEADLINE)
        out.seek(0)
        said = out.read().strip()
    deadline = time.monotonic() + START_DEADLINE
    while (pid := _pid_from(PID_FILES[name], name)) is None:
        if proc.returncode != 0 or time.monotonic() > deadline:
            pytest.skip(f"{name} did not start: {said or f'exit status {proc.returncode}'}")
        time.sleep(POLL)
    return pid


def _stop(pid: int, name: str) -> None:
    """SIGTERM, and SIGKILL when the daemon has not gone after 15 s."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, 15)
    deadline = time.monotonic() + 15
    while _pid_alive(pid, name):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
            break
        time.sleep(POLL)


@dataclass
class _Daemons:
    """What this session did to get a daemon: the lock it holds shared while it runs."""

    lock: object | None = None
    started: dict[str, int] | None = None
    seconds: float = 0.0


def _bring_up(libvirt) -> _Daemons:
    """Reuses the answering daemon or (root only) starts virtlogd and libvirtd. As root the
    machine lock is held shared from before the first look until the session ends, so that the
    session that started the daemons does not stop them under this one; starting them takes it
    exclusive."""
    if os.geteuid() != 0:
        conn, reason = _try_open(libvirt, SYSTEM_URI)
        if conn is None:
            pytest.skip(
                f"libvirt not reachable at {SYSTEM_URI}: {reason} (the tests run as uid "
                f"{os.geteuid()}; starting libvirtd for them needs root)"
            )
        conn.close()
        return _Daemons()
    start = time.monotonic()
    lock = open(LOCK_FILE, "a+")  # noqa: SIM115 - held until the session ends
    started: dict[str, int] = {}
    try:
        fcntl.flock(lock, fcntl.LOCK_SH)
        conn, reason = _try_open(libvirt, SYSTEM_URI)
        if conn is None:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one session starts them, the others wait
            conn, reason = _try_open(libvirt, SYSTEM_URI)
        if conn is None:
            for name in PID_FILES:
                if not (shutil.which(name) or os.path.exists(f"/usr/sbin/{name}")):
                    pytest.skip(
                        f"libvirtd does not answer at {SYSTEM_URI} and {name} is not installed "
                        "(apt-get install libvirt-daemon libvirt-daemon-driver-qemu)"
                    )
            _prepare_for_qemu_driver()
            for name in ("virtlogd", "libvirtd"):  # domains cannot be defined without virtlogd
                if _pid_from(PID_FILES[name], name) is None:
                    started[name] = _start_daemon(name)
            deadline = time.monotonic() + START_DEADLINE
            while conn is None:
                if time.monotonic() > deadline:
                    pytest.skip(f"libvirtd started but does not answer at {SYSTEM_URI}: {reason}")
                time.sleep(POLL)
                conn, reason = _try_open(libvirt, SYSTEM_URI)
            STARTED_FILE.write_text(json.dumps({**_read_started(), **started}))
            fcntl.flock(lock, fcntl.LOCK_SH)
        # A fresh daemon probes QEMU on first use (~8 s with an empty cache): here, once, rather
        # than inside the first test that defines a domain.
        domain_type(conn)
        conn.close()
    except BaseException:
        for name in ("libvirtd", "virtlogd"):  # a half start-up is undone, not left behind
            if name in started:
                _stop(started[name], name)
        lock.close()
        raise
    return _Daemons(lock=lock, started=started, seconds=time.monotonic() - start)


def _read_started() -> dict[str, int]:
    try:
        return {k: int(v) for k, v in json.loads(STARTED_FILE.read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def _bring_down(daemons: _Daemons) -> None:
    """When no other session holds the lock: stops the daemons some test session started (never
    one that was running before the tests), libvirtd first."""
    if daemons.lock is None:
        return
    try:
        fcntl.flock(daemons.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # another session still uses them: the last one out stops them
        daemons.lock.close()
        return
    try:
        started = _read_started()
        for name in ("libvirtd", "virtlogd"):
            pid = started.get(name)
            if pid is not None and _pid_from(PID_FILES[name], name) == pid:
                _stop(pid, name)
        STARTED_FILE.unlink(missing_ok=True)
    finally:
        daemons.lock.close()


@pytest.fixture(scope="session")
def libvirt_uri() -> Iterator[str]:
    """``"qemu:///system"``, answered by a real libvirtd (reused, or started for the session)."""
    libvirt = _libvirt()
    daemons = _bring_up(libvirt)
    how = f"started {' and '.join(daemons.started)}" if daemons.started else "reused libvirtd"
    _summary.append(f"libvirt_uri: {how} ({daemons.seconds:.1f} s)")
    try:
        yield SYSTEM_URI
    finally:
        start = time.monotonic()
        _bring_down(daemons)
        if daemons.started:
            _summary.append(f"libvirt_uri: stopping took {time.monotonic() - start:.1f} s")


_summary: list[str] = []


def pytest_terminal_summary(terminalreporter) -> None:
    """What the libvirt set-up cost this session, one line (only when a test used it)."""
    for line in _summary:
        terminalreporter.write_line(line)


@pytest.fixture
def libvirt_conn(libvirt_uri: str):
    """An open connection to ``libvirt_uri`` for one test."""
    libvirt = _libvirt()
    conn = libvirt.open(libvirt_uri)
    try:
        yield conn
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()


def unique_name(kind: str = "") -> str:
    """``imagegui-test-[KIND-]<random>``: unique across concurrent test sessions."""
    return f"{NAME_PREFIX}{kind + '-' if kind else ''}{secrets.token_hex(4)}"


def random_mac() -> str:
    """A locally administered MAC in QEMU's 52:54:00 range."""
    return "52:54:00:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3))


_domain_type_cache: dict[str, str] = {}


def domain_type(conn) -> str:
    """``kvm`` when the daemon offers it (``/dev/kvm`` usable by it), else ``qemu`` (TCG)."""
    uri = conn.getURI()
    if uri not in _domain_type_cache:
        caps = conn.getCapabilities()
        _domain_type_cache[uri] = "kvm" if "<domain type='kvm'" in caps else "qemu"
    return _domain_type_cache[uri]


DiskSpec = str | os.PathLike | tuple[str | os.PathLike, str]


def domain_xml(
    name: str,
    disks: Sequence[DiskSpec],
    *,
    fmt: str = "qcow2",
    kind: str = "kvm",
    mac: str | None = None,
    extra_xml: str = "",
) -> str:
    """The smallest domain the QEMU driver accepts: 64 MiB, one vCPU, the disks as vda, vdb, ...
    (a disk is a path, or ``(path, format)`` to differ from ``fmt``), one user-mode NIC with
    ``mac``; ``extra_xml`` goes inside ``<devices>`` (e.g. a cdrom)."""
    if len(disks) > 26:
        raise ValueError("at most 26 disks (vda..vdz)")
    lines = []
    for i, disk in enumerate(disks):
        path, disk_fmt = disk if isinstance(disk, tuple) else (disk, fmt)
        lines.append(
            "    <disk type='file' device='disk'>"
            f"<driver name='qemu' type={quoteattr(disk_fmt)}/>"
            f"<source file={quoteattr(os.fspath(path))}/>"
            f"<target dev='vd{chr(ord('a') + i)}' bus='virtio'/></disk>"
        )
    mac = mac or random_mac()
    lines.append(
        f"    <interface type='user'><mac address='{mac}'/><model type='virtio'/></interface>"
    )
    if extra_xml:
        lines.append(extra_xml)
    devices = "\n".join(lines)
    return (
        f"<domain type='{kind}'>\n"
        f"  <name>{name}</name>\n"
        "  <memory unit='MiB'>64</memory>\n"
        "  <vcpu>1</vcpu>\n"
        "  <os><type arch='x86_64'>hvm</type></os>\n"
        f"  <devices>\n{devices}\n  </devices>\n"
        "</domain>\n"
    )


def _undefine_domain(libvirt, conn, uuid: str) -> None:
    """Gone however the test left it: stopped if running, undefined with whatever metadata it
    gathered (snapshots, checkpoints, managed save, NVRAM). Already gone is fine."""
    try:
        dom = conn.lookupByUUIDString(uuid)
    except libvirt.libvirtError:
        return
    with contextlib.suppress(libvirt.libvirtError):
        if dom.isActive():
            dom.destroy()
    flags = (
        libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
        | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
        | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
        | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
    )
    with contextlib.suppress(libvirt.libvirtError):
        if dom.isPersistent():
            dom.undefineFlags(flags)


@pytest.fixture
def define_domain(libvirt_conn) -> Iterator[Callable[..., object]]:
    """``define_domain(disks=[path, ...], name=None, fmt="qcow2", extra_xml="")`` -> virDomain:
    a persistent, never started domain on those images (see ``domain_xml``); the name is unique
    (``imagegui-test-dom-<random>``) unless given. Every domain it defined is undefined after the
    test, also when the test failed or already undefined or renamed it."""
    libvirt = _libvirt()
    uuids: list[str] = []

    def define(
        disks: Sequence[DiskSpec] = (),
        name: str | None = None,
        fmt: str = "qcow2",
        extra_xml: str = "",
    ):
        xml = domain_xml(
            name or unique_name("dom"),
            disks,
            fmt=fmt,
            kind=domain_type(libvirt_conn),
            extra_xml=extra_xml,
        )
        dom = libvirt_conn.defineXML(xml)
        uuids.append(dom.UUIDString())
        return dom

    try:
        yield define
    finally:
        for uuid in reversed(uuids):
            _undefine_domain(libvirt, libvirt_conn, uuid)


@pytest.fixture
def define_pool(libvirt_conn) -> Iterator[Callable[..., object]]:
    """``define_pool(path, name=None)`` -> virStoragePool: a ``dir`` pool on the directory
    ``path``, defined and started (its volumes listed); destroyed and undefined after the test
    (the directory and its files stay)."""
    libvirt = _libvirt()
    uuids: list[str] = []

    def define(path: str | os.PathLike, name: str | None = None):
        xml = (
            "<pool type='dir'>"
            f"<name>{name or unique_name('pool')}</name>"
            f"<target><path>{os.path.abspath(os.fspath(path))}</path></target>"
            "</pool>"
        )
        pool = libvirt_conn.storagePoolDefineXML(xml, 0)
        uuids.append(pool.UUIDString())
        pool.create(0)
        return pool

    try:
        yield define
    finally:
        for uuid in reversed(uuids):
            try:
                pool = libvirt_conn.storagePoolLookupByUUIDString(uuid)
            except libvirt.libvirtError:
                continue
            with contextlib.suppress(libvirt.libvirtError):
                if pool.isActive():
                    pool.destroy()
            with contextlib.suppress(libvirt.libvirtError):
                pool.undefine()


def _free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_ssh_banner(port: int, proc: subprocess.Popen, log: Path) -> None:
    """Until sshd greets on ``port``; a skip with sshd's log when it exits or never does."""
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            pytest.skip(f"sshd did not start: {log.read_text(errors='replace').strip()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as s:
            if s.recv(4).startswith(b"SSH"):
                return
        if time.monotonic() > deadline:
            pytest.skip(f"sshd does not answer on 127.0.0.1:{port}: {log.read_text().strip()}")
        time.sleep(POLL)


def _ssh_tools() -> tuple[str, str]:
    """(sshd, ssh-keygen), or a skip saying what is missing."""
    if os.geteuid() != 0:
        pytest.skip(
            "qemu+ssh://root@127.0.0.1 needs the tests to run as root (sshd logs the client in "
            f"as root); they run as uid {os.geteuid()}"
        )
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    keygen = shutil.which("ssh-keygen")
    if not (os.path.exists(sshd) and keygen and shutil.which("ssh")):
        pytest.skip("sshd, ssh or ssh-keygen is not installed (apt-get install openssh-server)")
    return sshd, keygen


@pytest.fixture(scope="session")
def ssh_libvirt_uri(libvirt_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``qemu+ssh://root@127.0.0.1:PORT/system?...``: the same libvirtd through libvirt's SSH
    transport, as a remote host is reached, against an sshd started for the session on a free
    loopback port with its own host and client keys. The client's ssh is a wrapper (the URI's
    ``command``) that keeps host keys in the tmp dir, not in root's ~/.ssh/known_hosts."""
    libvirt = _libvirt()
    sshd, keygen = _ssh_tools()
    d = tmp_path_factory.mktemp("sshd")
    for key in ("hostkey", "key"):
        subprocess.run(
            [keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)],
            check=True,
            capture_output=True,
        )
    shutil.copy(d / "key.pub", d / "authorized_keys")
    port = _free_loopback_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/hostkey\nPidFile {d}/sshd.pid\n"
        f"AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n"
        "StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
    )
    wrapper = d / "ssh"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"exec ssh -o UserKnownHostsFile={d}/known_hosts -o GlobalKnownHostsFile=/dev/null "
        '-o IdentitiesOnly=yes "$@"\n'
    )
    wrapper.chmod(0o755)
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege-separation directory
    log = d / "sshd.log"
    with open(log, "w") as log_file:
        proc = subprocess.Popen(
            [sshd, "-D", "-e", "-f", str(d / "sshd_config")],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        _wait_for_ssh_banner(port, proc, log)
        uri = (
            f"qemu+ssh://root@127.0.0.1:{port}/system"
            f"?keyfile={d}/key&no_verify=1&no_tty=1&command={wrapper}"
        )
        conn, reason = _try_open(libvirt, uri)
        if conn is None:
            pytest.skip(f"libvirt does not answer through sshd ({uri}): {reason}")
        conn.close()
        yield uri
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
