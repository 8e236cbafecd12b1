"""The space report of a scan, as the window reads it: on a worker, after each scan.

The report (``core.chains.space``) needs every image's allocation map. A rescan after an
operation changes a file or two, so the maps read for the previous scan are kept by path with
the file's stamp (size, modification time in ns, as the scan read them) and only images whose
stamp changed are read again: the job gets the old maps and returns the new set with the report
(never shared between threads).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from imagegui.core.chains.space import SpaceReport, space_job
from imagegui.core.jobs import CancelToken, Job, ProgressFn
from imagegui.core.qemu.qemuimg import read_layer_map
from imagegui.core.read.extents import LayerMap
from imagegui.core.read.model import ImageInfo
from imagegui.gui.snapshot import Snapshot

#: path -> (the file's stamp when read, its map).
MapCache = Mapping[str, tuple[tuple[int, int], LayerMap]]


@dataclass
class SpaceResult:
    report: SpaceReport
    #: The maps read for this report (old ones still valid, and the new), for the next job.
    maps: dict[str, tuple[tuple[int, int], LayerMap]] = field(default_factory=dict)
    #: How many maps were read afresh (the rest came from the previous report).
    read: int = 0


def make_space_job(snapshot: Snapshot, previous: MapCache, qemu_img: str = "") -> Job[SpaceResult]:
    """The report of ``snapshot``, reading only the maps ``previous`` does not hold for the
    same file state."""
    kept: dict[str, tuple[tuple[int, int], LayerMap]] = {}
    fresh = [0]
    # Equal maps as one object: most images of a big tree have one of a few maps (an empty
    # overlay of a given size), and they are all kept until the next scan.
    shared: dict[LayerMap, LayerMap] = {old[1]: old[1] for old in previous.values()}

    def read(info: ImageInfo, cancel: CancelToken) -> LayerMap:
        old = previous.get(info.path)
        if old is not None and old[0] == info.stamp:
            kept[info.path] = old
            return old[1]
        layer = read_layer_map(info, cancel, qemu_img=qemu_img)
        layer = shared.setdefault(layer, layer)
        fresh[0] += 1
        kept[info.path] = (info.stamp, layer)
        return layer

    inner = space_job(snapshot.graph, read)

    def run(progress: ProgressFn, cancel: CancelToken) -> SpaceResult:
        report = inner.run(progress, cancel)
        return SpaceResult(report, kept, fresh[0])

    return Job("Reading where the disk space goes", run)
