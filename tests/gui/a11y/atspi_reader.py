"""Reads a running application's accessibility tree the way a screen reader does (AT-SPI).

Run with Debian's ``/usr/bin/python3`` (python3-pyatspi lives there, not in the venv), on the
session bus of the application under test:

    /usr/bin/python3 atspi_reader.py --app imagegui --until "table cell=debian-12.qcow2"

prints one JSON object: ``{"nodes": [{"role", "name", "description", "states", "depth",
"extents": [x, y, w, h]}, ...]}`` for every accessible of the application (dialogs included),
walked iteratively (no recursion limit) with a cap on depth and count. ``--until ROLE=GLOB``
(repeatable; ``ROLE~GLOB`` matches the description instead of the name) waits until the tree
has such an accessible. AT-SPI offers no "tree settled" event a separate process can wait on
for a whole subtree, so the wait re-reads the tree until the condition holds
or ``--timeout`` passes (exit 3, with the last tree, so a failure shows what was there).

``--event TYPE --until ROLE~GLOB`` listens instead, as a screen reader does: it prints "ready"
once registered, then the first such event from a matching accessible as JSON (exit 3 when none
came within ``--timeout``).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import sys
import time

import pyatspi

MAX_DEPTH = 40
MAX_NODES = 20_000
MAX_CHILDREN = 2_000


def find_app(name: str):
    desktop = pyatspi.Registry.getDesktop(0)
    for i in range(desktop.childCount):
        app = desktop.getChildAtIndex(i)
        if app is not None and app.name == name:
            return app
    return None


def walk(root) -> list[dict]:
    nodes: list[dict] = []
    stack = [(root, 0)]
    while stack and len(nodes) < MAX_NODES:
        acc, depth = stack.pop()
        try:
            states = acc.getState()
            node = {
                "depth": depth,
                "role": acc.getRoleName(),
                "name": acc.name or "",
                "description": acc.description or "",
                "states": [pyatspi.stateToString(s) for s in states.getStates()],
            }
            if states.contains(pyatspi.STATE_SHOWING):
                try:
                    ext = acc.queryComponent().getExtents(pyatspi.DESKTOP_COORDS)
                    node["extents"] = [ext.x, ext.y, ext.width, ext.height]
                except NotImplementedError:
                    pass
            count = acc.childCount
        except Exception:  # an accessible gone while walking (a row removed): skip it
            continue
        nodes.append(node)
        if depth >= MAX_DEPTH:
            continue
        children = []
        for i in range(min(count, MAX_CHILDREN)):
            try:
                child = acc.getChildAtIndex(i)
            except Exception:
                continue
            if child is not None:
                children.append((child, depth + 1))
        stack.extend(reversed(children))
    return nodes


def matches(node: dict, cond: str) -> bool:
    """``ROLE=GLOB`` matches the name, ``ROLE~GLOB`` the description (``fnmatch`` patterns,
    the role's too)."""
    role, sep, pattern = re.split(r"([=~])", cond, maxsplit=1)
    if not fnmatch.fnmatchcase(node["role"], role):
        return False
    return fnmatch.fnmatchcase(node["name" if sep == "=" else "description"], pattern)


def listen(event: str, cond: str, timeout: float) -> int:
    """Waits for ``event`` (an AT-SPI event type) from an accessible matching ``cond``, as a
    screen reader hears it: prints "ready" once listening, then the event as JSON."""
    from gi.repository import GLib

    heard: list[dict] = []

    def on_event(ev) -> None:
        try:
            src = ev.source
            node = {
                "event": ev.type,
                "role": src.getRoleName(),
                "name": src.name or "",
                "description": src.description or "",
                "data": str(ev.any_data),
            }
        except Exception:  # the source went away
            return
        if matches(node, cond):
            heard.append(node)
            pyatspi.Registry.stop()

    pyatspi.Registry.registerEventListener(on_event, event)
    GLib.timeout_add(int(timeout * 1000), pyatspi.Registry.stop)
    print("ready", flush=True)
    pyatspi.Registry.start()
    if not heard:
        return 3
    print(json.dumps(heard[0]), flush=True)
    return 0


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--app", required=True, help="the application's accessible name")
    p.add_argument("--until", action="append", default=[], metavar="ROLE=GLOB")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--event", help="instead: wait for this AT-SPI event from --until's accessible")
    args = p.parse_args()
    if args.event:
        return listen(args.event, args.until[0], args.timeout)
    deadline = time.monotonic() + args.timeout
    nodes: list[dict] = []
    while True:
        app = find_app(args.app)
        if app is not None:
            nodes = walk(app)
            if all(any(matches(n, c) for n in nodes) for c in args.until):
                json.dump({"nodes": nodes}, sys.stdout)
                return 0
        if time.monotonic() > deadline:
            json.dump(
                {"nodes": nodes, "missing": args.until, "app_found": app is not None}, sys.stdout
            )
            return 3
        time.sleep(0.25)


if __name__ == "__main__":
    sys.exit(main())
