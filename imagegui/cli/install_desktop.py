"""``imagegui install-desktop``: puts imagegui in the desktop's app menu, its man page in ``man``
and its completions in bash and zsh, for one user or the whole system; ``--uninstall`` takes
exactly that away again.

Qt-free on purpose: it runs where the window may not (a server, a fresh pipx install), and the
icons are PNGs rendered when the SVG changes (scripts/render_icons.sh), not at install time.
The man page and completions are generated here from the installed version's own argparse
parser (``cli.docgen``), so they can never describe another version than the one they come with.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from imagegui.appid import APP_ID

log = logging.getLogger(__name__)

ICON_SIZES = (16, 24, 32, 48, 64, 128, 256)
#: Under the data directory: what was installed and which directories were made for it, so
#: ``--uninstall`` removes exactly that (and nothing another program put beside it).
MANIFEST = Path("imagegui") / "install-desktop.manifest"
SYSTEM_PREFIX = "/usr/local"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "install-desktop",
        help="put imagegui in the app menu (desktop file, icons, AppStream data), its man page "
        "and bash/zsh completions",
        description="Install (or with --uninstall remove) the desktop entry, the icon in the "
        "hicolor theme, the AppStream metainfo, the man page imagegui(1) and bash/zsh "
        "completions. --user (the default) installs under $XDG_DATA_HOME (~/.local/share); "
        "--system under PREFIX/share (default /usr/local).",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="for this user (the default)")
    where.add_argument("--system", action="store_true", help="for every user (needs root)")
    p.add_argument(
        "--prefix",
        metavar="PREFIX",
        help=f"with --system: install under PREFIX/share (default {SYSTEM_PREFIX}; also "
        "IMAGEGUI_PREFIX)",
    )
    p.add_argument("--uninstall", action="store_true", help="remove what an install put there")
    p.set_defaults(func=cmd_install_desktop)


def cmd_install_desktop(args: argparse.Namespace) -> int:
    from imagegui.cli import UsageError

    if args.prefix and not args.system:
        raise UsageError("--prefix goes with --system")
    data = data_dir(args.system, args.prefix)
    try:
        if args.uninstall:
            removed = uninstall(data)
            print(f"removed {len(removed)} files from {data}" if removed else "nothing to remove")
        else:
            files = install(data, exec_argv())
            print(f"installed {len(files)} files under {data}")
            for hint in _hints(data, args.system):
                print(hint)
    except OSError as exc:
        name = exc.filename or data
        print(f"imagegui: error: {name}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


def data_dir(system: bool, prefix: str | None = None) -> Path:
    """Where the files go: ``$XDG_DATA_HOME`` (~/.local/share) or ``PREFIX/share``."""
    if system:
        return Path(prefix or os.environ.get("IMAGEGUI_PREFIX") or SYSTEM_PREFIX) / "share"
    xdg = os.environ.get("XDG_DATA_HOME")
    return Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"


def exec_argv() -> list[str]:
    """The absolute command that starts this very installation: the ``imagegui`` script beside
    the running interpreter (a venv's or pipx's bin/), else ``python -m imagegui``. A bare
    ``imagegui`` would depend on the menu's PATH, which seldom has ~/.local/bin or a venv."""
    script = Path(sys.executable).parent / "imagegui"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "imagegui"]


def desktop_exec(argv: list[str]) -> str:
    """``Exec=`` quoting per the Desktop Entry spec: an argument with a reserved character is
    double-quoted, with ``"`` `` ` `` ``$`` ``\\`` escaped; ``%`` doubled everywhere."""
    reserved = set(" \t\n\"'\\><~|&;$*?#()`")
    out = []
    for arg in argv:
        arg = arg.replace("%", "%%")
        if reserved & set(arg):
            arg = '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg) + '"'
        out.append(arg)
    return " ".join(out)


