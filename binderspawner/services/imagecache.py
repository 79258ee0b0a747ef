"""The image cache: when each built image was last launched, and which images to remove to keep
the cache within its disk budget.

Docker labels cannot change after a build, so last-launch times live in a small SQLite file in the
hub's lifecycle directory: the hub writes one row per launch, the cleanup service reads them.
"""

import os
import sqlite3
import time
from dataclasses import dataclass

from binderspawner.launch.images import ENVIRONMENT_TAG_PREFIX

LAUNCH_DB = "launches.sqlite"


class LaunchLog:
    """image -> time of its last launch (seconds since the epoch)."""

    def __init__(self, directory):
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, LAUNCH_DB)
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS launches (image TEXT PRIMARY KEY, at REAL NOT NULL)")

    def _connect(self):
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def record(self, image, at=None):
        with self._connect() as db:
            db.execute("INSERT INTO launches (image, at) VALUES (?, ?) "
                       "ON CONFLICT(image) DO UPDATE SET at = excluded.at", (image, at or time.time()))

    def all(self):
        with self._connect() as db:
            return dict(db.execute("SELECT image, at FROM launches"))

    def forget(self, images):
        with self._connect() as db:
            db.executemany("DELETE FROM launches WHERE image = ?", [(i,) for i in images])


@dataclass(frozen=True)
class CachedImage:
    id: str
    tags: tuple
    unique_bytes: int  # what removing it frees: Docker's Size - SharedSize
    created: float  # seconds since the epoch
    in_use: bool  # a container (running or not) uses it


def last_used(image, launches):
    """When an image was last launched; its build time when never launched (pure). An environment
    image ('<name>:env-<key>', builders/contentlayer.py) counts as launched with every launch of
    its repository's images, so it is not removed before the commits built on it."""
    times = [image.created, *(launches.get(t, 0) for t in image.tags)]
    for tag in image.tags:
        name, _, version = tag.rpartition(":")
        if version.startswith(ENVIRONMENT_TAG_PREFIX):
            times += [at for ref, at in launches.items() if ref.rpartition(":")[0] == name]
    return max(times)


def plan_removal(images, launches, budget_bytes, now, grace):
    """Images to remove, least recently launched first, until the rest fit ``budget_bytes`` (pure).

    Never removed: images a container uses, and images built or launched less than ``grace``
    seconds ago (a launch that just found or built its image has not created its container yet).
    """
    total = sum(i.unique_bytes for i in images)
    removable = sorted((i for i in images if not i.in_use and now - last_used(i, launches) >= grace),
                       key=lambda i: last_used(i, launches))
    plan = []
    for image in removable:
        if total <= budget_bytes:
            break
        plan.append(image)
        total -= image.unique_bytes
    return plan


def parse_size(value):
    """'20G', '500M', '1.5T', 1024 -> bytes (pure); for the budget setting."""
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip().upper().removesuffix("B").removesuffix("I")
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(float(text))
