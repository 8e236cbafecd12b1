"""How long does listing a libvirt host with 1,000 volumes take, and building its graph?

A ``dir`` pool (transient: gone when the benchmark ends) over N small qcow2 volumes (default
1,000), half of them bases and half overlays of them, then, best of ``--runs``:

- ``read_host``: every domain and every volume of every active pool (one XML call per volume);
- the remote graph: ``scan_host`` + ``ChainGraph`` over a read-write connection (one header
  download per overlay) and over a read-only one (the XML only);
- ``imagegui scan DIR --json --connect qemu+ssh://...`` as a whole process;
- the bare libvirt calls, to see where the time goes: ``listAllVolumes`` alone, then one
  ``XMLDesc`` per volume, one ``info()`` per volume (the only per-volume call cheaper than the
  XML, but it has neither format nor backing), one header download per overlay;

over ``qemu:///system`` and, when an sshd can be started (root, openssh-server installed), over
``qemu+ssh://root@127.0.0.1:PORT/system`` against an sshd on a free loopback port with keys made
for the run. The target (issue 11): the host listed in <= 3 s over the local connection.

Starts only what is missing: libvirtd when nothing answers at qemu:///system (stopped again at
the end), the sshd for the ssh figures (always its own, stopped at the end).

    .venv/bin/python benchmarks/libvirt_volumes.py [--count 1000] [--runs 3] [--no-ssh]
        [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from imagegui.core.chains.graph import ChainGraph  # noqa: E402
from imagegui.core.virt.connect import binding, open_connection  # noqa: E402
from imagegui.core.virt.inventory import read_host  # noqa: E402
from imagegui.core.virt.remote import HEADER_BYTES, download, scan_host  # noqa: E402

SYSTEM = "qemu:///system"


def make_volumes(directory: Path, count: int) -> None:
    """``base0000.qcow2``... and ``ov0000.qcow2``... (each ov backs onto the base of its number,
    backing format recorded): two qemu-img runs, then copies with the backing name patched (the
    names are all the same length)."""
    bases = count - count // 2
    first_base = directory / "base0000.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", first_base, "16M"], check=True)
    for i in range(1, bases):
        shutil.copyfile(first_base, directory / f"base{i:04d}.qcow2")
    first_ov = directory / "ov0000.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", "base0000.qcow2", "-F", "qcow2"]
        + ["-u", first_ov, "16M"],
        check=True,
    )
    template = first_ov.read_bytes()
    offset = int.from_bytes(template[8:16], "big")
    assert template[offset : offset + 14] == b"base0000.qcow2"
    for i in range(1, count // 2):
        data = bytearray(template)
        data[offset : offset + 14] = f"base{i % bases:04d}.qcow2".encode()
        (directory / f"ov{i:04d}.qcow2").write_bytes(data)


def best_of(runs: int, fn: Callable[[], object]) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


@contextlib.contextmanager
def libvirtd() -> Iterator[None]:
    """The system daemon: the one answering, or one started here (and stopped at the end)."""
    libvirt = binding()
    try:
        libvirt.openReadOnly(SYSTEM).close()
        yield
        return
    except libvirt.libvirtError:
        pass
    os.makedirs("/var/run/libvirt", exist_ok=True)
    subprocess.run(["libvirtd", "-d", "--pid-file", "/tmp/bench-libvirtd.pid"], check=True)
    pid = None
    try:
        for _ in range(600):
            with contextlib.suppress(libvirt.libvirtError):
                libvirt.openReadOnly(SYSTEM).close()
                break
            time.sleep(0.05)
        pid = int(Path("/tmp/bench-libvirtd.pid").read_text())
        print(f"(started libvirtd, pid {pid})")
        yield
    finally:
        if pid is not None:
            os.kill(pid, 15)


@contextlib.contextmanager
def loopback_sshd(work: Path) -> Iterator[str | None]:
    """``qemu+ssh://root@127.0.0.1:PORT/system?...`` through an sshd started here, or None
    (with the reason printed) when one cannot be."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if os.geteuid() != 0 or not os.path.exists(sshd) or not shutil.which("ssh"):
        print("(no ssh figures: needs root, sshd and ssh)")
        yield None
        return
    d = work / "sshd"
    d.mkdir()
    for key in ("hostkey", "key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", d / key], check=True)
    shutil.copy(d / "key.pub", d / "authorized_keys")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/hostkey\nPidFile {d}/sshd.pid\n"
        f"AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n"
        "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
    )
    wrapper = d / "ssh"
    wrapper.write_text(
        f'#!/bin/sh\nexec ssh -o UserKnownHostsFile={d}/known_hosts -o IdentitiesOnly=yes "$@"\n'
    )
    wrapper.chmod(0o755)
    os.makedirs("/run/sshd", exist_ok=True)
    proc = subprocess.Popen(
        [sshd, "-D", "-e", "-f", d / "sshd_config"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        for _ in range(400):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)) as c:
                if c.recv(4).startswith(b"SSH"):
                    break
            time.sleep(0.05)
        yield (
            f"qemu+ssh://root@127.0.0.1:{port}/system"
            f"?keyfile={d}/key&no_verify=1&no_tty=1&command={wrapper}"
        )
    finally:
        proc.terminate()
        proc.wait(10)


