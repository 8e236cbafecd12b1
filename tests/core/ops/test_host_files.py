"""What a plan may read and write beyond the files the user named (issue 8, items 5-7, 16).

Real images, real qemu-img; the host's own /etc/shadow appears only in plans that are refused
(nothing reads it); its stand-in for runs is a private file in the test's tmp directory.
"""

from __future__ import annotations

import os
import socket
import stat
import threading
from pathlib import Path

import pytest
from conftest import qemu_img, qemu_info
from opshelpers import create, overlay, qemu_io, sha256

from imagegui.cli import run_cli
from imagegui.core.ops.check import plan_check
from imagegui.core.ops.commit import plan_commit
from imagegui.core.ops.flatten import FlattenPlan, plan_flatten
from imagegui.core.ops.launch import LaunchOptions, plan_launch
from imagegui.core.ops.overlay import OverlayPlan, plan_overlay
from imagegui.core.ops.plan import Finding, GuardRefused, Plan
from imagegui.core.ops.rebase import plan_rebase

IS_ROOT = os.geteuid() == 0
OTHER_UID = 54321


@pytest.fixture(autouse=True)
def _journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(tmp_path / "journal.jsonl"))


def blocking(plan: Plan) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in plan.blocking():
        out.setdefault(f.code, []).append(f)
    return out


def mode(path: str | os.PathLike) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# --------------------------------------------------------------------------- read-only images


def test_commit_into_a_base_its_owner_made_read_only_is_refused_unless_forced(tmp_path: Path):
    base = create(tmp_path / "base.qcow2")
    top = overlay(tmp_path / "top.qcow2", base)
    qemu_io(top, "write -P 0x44 0 64k")
    base.chmod(0o444)
    before = sha256(base)
    plan = plan_commit(str(top))
    refused = blocking(plan)["read-only"]
    assert str(base) in refused[0].message and "0444" in refused[0].message
    assert run_cli(["commit", str(top)]) == 2
    assert sha256(base) == before
    if IS_ROOT:  # root could write it: forcing is the owner's override
        assert refused[0].overridable
        assert run_cli(["commit", "--force", str(top)]) == 0
        assert sha256(base) != before


def test_rebase_and_repair_of_a_read_only_image_are_refused(tmp_path: Path):
    base = create(tmp_path / "base.qcow2")
    top = overlay(tmp_path / "top.qcow2", base)
    top.chmod(0o400)
    assert "read-only" in blocking(plan_rebase(str(top), "", unsafe=False))
    assert "read-only" in blocking(plan_check(str(top), "leaks"))
    assert "read-only" not in blocking(plan_check(str(top)))  # a plain check only reads


# --------------------------------------------------------------------------- host files


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A shadow-like file outside the images' directories: private, text, not an image."""
    d = tmp_path / "etc"
    d.mkdir()
    path = d / "shadow"
    path.write_text("root:$6$secret-hash:19000:0:99999:7:::\n" * 20)
    path.chmod(0o600)
    return path


def test_flatten_of_a_chain_reaching_a_host_file_is_refused_naming_it(tmp_path: Path, secret):
    vms = tmp_path / "srv" / "vms"
    vms.mkdir(parents=True)
    top = vms / "top.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", secret, "-F", "raw", "-u", top, "1M")
    out = vms / "out.qcow2"
    plan = plan_flatten(str(top), str(out))
    refused = blocking(plan)["outside-roots"]
    assert refused[0].subject == str(secret) and str(secret) in refused[0].message
    assert plan.required == 0  # not even measured: qemu-img never opened it
    assert run_cli(["flatten", str(top), str(out)]) == 2
    assert not out.exists()
    # Allowed by name: it runs, and the copy is as private as its source (0600, not 0644).
    allowed = plan_flatten(str(top), str(out), allow=(str(secret),))
    assert not allowed.refused, allowed.describe()
    assert any(f.code == "allowed" for f in allowed.findings)
    allowed.run()
    assert mode(out) == 0o600


def test_the_hosts_own_shadow_file_is_never_planned_as_ok(tmp_path: Path):
    top = tmp_path / "top.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", "/etc/shadow", "-F", "raw", "-u", top, "1M")
    for plan in (
        plan_flatten(str(top), str(tmp_path / "out.qcow2")),
        plan_overlay(str(top), str(tmp_path / "clone.qcow2")),
        plan_launch(str(top), LaunchOptions(snapshot=True, headless=True)),
    ):
        assert plan.refused, plan.describe()
        assert any(f.subject == "/etc/shadow" for f in plan.blocking()), plan.describe()
    # a check opens the image without its backing file: nothing to refuse
    assert "backing" in plan_check(str(top)).commands[0][-1]
    assert not plan_check(str(top)).refused