def resources() -> Path:
    """The resources directory without Qt: inside the package (a wheel) or beside it (a
    checkout)."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "resources", package.parent / "resources"):
        if (candidate / f"{APP_ID}.desktop").is_file():
            return candidate
    raise FileNotFoundError(f"imagegui's resources/ directory is missing (looked beside {package})")


@dataclass(frozen=True)
class Item:
    """One file to install: its bytes and where under the data directory it goes."""

    relpath: Path
    content: bytes


def items(argv: list[str]) -> list[Item]:
    """Everything an install writes, relative to the data directory."""
    from imagegui.cli import build_parser, docgen

    res = resources()
    desktop = (res / f"{APP_ID}.desktop").read_text(encoding="utf-8")
    desktop = "\n".join(
        f"Exec={desktop_exec(argv)} %f" if line.startswith("Exec=") else line
        for line in desktop.splitlines()
    )
    hicolor = res / "icons" / "hicolor"
    out = [
        Item(Path("applications") / f"{APP_ID}.desktop", (desktop + "\n").encode()),
        Item(
            Path("metainfo") / f"{APP_ID}.metainfo.xml",
            (res / f"{APP_ID}.metainfo.xml").read_bytes(),
        ),
        Item(
            Path("icons/hicolor/scalable/apps") / f"{APP_ID}.svg",
            (hicolor / "scalable" / "apps" / f"{APP_ID}.svg").read_bytes(),
        ),
    ]
    for size in ICON_SIZES:
        rel = Path("icons/hicolor") / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        out.append(Item(rel, (hicolor.parent / rel.relative_to("icons")).read_bytes()))
    parser = build_parser()
    out += [
        Item(Path("man/man1/imagegui.1"), docgen.man_page(parser).encode()),
        Item(Path("bash-completion/completions/imagegui"), docgen.bash_completion(parser).encode()),
        Item(Path("zsh/site-functions/_imagegui"), docgen.zsh_completion(parser).encode()),
    ]
    return out


def install(data: Path, argv: list[str]) -> list[Path]:
    """Writes every item (atomically, each replacing an earlier install's) and the manifest;
    refreshes the desktop's caches. Returns the files written."""
    previous = _read_manifest(data)
    made_dirs: list[Path] = [d for d in previous[1]]
    written: list[Path] = []
    for item in items(argv):
        target = data / item.relpath
        made_dirs += [d for d in _makedirs(target.parent, data) if d not in made_dirs]
        _write(target, item.content, 0o644)
        written.append(target)
        log.info("installed %s", target)
    manifest = data / MANIFEST
    made_dirs += [d for d in _makedirs(manifest.parent, data) if d not in made_dirs]
    lines = [f"file {p}" for p in written] + [f"dir {d}" for d in made_dirs]
    _write(manifest, ("\n".join(lines) + "\n").encode(), 0o644)
    _refresh_caches(data)
    return written


def uninstall(data: Path) -> list[Path]:
    """Removes the files the manifest lists (or, without one, the files an install of this
    version writes), then the directories the install made, if they are empty."""
    files, dirs = _read_manifest(data)
    if not files:
        files = [data / item.relpath for item in _items_or_none()]
    removed = []
    for path in files:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
        log.info("removed %s", path)
    (data / MANIFEST).unlink(missing_ok=True)
    _refresh_caches(data)
    for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        _drop_tool_caches(d)
        with contextlib.suppress(OSError):  # not empty: something else lives there now
            d.rmdir()
    return removed


def _items_or_none() -> list[Item]:
    try:
        return items(exec_argv())
    except OSError:
        return []


def _read_manifest(data: Path) -> tuple[list[Path], list[Path]]:
    try:
        text = (data / MANIFEST).read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], []
    files, dirs = [], []
    for line in text.splitlines():
        kind, _, name = line.partition(" ")
        path = Path(name)
        # Only paths under this data directory: a tampered manifest removes nothing else.
        if not path.is_absolute() or data not in path.parents:
            continue
        (files if kind == "file" else dirs if kind == "dir" else []).append(path)
    return files, dirs


def _makedirs(directory: Path, stop: Path) -> list[Path]:
    """Creates ``directory`` and its missing parents; returns those created (top first)."""
    missing = []
    d = directory
    while not d.exists() and d != stop:
        missing.append(d)
        d = d.parent
    directory.mkdir(parents=True, exist_ok=True)
    return list(reversed(missing))


def _write(target: Path, content: bytes, mode: int) -> None:
    """Atomic: a menu never reads half a desktop file, an interrupted install leaves the old."""
    tmp = target.with_name(f".{target.name}.imagegui-tmp")
    tmp.write_bytes(content)
    tmp.chmod(mode)
    os.replace(tmp, target)


#: Files the cache tools write into directories we made; removed with them on uninstall.
_TOOL_CACHES = ("mimeinfo.cache", "icon-theme.cache")


def _drop_tool_caches(directory: Path) -> None:
    try:
        names = {p.name for p in directory.iterdir()}
    except OSError:
        return
    if names and names <= set(_TOOL_CACHES):
        for name in names:
            (directory / name).unlink(missing_ok=True)


def _refresh_caches(data: Path) -> None:
    """The menu's MIME cache and the icon cache, when their tools exist; quietly, since a
    desktop without them rescans by itself. The icon cache only where a theme index is (a
    user's ~/.local/share/icons/hicolor has none and needs no cache)."""
    commands = [["update-desktop-database", "-q", str(data / "applications")]]
    hicolor = data / "icons" / "hicolor"
    if (hicolor / "index.theme").is_file():
        commands.append(["gtk-update-icon-cache", "-q", "-f", str(hicolor)])
    for argv in commands:
        tool = shutil.which(argv[0])
        if tool is None or not Path(argv[-1]).is_dir():
            continue
        proc = subprocess.run([tool, *argv[1:]], capture_output=True, text=True, check=False)
        log.info("ran %s: exit status %d", shlex.join(argv), proc.returncode)
        if proc.returncode != 0:
            log.warning("%s said: %s", argv[0], proc.stderr.strip())


def _hints(data: Path, system: bool) -> list[str]:
    """What the user may still have to do for man and zsh to find their files."""
    hints = []
    if not system:
        hints.append(
            f"man page: `man imagegui` finds {data / 'man'} when ~/.local/bin is on PATH "
            f"(else: MANPATH={data / 'man'}:)"
        )
        hints.append(
            f"zsh: add `fpath=({data / 'zsh' / 'site-functions'} $fpath)` before compinit in "
            "~/.zshrc"
        )
    return hints
