"""New files an operation writes (an overlay, a flatten's output): created exclusively by us,
checked to still be ours after qemu-img wrote them, and named without ever replacing a file."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets

from imagegui.core.jobs import CancelledError, CancelToken, ProgressFn
from imagegui.core.ops.plan import GuardRefused, refuse
from imagegui.core.read.fileid import FileId, file_id, stat_id


def partial_name(out: str) -> str:
    """The temporary name a new file is written under beside ``out`` (``.OUT.<8 hex>.partial``),
    renamed to ``out`` when complete: the scan reports one left behind as a ``leftover-file``
    and ``clean-leftovers`` removes it (``core.read.partials.LEFTOVER_RE``)."""
    return os.path.join(
        os.path.dirname(out), f".{os.path.basename(out)}.{secrets.token_hex(4)}.partial"
    )


def claim_new_file(path: str, mode: int) -> FileId:
    """Creates ``path`` empty, exclusively (``O_EXCL``): a file that appeared since the guards
    looked is never opened, let alone overwritten. qemu-img then writes into this file, which
    keeps ``mode`` (narrowed by the umask) instead of qemu's 0644. Returns its identity."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise GuardRefused(
            [refuse("target-exists", f"{path} appeared after the checks; it was not touched")]
        ) from None
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    return stat_id(st)


def release_new_file(path: str, ident: FileId) -> None:
    """Removes the file :func:`claim_new_file` made - only if ``path`` still is that file."""
    if file_id(path) == ident:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def still_ours(path: str, ident: FileId) -> None:
    """After qemu-img wrote ``path``: the file there must be the one we created."""
    if file_id(path) != ident:
        raise GuardRefused(
            [refuse("target-replaced", f"{path} was replaced by another file while being written")]
        )


def link_no_replace(src: str, dst: str) -> None:
    """Gives ``src`` the name ``dst`` unless ``dst`` exists - atomically where the file system
    has hard links, so a file that appeared during a long convert is still never replaced."""
    try:
        os.link(src, dst)
    except FileExistsError:
        raise GuardRefused(
            [refuse("target-exists", f"{dst} appeared while writing; it was not replaced")]
        ) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if os.path.lexists(dst):  # no hard links here (vfat, some FUSE): check, then rename
            raise GuardRefused(
                [refuse("target-exists", f"{dst} appeared while writing; it was not replaced")]
            ) from None
        os.rename(src, dst)
        return
    os.unlink(src)


def write_via_partial(
    argv: list[str],
    partial: str,
    out: str,
    mode: int,
    progress: ProgressFn,
    cancel: CancelToken,
    qemu_img: str = "",
    *,
    op: str,
    state: str,
) -> None:
    """Runs the qemu-img command ``argv`` that writes ``partial`` (claimed first, exclusively,
    with ``mode``), then gives it the name ``out``. Whatever stops it (a cancel, a qemu error,
    a refusal) removes ``partial``: no half-written file is left under either name.

    A cancel or a qemu-img error says ``state``, what that leaves (``"no file was created and
    X is unchanged"``): a cancel as ``"{op} cancelled: {state}"``, an error after its own
    message, as the same kind of error (the window and the CLI map the kind onto their fix)."""
    from imagegui.core.qemu import qemuimg

    ident = claim_new_file(partial, mode)
    try:
        qemuimg.run(argv, progress=progress, cancel=cancel, qemu_img=qemu_img)
        still_ours(partial, ident)
        link_no_replace(partial, out)
    except CancelledError:
        raise CancelledError(f"{op} cancelled: {state}") from None
    except qemuimg.QemuImgError as exc:
        raise type(exc)(f"{exc} ({state})", **qemuimg.error_kwargs(exc)) from exc
    finally:
        release_new_file(partial, ident)
