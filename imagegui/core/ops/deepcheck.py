"""``check --deep``: ``qemu-img check`` on every scanned image, several at a time.

Every check is read-only and shares the image (``-U``), so images a running VM holds are checked
too - their metadata may be mid-update, so what is found there may be transient, and the report
says which images those were. Each check runs in its own ``qemu-img`` process; threads only wait
for them, so ``jobs`` processes run at once. A cancel (Ctrl-C) stops every running ``qemu-img``;
the checks that finished are kept all the same.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from imagegui.core.chains import checkstore
from imagegui.core.chains.checkstore import CheckRecord, CheckStore, Fingerprint
from imagegui.core.jobs import CancelledError, CancelToken
from imagegui.core.ops.check import check_argv, check_record, failure_text
from imagegui.core.qemu import qemuimg
from imagegui.core.read.model import ImageInfo

#: Formats ``qemu-img check`` can check (of those the scan reads); the rest are not run at all.
CHECKABLE = frozenset({"qcow2", "qed", "vmdk", "vhdx"})

#: Receives (checks done, checks in all).
CountFn = Callable[[int, int], None]


@dataclass
class DeepResult:
    """What a deep check did; ``store`` holds every finding now known (old ones included)."""

    store: CheckStore
    records: list[CheckRecord] = field(default_factory=list)
    #: Images in a format qemu-img cannot check (raw, vpc, qcow): not run.
    skipped: list[str] = field(default_factory=list)
    #: Images a running VM (or another program) held while checked: findings may be transient.
    shared: list[str] = field(default_factory=list)
    #: Images whose result was not kept: (path, why) - they changed during the check, vanished.
    unrecorded: list[tuple[str, str]] = field(default_factory=list)
    cancelled: bool = False

    @property
    def checked(self) -> int:
        return len(self.records)


def default_jobs() -> int:
    return os.cpu_count() or 1


def check_one(info: ImageInfo, cancel: CancelToken, qemu_img: str = "") -> CheckRecord | str:
    """One read-only check; the record to keep, or why there is none. ``qemu_img``: the
    program to run ("" for the one on PATH)."""
    before = Fingerprint.of(info.path)
    if before is None:
        return "it disappeared before it was checked"
    res = qemuimg.run(
        check_argv(info.path, info.format, force_share=True),
        cancel=cancel,
        ok_codes=tuple(qemuimg.CHECK_EXIT),
        qemu_img=qemu_img,
    )
    after = Fingerprint.of(info.path)
    rec = check_record(
        info.path, info.format, res.returncode, res.stdout, res.stderr, before, after
    )
    if rec is not None:
        return rec
    if after is None:
        return "it disappeared while it was checked"
    if before != after:
        return "it changed while it was checked (in use?); check it again"
    return failure_text(res.stderr)


def check_all(
    images: Iterable[ImageInfo],
    jobs: int | None = None,
    count: CountFn | None = None,
    cancel: CancelToken | None = None,
    store_path: str | None = None,
    qemu_img: str = "",
) -> DeepResult:
    """Checks ``images`` ``jobs`` at a time and records the results in the store.

    On cancel (``cancel`` fired, or KeyboardInterrupt in the calling thread) the running checks
    are stopped, the finished ones recorded, and ``CancelledError`` / KeyboardInterrupt raised
    with ``partial`` set to the result so far.
    """
    cancel = cancel or CancelToken()
    jobs = max(1, jobs or default_jobs())
    todo, skipped, shared = [], [], []
    for info in images:
        if info.format not in CHECKABLE:
            skipped.append(info.path)
            continue
        todo.append(info)
        if info.in_use:
            shared.append(info.path)
    records: list[CheckRecord] = []
    unrecorded: list[tuple[str, str]] = []
    total, done = len(todo), 0
    if count is not None:
        count(0, total)

    def task(info: ImageInfo) -> CheckRecord | str:
        cancel.raise_if_cancelled()
        return check_one(info, cancel, qemu_img)

    interrupted: BaseException | None = None
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="qemu-img-check")
    try:
        pending: dict[Future, ImageInfo] = {}
        queue = iter(todo)
        for info in queue:  # keep at most ``jobs`` waiting: a cancel then stops quickly
            pending[pool.submit(task, info)] = info
            if len(pending) >= jobs:
                break
        while pending:
            finished, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in finished:
                info = pending.pop(fut)
                try:
                    outcome: CheckRecord | str = fut.result()
                except CancelledError:
                    continue
                except qemuimg.QemuNotFoundError:
                    raise
                except qemuimg.QemuImgError as exc:  # killed, crashed: this image only
                    outcome = str(exc)
                if isinstance(outcome, CheckRecord):
                    records.append(outcome)
                else:
                    unrecorded.append((info.path, outcome))
                done += 1
                if count is not None:
                    count(done, total)
                if not cancel.cancelled:
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending[pool.submit(task, nxt)] = nxt
    except BaseException as exc:  # KeyboardInterrupt, or qemu-img missing
        interrupted = exc
        cancel.cancel()  # terminates every running qemu-img
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    store = checkstore.record(records, store_path)
    result = DeepResult(store, records, skipped, shared, unrecorded, cancel.cancelled)
    if interrupted is not None:
        interrupted.partial = result  # type: ignore[attr-defined]
        raise interrupted
    if cancel.cancelled:
        stopped = CancelledError(
            f"cancelled after {done} of {total} checks; the finished ones are kept"
        )
        stopped.partial = result  # type: ignore[attr-defined]
        raise stopped
    return result
