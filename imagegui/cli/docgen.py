"""The man page imagegui(1) and the bash/zsh completions, written from the argparse parser.

Generated here rather than with ``argparse-manpage`` / ``shtab`` at build time: those would be
build dependencies of every wheel and sdist build, the generated files would have to be kept in
step with the parser by hand (or by a setuptools hook that breaks editable installs), and a
packager building without network would lose them. Walking argparse's actions is ~150 lines,
needs nothing, and ``install-desktop`` writes the files from the very parser of the version being
installed, so they cannot drift (tests/cli/test_docgen.py renders the page with ``man`` and
checks every subcommand is in it; ``bash -n`` / ``zsh -n`` parse the scripts).
"""

from __future__ import annotations

import argparse
import datetime
import re

import imagegui

EXIT_STATUS = [
    ("0", "done"),
    ("1", "failed, or problems found by check"),
    ("2", "refused or bad argument"),
    ("130, 129, 143", "cancelled by Ctrl-C, SIGHUP or SIGTERM (128 + the signal)"),
]

FILES = [
    ("$XDG_STATE_HOME/imagegui/imagegui.log", "the log (rotated: three older ones kept)"),
    (
        "$XDG_STATE_HOME/imagegui/journal.jsonl",
        "every rebase and linked-clone VM, for rebase --undo and clone-vm --undo",
    ),
    ("$XDG_STATE_HOME/imagegui/checks.json", "findings of qemu-img check, until an image changes"),
]


def _window_parser() -> argparse.ArgumentParser:
    """The window's own options (``imagegui [DIR] ...``): parsed without Qt, like the rest."""
    from imagegui.cli import SUBCOMMANDS
    from imagegui.cli.window_args import build_parser

    return build_parser(SUBCOMMANDS)


def subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[str, argparse.ArgumentParser]]:
    """name -> (one-line help, its parser), in the parser's order."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help or "" for c in sub._choices_actions}
    return {name: (helps.get(name, ""), p) for name, p in sub.choices.items()}


def _options(p: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in p._actions if a.option_strings and a.help != argparse.SUPPRESS]


def _positionals(p: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in p._actions if not a.option_strings]


def _metavar(a: argparse.Action) -> str:
    if a.nargs == 0:
        return ""
    if a.choices:
        return "|".join(map(str, a.choices))
    return a.metavar or a.dest.upper()


# --- man page -----------------------------------------------------------------------------


def _roff(text: str) -> str:
    """Text safe in a roff line: backslashes and hyphens escaped, no line starting a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return re.sub(r"^([.'])", r"\\&\1", text, flags=re.M)


def man_page(parser: argparse.ArgumentParser) -> str:
    date = datetime.date.today().isoformat()
    out = [
        f'.TH IMAGEGUI 1 "{date}" "imagegui {imagegui.__version__}" "User Commands"',
        ".SH NAME",
        "imagegui \\- see and safely work with QEMU/KVM disk\\-image backing chains",
        ".SH SYNOPSIS",
        ".B imagegui",
        "[\\fIDIR\\fR] [\\fB\\-\\-demo\\fR] [\\fB\\-v\\fR]",
        ".br",
        ".B imagegui",
        "\\fICOMMAND\\fR [\\fIOPTIONS\\fR] ...",
        ".SH DESCRIPTION",
        _roff(parser.description or ""),
        "Without a command, imagegui opens its window on DIR (default: the last directory).",
        ".SH WINDOW OPTIONS",
    ]
    for a in _window_parser()._actions:
        if a.dest == "help":
            continue
        label = ", ".join(a.option_strings) or _metavar(a)
        mv = _metavar(a) if a.option_strings else ""
        out += [".TP", f"\\fB{_roff(label)}\\fR" + (f" \\fI{_roff(mv)}\\fR" if mv else "")]
        out.append(_roff(a.help or ""))
    out.append(".SH COMMANDS")
    for name, (summary, p) in subcommands(parser).items():
        usage = p.format_usage().removeprefix("usage: ").strip()
        out += [".SS " + _roff(name), _roff(summary[:1].upper() + summary[1:]) + ".", ".PP"]
        out += [".nf", _roff(usage), ".fi"]
        if p.description and p.description != summary:
            out += [".PP", _roff(p.description)]
        for a in [*_positionals(p), *_options(p)]:
            if a.dest == "help":
                continue
            label = ", ".join(a.option_strings) or _metavar(a)
            mv = _metavar(a) if a.option_strings else ""
            out += [".TP", f"\\fB{_roff(label)}\\fR" + (f" \\fI{_roff(mv)}\\fR" if mv else "")]
            out.append(_roff(a.help or ""))
    out.append(".SH EXIT STATUS")
    for code, text in EXIT_STATUS:
        out += [".TP", f"\\fB{_roff(code)}\\fR", _roff(text)]
    out.append(".SH FILES")
    for path, text in FILES:
        out += [".TP", f"\\fI{_roff(path)}\\fR", _roff(text)]
    out += [
        ".SH ENVIRONMENT",
        ".TP",
        "\\fBIMAGEGUI_QEMU_IMG\\fR",
        "the qemu\\-img to run (default: the one on PATH)",
        ".TP",
        "\\fBXDG_STATE_HOME\\fR, \\fBXDG_DATA_HOME\\fR",
        "where the log and the journal, and what install\\-desktop installs, go",
        ".SH SEE ALSO",
        ".BR qemu\\-img (1),",
        ".BR qemu\\-system\\-x86_64 (1)",
    ]
    return "\n".join(out) + "\n"