def measure(uri: str, pool_name: str, directory: str, runs: int) -> None:
    print(f"\n{uri.split('?')[0]}")
    rw = open_connection(uri, readonly=False)
    ro = open_connection(uri)
    try:
        t, inv = best_of(runs, lambda: read_host(ro, uri))
        print(
            f"  read_host (every pool and domain): {t:6.3f} s  "
            f"({len(inv.volumes):,} volumes, {len(inv.domains)} domains)"
        )
        t, graph = best_of(runs, lambda: ChainGraph(scan_host(rw, uri, directory, inv)))
        n = len(graph.scan.images)
        print(f"  graph, headers read (read-write): {t:6.3f} s  ({n:,} images, inventory given)")
        t, _ = best_of(runs, lambda: ChainGraph(scan_host(rw, uri, directory)))
        print(f"  read_host + graph (read-write):   {t:6.3f} s  (what scan --connect does)")
        t, _ = best_of(runs, lambda: ChainGraph(scan_host(ro, uri, directory)))
        print(f"  read_host + graph (read-only):    {t:6.3f} s  (no header downloads)")
        pool = ro.storagePoolLookupByName(pool_name)
        t, vols = best_of(runs, lambda: pool.listAllVolumes(0))
        print(f"  listAllVolumes of the pool:       {t:6.3f} s  ({len(vols):,} volumes)")
        t, _ = best_of(runs, lambda: [v.XMLDesc(0) for v in vols])
        print(f"  one XMLDesc per volume:           {t:6.3f} s")
        t, _ = best_of(runs, lambda: [v.info() for v in vols])
        print(f"  one info() per volume:            {t:6.3f} s  (no format, no backing)")
        if uri != SYSTEM:  # the whole command, as a user runs it (a remote URI only)
            argv = [sys.executable, "-m", "imagegui", "scan", directory, "--json"]
            argv += ["--connect", uri]
            t, _ = best_of(runs, lambda: subprocess.run(argv, check=True, capture_output=True))
            print(f"  imagegui scan DIR --json --connect: {t:5.3f} s  (whole process)")
        rw_pool = rw.storagePoolLookupByName(pool_name)
        overlays = [v for v in rw_pool.listAllVolumes(0) if v.name().startswith("ov")]
        t, _ = best_of(runs, lambda: [download(rw, v, 0, HEADER_BYTES) for v in overlays])
        print(f"  one header download per overlay:  {t:6.3f} s  ({len(overlays):,} overlays)")
    finally:
        rw.close()
        ro.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-ssh", action="store_true")
    ap.add_argument("--keep", help="make the volumes here and keep them")
    args = ap.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="ig-bench-virt-"))
    vols = work / "pool"
    vols.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    make_volumes(vols, args.count)
    print(f"{args.count:,} volumes made in {time.perf_counter() - start:.1f} s under {vols}")
    libvirt = binding()
    name = f"imagegui-bench-{os.getpid()}"
    try:
        with libvirtd():
            conn = libvirt.open(SYSTEM)
            xml = f"<pool type='dir'><name>{name}</name><target><path>{vols}</path></target></pool>"
            pool = conn.storagePoolCreateXML(xml, 0)  # transient: gone once destroyed
            try:
                measure(SYSTEM, name, str(vols), args.runs)
                if not args.no_ssh:
                    with loopback_sshd(work) as uri:
                        if uri is not None:
                            measure(uri, name, str(vols), args.runs)
            finally:
                pool.destroy()
                conn.close()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
