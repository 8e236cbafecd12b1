"""How a problem or a refusal reads on a terminal with its fixing command."""

from __future__ import annotations

from pathlib import Path

from conftest import qemu_img

from imagegui.cli import run_cli
from imagegui.core.chains.diagnose import cli_text


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