def _flat_vmdk(path: Path, extent: str) -> Path:
    path.write_text(
        "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"
        'createType="monolithicFlat"\n\n# Extent description\n'
        f'RW 1 FLAT "{extent}" 0\n\n# The Disk Data Base\n#DDB\n'
        'ddb.virtualHWVersion = "4"\n'
    )
    return path


def test_a_vmdk_flat_extent_outside_is_refused_by_every_plan(tmp_path: Path, secret):
    """CVE-2022-47951: ``RW 1 FLAT "/etc/shadow" 0``; scan reports it, plans must refuse it."""
    vms = tmp_path / "srv" / "vms"
    vms.mkdir(parents=True)
    desc = _flat_vmdk(vms / "disk.vmdk", str(secret))
    assert qemu_info(desc)["format"] == "vmdk"  # qemu opens it: the extent is read
    for plan in (
        plan_flatten(str(desc), str(vms / "out.qcow2")),
        plan_overlay(str(desc), str(vms / "clone.qcow2")),
        plan_launch(str(desc), LaunchOptions(snapshot=True, headless=True)),
        plan_check(str(desc)),
    ):
        refused = blocking(plan).get("outside-roots")
        assert refused and refused[0].subject == str(secret), plan.describe()
    assert run_cli(["flatten", str(desc), str(vms / "out.qcow2")]) == 2
    assert not (vms / "out.qcow2").exists()


def test_a_device_extent_is_refused(tmp_path: Path):
    desc = _flat_vmdk(tmp_path / "disk.vmdk", "/dev/zero")
    refused = blocking(plan_flatten(str(desc), str(tmp_path / "out.qcow2")))["device-file"]
    assert refused[0].subject == "/dev/zero" and "device" in refused[0].message


@pytest.mark.skipif(not IS_ROOT, reason="giving a file to another user needs root")
def test_a_file_private_to_another_user_is_refused_inside_the_directory(tmp_path: Path):
    """Root reads everything; a base that another user keeps private is not root's to copy out
    for whoever wrote the overlay pointing at it."""
    theirs = create(tmp_path / "theirs.qcow2")
    os.chown(theirs, OTHER_UID, OTHER_UID)
    theirs.chmod(0o600)
    top = overlay(tmp_path / "top.qcow2", theirs)
    refused = blocking(plan_flatten(str(top), str(tmp_path / "out.qcow2")))["private-file"]
    assert refused[0].subject == str(theirs) and str(OTHER_UID) in refused[0].message
    # The overlay is owned by that same user: they may read their own file.
    os.chown(top, OTHER_UID, OTHER_UID)
    assert "private-file" not in blocking(plan_flatten(str(top), str(tmp_path / "out.qcow2")))


def test_new_files_are_never_wider_than_their_source(tmp_path: Path):
    base = create(tmp_path / "base.qcow2")
    base.chmod(0o640)
    top = overlay(tmp_path / "top.qcow2", base)
    top.chmod(0o640)
    clone = tmp_path / "clone.qcow2"
    plan_overlay(str(base), str(clone)).run()
    assert mode(clone) == 0o640 & ~_umask()
    out = tmp_path / "flat.qcow2"
    plan_flatten(str(top), str(out)).run()
    assert mode(out) == 0o640 & ~_umask()


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


# --------------------------------------------------------------------------- the network


