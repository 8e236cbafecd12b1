"""How a problem or a refusal reads on a terminal with its fixing command."""

from __future__ import annotations

import shlex
from pathlib import Path

from conftest import qemu_img

from imagegui.cli import run_cli
from imagegui.core.chains.diagnose import cli_text, fix_cli
from imagegui.core.chains.graph import ChainGraph
from imagegui.core.ops.commit import plan_commit
from imagegui.core.read.scan import scan_directory


def test_the_fix_starts_a_new_sentence():
    assert cli_text("Refused unless you allow it", "add --x") == (
        "Refused unless you allow it. Fix: add --x"
    )
    assert cli_text("point the overlay at it again.", "imagegui rebase") == (
        "point the overlay at it again. Fix: imagegui rebase"
    )
    assert cli_text("(see above)?", "x") == "(see above)? Fix: x"
    assert cli_text("no fix here", "") == "no fix here"


def test_a_refusal_on_the_terminal_is_not_run_together_with_its_fix(tmp_path: Path, capsys):
    top = tmp_path / "vms" / "top.qcow2"
    top.parent.mkdir()
    qemu_img("create", "-q", "-f", "qcow2", "-u", "-b", "/etc/shadow", "-F", "raw", top, "1M")
    assert run_cli(["flatten", str(top), str(tmp_path / "vms" / "out.qcow2")]) == 2
    err = capsys.readouterr().err
    assert "explicitly. Fix: add --allow-file /etc/shadow" in err, err
    assert "explicitly Fix:" not in err


def test_a_scan_and_a_refusal_advise_the_same_fix(make, tmp_path: Path):
    """One advice per kind: the problem ``check`` lists and the guard that refuses a commit of
    the same image name the same command, our own (not ``qemu-img rebase -u``)."""
    make.create("base.qcow2")
    top = make.overlay("top.qcow2", "base.qcow2", backing_fmt="raw")
    (found,) = ChainGraph(scan_directory(str(tmp_path))).problems_for(str(top))
    refusal = next(f for f in plan_commit(str(top)).findings if f.code == found.kind)
    assert (
        found.fix_cli
        == refusal.fix_cli
        == fix_cli(found.kind, str(top), str(make.root / "base.qcow2"))
    )
    assert found.fix_cli.startswith("imagegui rebase --unsafe ")
    assert run_cli(shlex.split(found.fix_cli)[1:]) == 0  # and it does fix it
    assert ChainGraph(scan_directory(str(tmp_path))).problems_for(str(top)) == []
