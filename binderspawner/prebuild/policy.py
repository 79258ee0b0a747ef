"""Which pushes the hub prebuilds, and which it has seen already (pure).

A repository is prebuilt when the admin names it (``c.Prebuild.specs``: regular expressions on the
canonical launch spec, matched like c.SpecControl's allowed_specs) or, by default, when someone
launched it on this hub in the last ``c.Prebuild.recent_launch_days`` days (the hub's own launch
records: one row per image in launches.sqlite, whose names carry the repository).
"""

import re
import time
from collections import OrderedDict

from binderspawner import messages


def matches_any(spec, patterns):
    return any(re.match(pattern, spec, re.IGNORECASE) for pattern in patterns)


def image_repository(image):
    """'prefix<slug>-<hash8>:<tag>' -> 'prefix<slug>-<hash8>' (the repository's part)."""
    return image.rpartition(":")[0] if ":" in image.rpartition("/")[2] else image


def launched_recently(image, launches, now, days):
    """Was any image of ``image``'s repository launched in the last ``days`` days? ``launches``:
    image -> time of its last launch (imagecache.LaunchLog.all())."""
    if days <= 0:
        return False
    repository, since = image_repository(image), now - days * 86400
    return any(image_repository(other) == repository and at >= since for other, at in launches.items())


def allow_refusal(spec, patterns, recent, days):
    """Why ``spec`` is not prebuilt (None: it is). ``recent``: launched in the last ``days`` days."""
    if patterns and matches_any(spec, patterns):
        return None
    if recent:
        return None
    named = "it matches none of c.Prebuild.specs" if patterns else "c.Prebuild.specs is empty"
    recently = (f"and nobody launched it on this hub in the last {days:g} days "
                "(c.Prebuild.recent_launch_days)") if days > 0 else "and c.Prebuild.recent_launch_days is 0"
    return messages.PREBUILD_NOT_ALLOWED.format(spec=spec, named=named, recently=recently)


class Seen:
    """Keys seen in the last ``ttl`` seconds, at most ``size`` of them (oldest forgotten first):
    delivery ids and (repository, commit) pairs, so repeats build nothing."""

    def __init__(self, ttl=3600.0, size=10000, clock=time.monotonic):
        self.ttl, self.size, self.clock = ttl, size, clock
        self._at = OrderedDict()

    def __contains__(self, key):
        at = self._at.get(key)
        return at is not None and self.clock() - at < self.ttl

    def add(self, key):
        self._at[key] = self.clock()
        self._at.move_to_end(key)
        while len(self._at) > self.size:
            self._at.popitem(last=False)

    def discard(self, key):
        self._at.pop(key, None)
