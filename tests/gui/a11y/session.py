"""Opens the real window on a directory and reads it as a screen reader would, three times:
once scanned, once an image (``--describe``) is clicked in the chains list, once another
(``--overlay-of``) is clicked and Create Overlay is opened with its keyboard shortcut. Writes
``{"main": [...], "selected": [...], "announced": {...}, "dialog": [...]}`` to ``--out``: trees
as ``atspi_reader.py`` prints them, and the description-changed event the click caused (not on
stdout: the bus's daemons inherit it and talk there).

Run by tests/gui/test_accessibility.py inside ``dbus-run-session`` (a private session bus):

    dbus-run-session -- python session.py DIR --describe NAME --overlay-of NAME --out tree.json

It starts its own Xvfb (a free display, ``-displayfd``), the accessibility bus, then
``python -m imagegui DIR`` with ``QT_LINUX_ACCESSIBILITY_ALWAYS_ON=1`` on the xcb platform, with
settings, journal and check results in a scratch directory. Exit 77 (and why on stderr) when the
accessibility bus or its registry cannot start here; anything else that goes wrong is a failure.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

READER = Path(__file__).with_name("atspi_reader.py")
SYSTEM_PYTHON = "/usr/bin/python3"
SKIP = 77


class Failed(Exception):
    pass


def start_xvfb() -> tuple[subprocess.Popen, str]:
    read, write = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1440x900x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as f:
        number = f.readline().strip()  # written once the server accepts connections
    if not number:
        xvfb.kill()
        raise Failed("Xvfb did not start")
    return xvfb, f":{number}"


def start_a11y_bus() -> str | None:
    """The accessibility bus and its registry, started the way a desktop starts them (D-Bus
    activation); None when it works, else why not."""
    try:
        out = subprocess.run(
            [
                "dbus-send",
                "--session",
                "--print-reply=literal",
                "--dest=org.a11y.Bus",
                "/org/a11y/bus",
                "org.a11y.Bus.GetAddress",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"the accessibility bus does not start: {exc}"
    if out.returncode != 0:
        return f"the accessibility bus does not start: {out.stderr.strip()}"
    address = out.stdout.strip()
    out = subprocess.run(
        [
            "dbus-send",
            f"--bus={address}",
            "--print-reply",
            "--dest=org.a11y.atspi.Registry",
            "/org/a11y/atspi/accessible/root",
            "org.freedesktop.DBus.Peer.Ping",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if out.returncode != 0:
        return f"the AT-SPI registry does not start: {out.stderr.strip()}"
    return None


def read_tree(*until: str, timeout: float = 90) -> list[dict]:
    args = [SYSTEM_PYTHON, str(READER), "--app", "imagegui", "--timeout", str(timeout)]
    for cond in until:
        args += ["--until", cond]
    out = subprocess.run(args, capture_output=True, text=True, timeout=timeout + 60)
    try:
        data = json.loads(out.stdout)
    except json.JSONDecodeError:
        raise Failed(f"the reader failed ({out.returncode}): {out.stderr[-2000:]}") from None
    if out.returncode != 0:
        raise Failed(
            f"not found in the accessibility tree within {timeout:.0f} s: {data.get('missing')} "
            f"(application registered: {data.get('app_found')}); the tree was:\n"
            + "\n".join(
                "  " * n["depth"] + f"{n['role']} {n['name']!r} {n['description'][:80]!r}"
                for n in data["nodes"]
            )
        )
    return data["nodes"]


def find(nodes: list[dict], role: str, name: str) -> dict:
    for n in nodes:
        if n["role"] == role and n["name"] == name and "extents" in n:
            return n
    raise Failed(f"no showing {role} named {name!r}")


def xdotool(*args: str) -> None:
    subprocess.run(["xdotool", *args], check=True, timeout=30)


def click(nodes: list[dict], role: str, name: str) -> None:
    x, y, w, h = find(nodes, role, name)["extents"]
    xdotool("mousemove", str(x + w // 2), str(y + h // 2), "click", "1")


def run(directory: str, describe: str, overlay_of: str, scratch: str) -> dict:
    why = start_a11y_bus()
    if why is not None:
        print(why, file=sys.stderr)
        sys.exit(SKIP)
    xvfb, display = start_xvfb()
    env = dict(
        os.environ,
        DISPLAY=display,
        QT_QPA_PLATFORM="xcb",
        QT_LINUX_ACCESSIBILITY_ALWAYS_ON="1",
        XDG_CONFIG_HOME=os.path.join(scratch, "config"),
        XDG_STATE_HOME=os.path.join(scratch, "state"),
        IMAGEGUI_JOURNAL=os.path.join(scratch, "journal.jsonl"),
        IMAGEGUI_CHECKS=os.path.join(scratch, "checks.json"),
        PYTHONFAULTHANDLER="1",  # a crash in the window shows its stack in the log
    )
    env.pop("WAYLAND_DISPLAY", None)
    os.environ["DISPLAY"] = display  # for xdotool
    app = subprocess.Popen(
        [sys.executable, "-m", "imagegui", directory],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(scratch, "app.log"), "w"),  # noqa: SIM115
    )
    try:
        # The title, too: the frame's name reaches the reader by its own event, and may lag the
        # cells (seen as "Scanning a11y0… — imagegui" under load).
        title = f"frame={glob.escape(os.path.basename(directory))} — *"
        main = read_tree(
            f"table cell={describe}", f"table cell={overlay_of}", "label=* images · *", title
        )
        # A screen reader is told when the graph's description changes with the selection.
        listener = subprocess.Popen(
            [SYSTEM_PYTHON, str(READER), "--app", "imagegui", "--timeout", "30",
             "--event", "object:property-change:accessible-description",
             "--until", f"canvas~{describe}, *"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert listener.stdout is not None
        if listener.stdout.readline().strip() != "ready":
            raise Failed("the event listener did not start")
        click(main, "table cell", describe)
        heard, _ = listener.communicate(timeout=60)
        if listener.returncode != 0:
            raise Failed("no description-changed event came from the graph after the click")
        announced = json.loads(heard)
        selected = read_tree(f"*~{describe}, *", timeout=30)
        click(selected, "table cell", overlay_of)
        read_tree(f"*~{overlay_of}, *", timeout=30)
        xdotool("key", "ctrl+n")
        dialog = read_tree("dialog=Create Overlay*", timeout=30)
        return {"main": main, "selected": selected, "announced": announced, "dialog": dialog}
    finally:
        app.terminate()
        try:
            app.wait(timeout=15)
        except subprocess.TimeoutExpired:
            app.kill()
            app.wait()
        xvfb.terminate()
        xvfb.wait()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("directory")
    p.add_argument("--describe", required=True, help="an image clicked in the chains list")
    p.add_argument("--overlay-of", required=True, help="the image Create Overlay is opened on")
    p.add_argument("--out", required=True, help="where the JSON goes")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="imagegui-a11y-") as scratch:
        try:
            result = run(args.directory, args.describe, args.overlay_of, scratch)
        except Failed as exc:
            log = Path(scratch, "app.log")
            print(f"{exc}\n--- the window's log ---\n{log.read_text()[-4000:]}", file=sys.stderr)
            return 1
    Path(args.out).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