@pytest.fixture
def listener():
    """A local TCP port where an nbd client would connect; records every connection."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(60)
    connections: list[tuple[str, int]] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                conn, addr = srv.accept()
            except OSError:
                return
            connections.append(addr)
            conn.close()  # the client sees EOF and gives up

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield srv.getsockname()[1], connections
    done.set()
    srv.close()
    thread.join(5)


def test_no_plan_contacts_a_network_backing_unless_allowed(tmp_path: Path, listener, capsys):
    port, connections = listener
    top = tmp_path / "top.qcow2"
    name = f"nbd:127.0.0.1:{port}"
    qemu_img("create", "-q", "-f", "qcow2", "-b", name, "-F", "raw", "-u", top, "1M")
    # check-image reads only the image's own metadata: it works, and nothing is contacted
    assert run_cli(["check-image", str(top)]) == 0
    out = tmp_path / "o.qcow2"
    assert run_cli(["flatten", str(top), str(out)]) == 2
    err = capsys.readouterr().err
    assert name in err and f"--allow-file {name}" in err
    assert run_cli(["overlay", str(top), str(tmp_path / "c.qcow2")]) == 2
    assert plan_launch(str(top), LaunchOptions(snapshot=True, headless=True)).refused
    assert connections == []
    # Allowed for this plan only: qemu-img connects (so the listener would have seen it above).
    run_cli(["flatten", "--allow-file", name, str(top), str(out)])
    assert len(connections) >= 1


# --------------------------------------------------------------------------- create race


def test_overlay_never_overwrites_a_target_that_appears_after_the_last_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    base = create(tmp_path / "base.qcow2")
    new = tmp_path / "new.qcow2"
    plan = plan_overlay(str(base), str(new))
    assert not plan.refused
    # The re-check passes (nothing there yet); the file appears right after it.
    monkeypatch.setattr(OverlayPlan, "replan", lambda self: self)
    new.write_bytes(b"someone else's data")
    with pytest.raises(GuardRefused) as exc:
        plan.run()
    assert exc.value.findings[0].code == "target-exists"
    assert new.read_bytes() == b"someone else's data"


def test_flatten_partial_is_created_exclusively(tmp_path: Path, monkeypatch):
    base = create(tmp_path / "base.qcow2")
    out = tmp_path / "out.qcow2"
    plan = plan_flatten(str(base), str(out))
    monkeypatch.setattr(FlattenPlan, "replan", lambda self: self)
    Path(plan.partial).write_bytes(b"not ours")
    with pytest.raises(GuardRefused):
        plan.run()
    assert Path(plan.partial).read_bytes() == b"not ours"  # neither overwritten nor removed
    assert not out.exists()


def test_root_lets_a_chain_read_a_folder_of_bases_elsewhere(tmp_path: Path, capsys):
    """A library of bases kept elsewhere is named once with --root, not file by file."""
    base = create(tmp_path / "library" / "bases" / "base.qcow2")
    vms = tmp_path / "srv" / "vms"
    vms.mkdir(parents=True)
    top = vms / "top.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top)
    out = vms / "out.qcow2"
    assert run_cli(["flatten", "--dry-run", str(top), str(out)]) == 2
    assert "outside-roots" not in capsys.readouterr().err  # prose, not codes
    assert (
        run_cli(["flatten", "--dry-run", "--root", str(tmp_path / "library"), str(top), str(out)])
        == 0
    )
    assert run_cli(["flatten", "--dry-run", "--allow-file", str(base), str(top), str(out)]) == 0


SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.mark.skipif(
    not IS_ROOT or not os.access(SYSTEM_PYTHON, os.X_OK), reason="needs root to act as nobody"
)
def test_as_another_user_a_root_only_file_in_the_chain_is_refused_with_the_reason():
    """A shadow-like file (root, 0600) named by an image of user nobody, flattened by nobody:
    refused, saying why, and nothing written."""
    import shutil
    import subprocess
    import tempfile

    nobody = 65534
    d = Path(tempfile.mkdtemp(prefix="imagegui-nobody-", dir="/tmp"))
    try:
        d.chmod(0o755)
        secret = d / "shadow.raw"
        secret.write_bytes(b"root:$6$hash:19000::::::\n" * 100)
        secret.chmod(0o600)
        vms = d / "vms"
        vms.mkdir()
        top = vms / "top.qcow2"
        qemu_img("create", "-q", "-f", "qcow2", "-b", secret, "-F", "raw", "-u", top, "1M")
        for p in (vms, top):
            os.chown(p, nobody, nobody)
        repo = Path(__file__).resolve().parents[3]
        env = {"PATH": os.environ["PATH"], "HOME": str(d), "PYTHONPATH": str(repo),
               "IMAGEGUI_JOURNAL": str(d / "journal.jsonl")}  # fmt: skip
        proc = subprocess.run(
            [SYSTEM_PYTHON, "-m", "imagegui", "flatten", str(top), str(vms / "out.qcow2")],
            user=nobody, group=nobody, extra_groups=[], env=env, capture_output=True,
            text=True, cwd=str(d),
        )  # fmt: skip
        if "ModuleNotFoundError" in proc.stderr:
            pytest.skip(f"the system python lacks a dependency: {proc.stderr.strip()[-200:]}")
        assert proc.returncode == 2, proc.stderr
        assert str(secret) in proc.stderr and "permission denied" in proc.stderr
        assert sorted(os.listdir(vms)) == ["top.qcow2"]
    finally:
        shutil.rmtree(d)
