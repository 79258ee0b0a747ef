"""One build per image, however many launches ask for it, and a cap on builds running at once.

Launches of an image that is being built attach to the running build and see its whole log from
the start; launches beyond the concurrency cap wait in line and are told their place.

Prebuilds (builds nobody waits for, started by a push) share the queue at a lower priority: a
waiting launch goes ahead of every waiting prebuild, at most ``max_concurrent_prebuilds`` of the
slots run prebuilds, and a launch of an image a prebuild is building joins it (a waiting one is
promoted to the launch's priority). A waiting prebuild nobody joined may be withdrawn.
"""

import asyncio
import collections
from dataclasses import dataclass
from typing import Optional

from binderspawner.builders.logs import EventWindow

LAUNCH = 0  # a user waits for it
PREBUILD = 1  # nobody waits: runs after every waiting launch


@dataclass(frozen=True)
class BuildEvent:
    phase: str  # waiting, fetching, building, built (BinderHub's phase names)
    message: str
    fraction: Optional[float] = None  # how far the build is, when the builder can tell


class Build:
    """A build in flight: its log so far, and a way to follow it to the end."""

    def __init__(self, image, priority=LAUNCH):
        self.image = image
        self.priority = priority
        self.running_as = None  # the priority it took its slot with, once running
        self.events = EventWindow(size=lambda event: len(event.message) + 16)
        self.task: Optional[asyncio.Task] = None
        self._changed = asyncio.Event()

    def emit(self, phase, message, fraction=None):
        self.events.append(BuildEvent(phase, message, fraction))
        self._changed.set()
        self._changed = asyncio.Event()

    @property
    def done(self):
        return self.task is not None and self.task.done()

    async def follow(self):
        """Yield every event from the first, until the build ends."""
        seen = 0
        while True:
            changed = self._changed
            missed, events, seen = self.events.since(seen)
            if missed:
                yield BuildEvent("building", f"[{missed} earlier lines are not kept: a build keeps its "
                                             f"last {self.events.max_events} lines]")
            for event in events:
                yield event
            if self.done:
                return
            waiter = asyncio.ensure_future(changed.wait())
            await asyncio.wait([waiter, self.task], return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()

    async def wait(self):
        """Wait for the build's outcome; raises what the build raised."""
        return await asyncio.shield(self.task)


class BuildQueue:
    def __init__(self, max_concurrent=2, max_concurrent_prebuilds=None):
        self.max_concurrent = max_concurrent
        self.max_concurrent_prebuilds = max_concurrent_prebuilds  # None: only max_concurrent
        self._running_prebuilds = 0
        self._builds = {}
        self._waiting = collections.deque()
        self._running = 0
        self._slot_freed = asyncio.Event()

    @property
    def active(self):
        return dict(self._builds)

    @property
    def queue_length(self):
        return len(self._waiting)

    def ensure(self, image, exists, build, priority=LAUNCH):
        """Return the Build for ``image``, starting one if none is in flight.

        ``exists()`` is awaited inside the build task (so concurrent callers cannot both decide to
        build); ``build(emit)`` runs only when the image is missing and a slot is free. A launch
        joining a waiting prebuild raises it to the launch's priority.
        """
        current = self._builds.get(image)
        if current is not None and not current.done:
            if priority < current.priority:
                current.priority = priority
                self._wake()  # it may go ahead now
            return current
        entry = Build(image, priority)
        self._builds[image] = entry
        entry.task = asyncio.ensure_future(self._run(entry, exists, build))
        entry.task.add_done_callback(lambda _: self._builds.pop(image, None))
        return entry

    async def _run(self, entry, exists, build):
        if await exists():
            return False
        await self._acquire(entry)
        try:
            await build(entry.emit)
        finally:
            self._release(entry)
        return True

    def waiting(self):
        """The waiting builds in the order they will run: launches first, each class in arrival order."""
        return sorted(self._waiting, key=lambda entry: entry.priority)  # stable: arrival order kept

    def _next(self):
        """The waiting build that may take the next free slot, or None."""
        for entry in self.waiting():
            if entry.priority == PREBUILD and self.max_concurrent_prebuilds is not None \
                    and self._running_prebuilds >= self.max_concurrent_prebuilds:
                return None
            return entry
        return None

    def withdraw(self, entry):
        """Drop a waiting prebuild nobody joined (e.g. superseded by a newer push); True if it was
        dropped. Running builds and builds a launch joined are never withdrawn."""
        if entry.priority != PREBUILD or entry not in self._waiting or entry.task is None:
            return False
        entry.task.cancel()
        return True

    async def _acquire(self, entry):
        self._waiting.append(entry)
        reported = None
        try:
            while self._running >= self.max_concurrent or self._next() is not entry:
                position = self.waiting().index(entry) + 1
                if position != reported:
                    reported = position
                    entry.emit("waiting", f"Waiting for a build slot: {self._running} build(s) "
                                          f"running, this one is number {position} in line.")
                await self._slot_freed.wait()
        finally:
            self._waiting.remove(entry)
        self._running += 1
        entry.running_as = entry.priority
        if entry.running_as == PREBUILD:
            self._running_prebuilds += 1
        self._wake()  # the next in line may fit too

    def _release(self, entry):
        self._running -= 1
        if entry.running_as == PREBUILD:
            self._running_prebuilds -= 1
        self._wake()

    def _wake(self):
        self._slot_freed.set()
        self._slot_freed = asyncio.Event()


_hub_queue = None


def hub_queue(max_concurrent):
    """The hub-wide queue: one per hub process, shared by every spawner and the build API."""
    global _hub_queue
    if _hub_queue is None:
        _hub_queue = BuildQueue(max_concurrent)
    _hub_queue.max_concurrent = max_concurrent
    return _hub_queue


def hub_queue_length():
    """Builds waiting in this process's queue (0 before any launch); read by the metrics gauge."""
    return _hub_queue.queue_length if _hub_queue is not None else 0
