"""The man page and the shell completions generated from the argparse parser."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from imagegui.cli import SUBCOMMANDS, build_parser, docgen


def test_man_page_renders_and_names_every_subcommand(tmp_path):
    page = tmp_path / "imagegui.1"
    page.write_text(docgen.man_page(build_parser()))
    man = shutil.which("man")
    if man is None:
        pytest.fail("man is not installed (Debian: man-db)")
    proc = subprocess.run(
        [man, "-l", str(page)],
        capture_output=True,
        text=True,
        env={"MANWIDTH": "100", "MAN_KEEP_FORMATTING": "0", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr
    text = re.sub(".\x08", "", proc.stdout)  # overstrike bold/underline
    for name in SUBCOMMANDS:
        assert f"\n   {name}\n" in text, name
    assert "--json" in text and "--dry-run" in text and "EXIT STATUS" in text


def test_bash_completion_parses_and_completes_subcommands_and_choices(tmp_path):
    script = tmp_path / "imagegui"
    script.write_text(docgen.bash_completion(build_parser()))
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0

    def complete(*words: str) -> list[str]:
        line = " ".join(["imagegui", *words])
        probe = (
            f"source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words)}; "
            'cd /nonexistent 2>/dev/null; _imagegui; printf "%s\\n" "${COMPREPLY[@]}"'
        )
        out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, cwd=tmp_path)
        return out.stdout.split()

    assert "scan" in complete("sc") and "install-desktop" in complete("inst")
    assert complete("check-image", "x", "--repair", "") == ["leaks", "all"]
    assert complete("scan", "x", "--graph", "") == ["graphml", "gexf", "json"]
    assert "--deep" in complete("check", "--d")
    assert "--uninstall" in complete("install-desktop", "--un")


def test_zsh_completion_parses(tmp_path):
    zsh = shutil.which("zsh")
    if zsh is None:
        pytest.fail("zsh is not installed: run scripts/bootstrap.sh setup")
    script = tmp_path / "_imagegui"
    script.write_text(docgen.zsh_completion(build_parser()))
    assert subprocess.run([zsh, "-n", str(script)]).returncode == 0
    assert "(install-desktop)" in script.read_text()


def test_man_page_and_completion_carry_the_window_options(tmp_path):
    from imagegui.cli.window_args import build_parser as window_parser

    page = docgen.man_page(build_parser())
    bash = docgen.bash_completion(build_parser())
    for action in [a for a in window_parser()._actions if a.dest != "help"]:
        for option in action.option_strings:
            assert docgen._roff(option) in page and option in bash, option
