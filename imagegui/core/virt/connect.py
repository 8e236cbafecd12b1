"""Opening libvirt connections without ever failing loudly.

libvirt is optional: the binding may be missing, the daemon not running, the user not allowed.
Each of those becomes :class:`LibvirtUnreachable`, whose message is the one note a user sees
("libvirt not reachable at qemu:///system: <reason>"), and imagegui carries on without it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Sequence
from typing import Any

#: The host's own VMs (virt-manager's): where a new VM goes unless the user names another.
SYSTEM_URI = "qemu:///system"

#: Tried in this order when the user names no connection: the host's VMs, then the user's own.
DEFAULT_URIS = (SYSTEM_URI, "qemu:///session")

#: Environment variable that replaces :data:`DEFAULT_URIS` (``default_uris``).
DEFAULT_URIS_ENV = "IMAGEGUI_LIBVIRT_URIS"

#: Where the system daemon listens: the monolithic libvirtd, or the modular virtqemud (systemd
#: socket activation creates these too, so a missing one means nothing could answer).
SYSTEM_SOCKETS = (
    "/run/libvirt/libvirt-sock",
    "/run/libvirt/libvirt-sock-ro",
    "/run/libvirt/virtqemud-sock",
    "/run/libvirt/virtqemud-sock-ro",
)

#: What to run to get the binding (the package's optional extra).
INSTALL_HINT = "pip install 'imagegui[libvirt]'"


class LibvirtUnreachable(Exception):
    """A connection that could not be opened, with the reason in libvirt's or the OS's words."""

    def __init__(self, uri: str, reason: str):
        super().__init__(f"libvirt not reachable at {uri}: {reason}")
        self.uri = uri
        self.reason = reason


def binding() -> Any:
    """The ``libvirt`` module, with its default error printer silenced (it writes every error
    to stderr, including the ones imagegui expects and explains); raises ImportError."""
    import libvirt

    libvirt.registerErrorHandler(_ignore, None)
    return libvirt


def _ignore(_ctx: object, _err: object) -> None:
    return None


MISSING_BINDING = f"the libvirt Python binding is not installed ({INSTALL_HINT})"


def _binding_installed() -> bool:
    """Whether ``import libvirt`` can find the module, without importing it."""
    try:
        return importlib.util.find_spec("libvirt") is not None
    except (ImportError, ValueError):
        return False


def missing_binding() -> str | None:
    """Why libvirt cannot be used at all in this Python, or None when the binding imports."""
    try:
        binding()
    except ImportError:
        return MISSING_BINDING
    return None


def is_remote(uri: str) -> bool:
    """True when ``uri`` reaches another machine's daemon (``qemu+ssh://host/system``,
    ``qemu://host/system``): the paths it reports are not files on this machine, even when the
    host is this machine over loopback, because imagegui then reads them through libvirt."""
    from urllib.parse import urlsplit  # here: most starts never name a URI

    parts = urlsplit(uri)
    transport = parts.scheme.partition("+")[2]
    # qemu+unix:///system?socket=... is this machine's daemon on another socket; every other
    # transport (ssh, tls, tcp, libssh, ext) reaches a daemon elsewhere, host named or not.
    return bool(parts.hostname) or transport not in ("", "unix")


def local_uris(uris: Iterable[str]) -> list[str]:
    """The connections of ``uris`` to this machine's daemons, in order: only their VMs can use
    (or boot) a file here."""
    return [u for u in uris if not is_remote(u)]


def session_socket() -> str:
    """Where a running per-user daemon (``qemu:///session``) listens for this user."""
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    return os.path.join(runtime, "libvirt", "libvirt-sock")


def open_connection(uri: str, readonly: bool = True) -> Any:
    """An open ``virConnect`` to ``uri``; read-only unless writing is needed (creating a
    volume, defining a domain). Raises :class:`LibvirtUnreachable`."""
    if not _binding_installed():
        raise LibvirtUnreachable(uri, MISSING_BINDING)
    if uri == DEFAULT_URIS[0] and not any(map(os.path.exists, SYSTEM_SOCKETS)):
        # No daemon listens: say so without importing the binding (most of the cost of asking
        # on a machine without a running libvirt, which every default scan does).
        raise LibvirtUnreachable(uri, f"no libvirt daemon is running (no {SYSTEM_SOCKETS[0]})")
    why = missing_binding()
    if why is not None:
        raise LibvirtUnreachable(uri, why)
    libvirt = binding()
    try:
        conn = libvirt.openReadOnly(uri) if readonly else libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise LibvirtUnreachable(uri, _reason(exc)) from None
    if conn is None:  # very old bindings return None instead of raising
        raise LibvirtUnreachable(uri, "the connection could not be opened")
    return conn


def _reason(exc: Exception) -> str:
    get = getattr(exc, "get_error_message", None)
    text = (get() if get else None) or str(exc)
    return " ".join(text.split())


def default_uris() -> list[str]:
    """The connections to try when the user names none, quietly: the system daemon, and the
    user's session daemon only if it is already running (opening ``qemu:///session`` would
    otherwise start a daemon as a side effect of looking). ``IMAGEGUI_LIBVIRT_URIS`` (URIs
    separated by spaces; empty: none) replaces them, e.g. so a test run never asks the
    machine's daemon unless a test names it."""
    override = os.environ.get(DEFAULT_URIS_ENV)
    if override is not None:
        return override.split()
    uris = [DEFAULT_URIS[0]]
    if os.getuid() != 0 and os.path.exists(session_socket()):
        uris.append(DEFAULT_URIS[1])
    return uris


def first_reachable(uris: Sequence[str]) -> tuple[Any, str] | None:
    """The first of ``uris`` that opens (read-only), with its URI; None when none does."""
    for uri in uris:
        try:
            return open_connection(uri), uri
        except LibvirtUnreachable:
            continue
    return None
