"""What the window remembers between runs, over QSettings.

Typed accessors instead of string keys scattered through the widgets. Tests point QSettings at a
temporary directory (``QSettings.setPath``) so they never touch the user's configuration.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QByteArray, QSettings

MAX_RECENT = 10


@dataclass
class OverlayDefaults:
    #: Store the base's absolute path (survives moving the overlay alone) instead of a relative one.
    absolute: bool = False
    #: Name of a new overlay: ``{stem}`` and ``{ext}`` of the base.
    pattern: str = "{stem}-overlay.qcow2"


class Settings:
    """Reads and writes through one ``QSettings`` (organisation ``imagegui``)."""

    def __init__(self, qsettings: QSettings | None = None):
        self.q = qsettings or QSettings("imagegui", "imagegui")

    # -- recent directories

    def recent_dirs(self) -> list[str]:
        value = self.q.value("recent/dirs", [])
        if isinstance(value, str):  # QSettings returns a lone string for a one-item list
            value = [value]
        return [str(v) for v in value or []]

    def add_recent(self, path: str) -> list[str]:
        dirs = [path, *(d for d in self.recent_dirs() if d != path)][:MAX_RECENT]
        self.q.setValue("recent/dirs", dirs)
        return dirs

    def clear_recent(self) -> None:
        self.q.setValue("recent/dirs", [])

    def last_dir(self) -> str | None:
        dirs = self.recent_dirs()
        return dirs[0] if dirs else None

    # -- window state

    def geometry(self, key: str) -> QByteArray | None:
        value = self.q.value(f"window/{key}")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_geometry(self, key: str, value: QByteArray) -> None:
        self.q.setValue(f"window/{key}", value)

    # -- operations

    def overlay_defaults(self) -> OverlayDefaults:
        d = OverlayDefaults()
        return OverlayDefaults(
            absolute=self._bool("overlay/absolute", d.absolute),
            pattern=str(self.q.value("overlay/pattern", d.pattern)) or d.pattern,
        )

    def set_overlay_defaults(self, value: OverlayDefaults) -> None:
        self.q.setValue("overlay/absolute", value.absolute)
        self.q.setValue("overlay/pattern", value.pattern)

    def qemu_img(self) -> str:
        """The qemu-img binary; empty means the one on PATH. The window passes it to every
        plan it makes (``qemu_img=``): a setting of this window, not of the process."""
        return str(self.q.value("qemu/img", "") or "")

    def set_qemu_img(self, path: str) -> None:
        self.q.setValue("qemu/img", path)

    def qemu_system(self) -> str:
        """The qemu-system binary used by Launch; empty means qemu-system-x86_64 on PATH."""
        return str(self.q.value("qemu/system", "") or "")

    def set_qemu_system(self, path: str) -> None:
        self.q.setValue("qemu/system", path)

    def memory_mib(self) -> int:
        return self._int("launch/memory", 1024)

    def set_memory_mib(self, value: int) -> None:
        self.q.setValue("launch/memory", int(value))

    def cpus(self) -> int:
        return self._int("launch/cpus", 1)

    def set_cpus(self, value: int) -> None:
        self.q.setValue("launch/cpus", int(value))

    def accel(self) -> str:
        """ "auto" (KVM when /dev/kvm is usable), "kvm" or "tcg"."""
        value = str(self.q.value("launch/accel", "auto") or "auto")
        return value if value in ("auto", "kvm", "tcg") else "auto"

    def set_accel(self, value: str) -> None:
        self.q.setValue("launch/accel", value)

    def launch_runner(self) -> str:
        """Who runs a launched VM: "qemu" (this window's) or "libvirt" (it keeps running)."""
        value = str(self.q.value("launch/runner", "qemu") or "qemu")
        return value if value in ("qemu", "libvirt") else "qemu"

    def set_launch_runner(self, value: str) -> None:
        self.q.setValue("launch/runner", value)

    def auto_rescan(self) -> bool:
        return self._bool("scan/auto", True)

    def set_auto_rescan(self, value: bool) -> None:
        self.q.setValue("scan/auto", bool(value))

    # -- appearance

    def appearance(self) -> str:
        """ "system" (the desktop's colours), "light" or "dark"."""
        value = str(self.q.value("ui/appearance", "system") or "system").lower()
        return value if value in ("system", "light", "dark") else "system"

    def set_appearance(self, value: str) -> None:
        self.q.setValue("ui/appearance", value)

    def problems_only(self) -> bool:
        """The graph shows only the chains with a problem or an unusable image."""
        return self._bool("graph/problems_only", False)

    def set_problems_only(self, value: bool) -> None:
        self.q.setValue("graph/problems_only", bool(value))

    def view(self) -> str:
        """The picture shown in the middle of the window: "graph" or "space"."""
        value = self.q.value("window/view", "graph")
        return value if value in ("graph", "space") else "graph"

    def set_view(self, value: str) -> None:
        self.q.setValue("window/view", value)

    def wheel_zooms(self) -> bool:
        """The mouse wheel zooms the graph (and Ctrl+wheel scrolls) instead of the other way."""
        return self._bool("graph/wheel_zooms", False)

    def set_wheel_zooms(self, value: bool) -> None:
        self.q.setValue("graph/wheel_zooms", bool(value))

    # -- clean up

    def cleanup_days(self) -> int:
        """Clean Up lists images nothing uses once they are this many days old."""
        return max(0, self._int("cleanup/older_than_days", 30))

    def set_cleanup_days(self, value: int) -> None:
        self.q.setValue("cleanup/older_than_days", int(value))

    def cleanup_unticked(self) -> list[str]:
        """The kinds of file (``cleanup_dialog.CATEGORIES`` keys) Clean Up leaves unticked."""
        value = self.q.value("cleanup/unticked", [])
        if isinstance(value, str):  # QSettings returns a lone string for a one-item list
            value = [value]
        return [str(v) for v in value or [] if str(v)]

    def set_cleanup_unticked(self, keys: list[str]) -> None:
        self.q.setValue("cleanup/unticked", sorted(set(keys)))

    # -- libvirt

    def libvirt_uris(self) -> list[str]:
        """Connections the user added (File ▸ Connect to libvirt…), in order; empty means the
        defaults, tried quietly (``core.virt.connect.default_uris``)."""
        value = self.q.value("libvirt/uris", [])
        if isinstance(value, str):  # QSettings returns a lone string for a one-item list
            value = [value]
        return [str(v) for v in value or [] if str(v)]

    def set_libvirt_uris(self, uris: list[str]) -> None:
        self.q.setValue("libvirt/uris", list(dict.fromkeys(uris)))

    def sync(self) -> None:
        self.q.sync()

    # -- helpers

    def _bool(self, key: str, default: bool) -> bool:
        value = self.q.value(key, default)
        if isinstance(value, str):
            return value.lower() in ("1", "true", "yes", "on")
        return bool(value)

    def _int(self, key: str, default: int) -> int:
        try:
            return int(self.q.value(key, default))
        except (TypeError, ValueError):
            return default
