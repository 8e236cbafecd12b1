"""``imagegui check DIR --deep``: qemu-img check on every image, findings kept as problems."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from damaged import leaky_qcow2, truncated_qcow2
from opshelpers import fake_qemu_img

from imagegui.cli import run_cli


def cli(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, str, str]:
    status = run_cli([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def lab(make, check_store: Path) -> Path:
    """A truncated image, a leaky one, a healthy chain and a raw disk (no check for raw)."""
    truncated_qcow2(make.root / "trunc.qcow2")
    (make.root / "sub").mkdir()
    leaky_qcow2(make.root / "sub" / "leak.qcow2")
    make.create("base.qcow2")
    make.overlay("top.qcow2", "base.qcow2")
    make.create("disk.img", "raw", "1M")
    return make.root


def test_deep_json_reports_corruption_and_leaks(lab: Path, capsys):
    status, out, _ = cli(capsys, "check", lab, "--json")
    assert status == 0 and json.loads(out)["problems"] == []  # headers alone look healthy
    status, out, _ = cli(capsys, "check", lab, "--deep", "--json", "--jobs", "2")
    assert status == 1
    doc = json.loads(out)
    found = sorted((p["kind"], p["severity"], p["path"]) for p in doc["problems"])
    assert found == [
        ("check-errors", "error", str(lab / "trunc.qcow2")),
        ("leaked-clusters", "warning", str(lab / "sub" / "leak.qcow2")),
    ]
    message = next(p["message"] for p in doc["problems"] if p["kind"] == "check-errors")
    assert "3 corruptions" in message
    deep = doc["deep"]
    assert deep["checked"] == 4 and deep["jobs"] == 2 and deep["force_share"] is True
    assert deep["skipped"] == [str(lab / "disk.img")]
    assert deep["unrecorded"] == [] and deep["shared"] == []


def test_findings_stay_until_the_image_changes(lab: Path, capsys):
    cli(capsys, "check", lab, "--deep")
    status, out, _ = cli(capsys, "check", lab)  # no --deep: the kept findings
    assert status == 1
    assert "check-errors" in out and "leaked-clusters" in out
    assert "1 error, 1 warning" in out
    status, out, _ = cli(capsys, "scan", lab, "--json")
    kinds = {p["kind"] for p in json.loads(out)["problems"]}
    assert kinds == {"check-errors", "leaked-clusters"}
    with open(lab / "trunc.qcow2", "ab") as f:  # the image changes: its findings go
        f.write(b"\0" * 65536)
    status, out, _ = cli(capsys, "check", lab, "--json")
    assert [p["kind"] for p in json.loads(out)["problems"]] == ["leaked-clusters"]
    assert status == 0  # a warning only


def test_deep_text_says_how_it_checked(lab: Path, capsys):
    status, out, _ = cli(capsys, "check", lab, "--deep", "--jobs", "1")
    assert status == 1
    assert "4 images checked by qemu-img check, read-only with shared access (-U)" in out
    assert "1 not checked" in out
    assert "trunc.qcow2: The check of" in out


def test_jobs_needs_deep(lab: Path, capsys):
    status, _, err = cli(capsys, "check", lab, "--jobs", "2")
    assert status == 2 and "--deep" in err
    status, _, err = cli(capsys, "check", lab, "--deep", "--jobs", "0")
    assert status == 2


def test_a_damaged_store_is_a_note_and_is_renewed(lab: Path, check_store: Path, capsys):
    check_store.write_text("{not json")
    status, out, err = cli(capsys, "check", lab, "--deep", "--json")
    assert status == 1 and "could not be read" in err
    assert len(json.loads(out)["problems"]) == 2
    assert len(json.loads(check_store.read_text())["records"]) == 2


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_stops_every_running_check(
    tmp_path: Path, make, check_store: Path, sig: signal.Signals, status: int
):
    """Ctrl-C (and SIGTERM, as a service manager sends) stops both running checks and exits
    128 + the signal, the finished ones kept."""
    for i in range(4):
        make.create(f"img{i}.qcow2", "qcow2", "1M")
    fifo = tmp_path / "started"
    os.mkfifo(fifo)
    pids = tmp_path / "pids"
    fake = fake_qemu_img(tmp_path, f"echo $$ >> {pids}\necho ready > {fifo}\nexec sleep 300")
    proc = subprocess.Popen(
        [sys.executable, "-m", "imagegui", "check", str(make.root), "--deep", "--jobs", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "IMAGEGUI_QEMU_IMG": str(fake)},
    )
    started = 0
    while started < 2:  # blocks until both checks are running
        with open(fifo) as f:
            started += f.read().count("ready")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    assert "every running qemu-img check was stopped" in err
    running = [int(p) for p in pids.read_text().split()]
    assert len(running) == 2
    for pid in running:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_check_errors_break_the_chain_above(lab: Path, make, capsys):
    make.overlay("on-trunc.qcow2", "trunc.qcow2")
    make.overlay("on-on-trunc.qcow2", "on-trunc.qcow2")
    cli(capsys, "check", lab, "--deep")
    status, out, _ = cli(capsys, "scan", lab, "--json")
    chains = {i["path"]: i["chain"] for i in json.loads(out)["images"]}
    broken = {"ok": False, "broken_at": str(lab / "trunc.qcow2"), "kind": "check-errors"}
    assert chains[str(lab / "on-on-trunc.qcow2")] == broken
    assert chains[str(lab / "on-trunc.qcow2")] == broken
    assert chains[str(lab / "top.qcow2")]["ok"] is True
    assert chains[str(lab / "sub" / "leak.qcow2")]["ok"] is True  # a warning breaks nothing


def test_an_image_in_use_is_checked_through_a_shared_view_and_named(make, capsys):
    """qemu-io holds the image open for writing, as a running VM would: --deep still checks it
    (-U) and says which image was in use."""
    busy = leaky_qcow2(make.root / "busy.qcow2")
    make.create("idle.qcow2")
    holder = subprocess.Popen(
        ["qemu-io", "-f", "qcow2", str(busy)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        holder.stdin.write("info\n")
        holder.stdin.flush()
        assert "format name: qcow2" in holder.stdout.readline()  # answered: the image is open
        status, out, _ = cli(capsys, "check", make.root, "--deep", "--json")
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    doc = json.loads(out)
    assert doc["deep"]["shared"] == [str(busy)] and doc["deep"]["checked"] == 2
    assert [(p["kind"], p["path"]) for p in doc["problems"]] == [("leaked-clusters", str(busy))]
    assert status == 0


def test_a_terminal_sees_the_checks_counted(lab: Path):
    """On a terminal (stderr a pty) the checks done are counted, and the line is cleared."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "imagegui", "check", str(lab), "--deep", "--jobs", "2"],
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
    )
    os.close(slave)
    out, _ = proc.communicate(timeout=120)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the pty's other side is closed and drained
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.returncode == 1 and "check-errors" in out
    text = seen.decode()
    assert "checking... 0 of 4 images" in text and "checking... 4 of 4 images" in text
    assert text.endswith("\r\033[K")