# --- completions --------------------------------------------------------------------------


def _words(actions: list[argparse.Action]) -> str:
    return " ".join(s for a in actions for s in a.option_strings)


def bash_completion(parser: argparse.ArgumentParser) -> str:
    cmds = subcommands(parser)
    gui = _words(_options(_window_parser()))
    cases = []
    choices = []
    for name, (_, p) in cmds.items():
        cases.append(f"    {name}) opts={_q(_words(_options(p)) + ' -v --verbose')} ;;")
        for a in _options(p):
            if a.choices:
                for s in a.option_strings:
                    choices.append(f"    {name}:{s}) words={_q(' '.join(map(str, a.choices)))} ;;")
    choices.append(f"    *:--theme) words={_q('system light dark')} ;;")
    return f"""# bash completion for imagegui (generated from its argparse parser)
_imagegui() {{
  local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}}
  local cmd=${{COMP_WORDS[1]}} opts words
  if ((COMP_CWORD == 1)); then
    if [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W {_q(gui)} -- "$cur"))
    else
      COMPREPLY=($(compgen -W {_q(" ".join(cmds))} -- "$cur") $(compgen -f -- "$cur"))
    fi
    return
  fi
  case "$cmd:$prev" in
{chr(10).join(choices)}
    *) words= ;;
  esac
  if [[ -n $words ]]; then
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
    return
  fi
  case "$cmd" in
{chr(10).join(cases)}
    *) opts={_q(gui)} ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}}
complete -o filenames -o bashdefault -F _imagegui imagegui
"""


def _q(text: str) -> str:
    """A single-quoted shell word."""
    return "'" + text.replace("'", "'\\''") + "'"


def _zsh_help(text: str | None) -> str:
    return (text or "").replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


def zsh_completion(parser: argparse.ArgumentParser) -> str:
    cmds = subcommands(parser)
    describe = "\n".join(
        "    " + _q(f"{name}:{summary.replace(':', chr(92) + ':')}")
        for name, (summary, _) in cmds.items()
    )
    cases = []
    for name, (_, p) in cmds.items():
        specs = []
        for a in _options(p):
            if a.dest == "help":
                continue
            action = ""
            if a.nargs != 0:
                values = f"({' '.join(map(str, a.choices))})" if a.choices else "_files"
                action = f":{_metavar(a).lower()}:{values}"
            for s in a.option_strings:
                specs.append(_q(f"{s}[{_zsh_help(a.help)}]{action}"))
        specs.append(_q("*:file:_files"))
        cases.append(f"    ({name})\n      _arguments -s {' '.join(specs)} ;;")
    return f"""#compdef imagegui
# zsh completion for imagegui (generated from its argparse parser)
_imagegui() {{
  local -a commands
  commands=(
{describe}
  )
  if (( CURRENT == 2 )); then
    _describe -t commands 'imagegui command' commands
    _files
    return
  fi
  case $words[2] in
{chr(10).join(cases)}
    (*)
      _files ;;
  esac
}}
_imagegui "$@"
"""
