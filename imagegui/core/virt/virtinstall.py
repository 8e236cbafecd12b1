"""A new VM's machine definition from ``virt-install --import --print-xml`` (Debian's virtinst).

virt-install knows what a good default machine is on each host (machine type, CPU mode, USB,
display, sound, from the connection's capabilities and libosinfo), so imagegui asks it rather
than writing its own. Only ``--print-xml``: nothing is defined, started or created.

The disk is *not* passed to it: for ``--disk path=FILE`` virt-install creates (and marks for
autostart) a libvirt storage pool on FILE's directory when none covers it, even with
``--print-xml``, and refuses a file that does not exist yet - and the overlay is only created
when the plan runs. So it is asked with ``--disk none`` and :func:`clonexml.fresh_definition`
adds the overlay's disk exactly as ``--disk path=..,format=qcow2,bus=virtio`` would.
"""

from __future__ import annotations

import shutil
import subprocess

PROGRAM = "virt-install"
#: The Debian/Ubuntu package that provides it.
PACKAGE = "virtinst"
TIMEOUT = 120.0


class VirtInstallError(Exception):
    """virt-install is missing or failed; the message says which and what it printed."""


def argv(
    uri: str, name: str, memory_mib: int = 1024, vcpus: int = 1, network: str = "user"
) -> list[str]:
    """The command line (without the overlay: see the module's docstring)."""
    return [
        PROGRAM,
        "--connect",
        uri,
        "--import",
        "--print-xml",
        "--name",
        name,
        "--disk",
        "none",
        "--memory",
        str(memory_mib),
        "--vcpus",
        str(vcpus),
        "--osinfo",
        "detect=on,require=off",
        "--network",
        network,
        "--noautoconsole",
    ]


def missing() -> str | None:
    """Why virt-install cannot be run here, or None."""
    if shutil.which(PROGRAM) is None:
        return f"{PROGRAM} is not installed (the {PACKAGE} package: apt-get install {PACKAGE})"
    return None


def machine_xml(command: list[str], timeout: float = TIMEOUT) -> str:
    """Runs ``command`` (from :func:`argv`) and returns the domain XML it printed."""
    why = missing()
    if why is not None:
        raise VirtInstallError(why)
    try:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise VirtInstallError(f"{PROGRAM} did not answer within {timeout:g} s") from None
    except OSError as exc:
        raise VirtInstallError(f"{PROGRAM} cannot be run: {exc.strerror}") from None
    if done.returncode != 0 or "<domain" not in done.stdout:
        said = " ".join((done.stderr or done.stdout).split()) or f"exit status {done.returncode}"
        raise VirtInstallError(f"{PROGRAM} could not make a definition: {said}")
    return done.stdout[done.stdout.index("<domain") :]
