"""The folders of a scanned directory and how many images each holds: the Folders panel's tree.

The tree is made on a worker from the scan's image paths (every folder that holds an image, and
the folders on the way to it), plus, when ``walk`` is on, the folders the walk of the root finds
with no image in them (a folder just made to move images into is empty). That walk lists
directories only, never follows a symlink and stops after ``limit`` folders, so a huge tree costs
a bounded, short listing; what was left out is said (``FolderTree.truncated``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from imagegui.core.jobs import CancelToken

#: At most this many folders are listed by the walk for empty ones (the images' own folders
#: are always there).
FOLDER_LIMIT = 20_000


@dataclass
class Folder:
    path: str
    #: Images directly in this folder.
    images: int = 0
    #: Images in it and in every folder below it.
    total: int = 0
    #: The folders directly below it, by name.
    children: list[str] = field(default_factory=list)


@dataclass
class FolderTree:
    root: str
    #: Every folder at or below the root, by path; the root is always there.
    folders: dict[str, Folder]
    #: The walk for empty folders stopped at the limit: some empty folders are not listed.
    truncated: bool = False
    #: Folders the walk could not list (path, reason).
    errors: list[tuple[str, str]] = field(default_factory=list)

    def children(self, path: str) -> list[Folder]:
        folder = self.folders.get(path)
        return [self.folders[c] for c in folder.children] if folder is not None else []


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def folder_tree(
    root: str,
    images: Iterable[str],
    walk: bool = True,
    limit: int = FOLDER_LIMIT,
    cancel: CancelToken | None = None,
) -> FolderTree:
    """The folders under ``root`` with their image counts; ``images`` are the scanned images'
    paths (those outside ``root`` are not counted). ``walk`` adds the folders without images."""
    root = os.path.normpath(root)
    folders: dict[str, Folder] = {root: Folder(root)}

    def add(path: str) -> Folder:
        found = folders.get(path)
        if found is not None:
            return found
        made = folders[path] = Folder(path)
        parent = os.path.dirname(path)
        if parent != path and _inside(parent, root):
            add(parent).children.append(path)
        return made

    for image in images:
        directory = os.path.dirname(image)
        if not _inside(directory, root):
            continue
        add(directory).images += 1
    tree = FolderTree(root, folders)
    if walk:
        _walk(tree, add, limit, cancel)
    for folder in folders.values():
        folder.children.sort(key=lambda p: os.path.basename(p).lower())
    # Totals bottom-up: a path's parent is shorter, so longest paths first.
    for path in sorted(folders, key=len, reverse=True):
        folder = folders[path]
        folder.total += folder.images
        parent = os.path.dirname(path)
        if parent != path and parent in folders and _inside(parent, root):
            folders[parent].total += folder.total
    return tree


def _walk(tree: FolderTree, add, limit: int, cancel: CancelToken | None) -> None:
    """Adds the real folders under the root (directories only, symlinks not followed)."""
    stack = [tree.root]
    listed = 0
    while stack:
        if cancel is not None:
            cancel.raise_if_cancelled()
        directory = stack.pop()
        try:
            with os.scandir(directory) as entries:
                subdirs = [e.path for e in entries if e.is_dir(follow_symlinks=False)]
        except OSError as exc:
            tree.errors.append((directory, exc.strerror or str(exc)))
            continue
        for sub in subdirs:
            if listed >= limit:
                tree.truncated = True
                return
            listed += 1
            add(sub)
            stack.append(sub)
