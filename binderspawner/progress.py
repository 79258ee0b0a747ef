"""A spawner's launch progress: a capped event log that the progress page and the build API follow.

The spawner reports into its ProgressLog; JupyterHub's progress page (Spawner.progress) and the
build API's event stream subscribe to it. Each start() opens a new launch in the log, so a
subscriber follows exactly one launch, from its first kept event, and stops when a later one begins.
The full build log is kept elsewhere (builders/logs.py); this log keeps the last ``cap`` events.
"""

import asyncio

DEFAULT_CAP = 2000


class ProgressLog:
    def __init__(self, cap=DEFAULT_CAP):
        self.cap = cap
        self.launch = 0  # how many launches this log has seen; 0: none yet
        self.events = []  # the kept events of the current launch
        self.first = 0  # index, in the current launch, of events[0] (earlier ones were dropped)
        self._changed = asyncio.Event()

    def restart(self):
        """A new launch begins: forget the previous one's events."""
        self.launch += 1
        self.events, self.first = [], 0
        self._wake()

    def report(self, message, progress=None):
        """One event for the progress page: ``progress`` is a percentage, or None to keep it."""
        event = {"message": message}
        if progress is not None:
            event["progress"] = progress
        self.events.append(event)
        if len(self.events) > self.cap:
            drop = len(self.events) - self.cap
            del self.events[:drop]
            self.first += drop
        self._wake()

    def _wake(self):
        self._changed.set()
        self._changed = asyncio.Event()

    def subscribe(self, launch=None, latest=False):
        """Follow launch number ``launch`` (default: the current one; ``log.launch + 1``: the next
        one to start). ``latest``: move on to each launch that begins later (for a reader that
        attaches to a spawner whose start() may not have begun yet)."""
        return Subscription(self, self.launch if launch is None else launch, latest)


class Subscription:
    """One reader of one launch: ``take()`` for what is new now, ``async for`` to wait for it."""

    def __init__(self, log, launch, latest=False):
        self.log, self.launch, self.seen, self.latest = log, launch, 0, latest

    @property
    def over(self):
        """A later launch has begun: this one's events are gone."""
        return self.log.launch > self.launch and not self.latest

    def take(self):
        """The events reported since the last take (none before this launch begins)."""
        log = self.log
        if self.latest and log.launch > self.launch:
            self.launch, self.seen = log.launch, 0
        if log.launch != self.launch:
            return []
        start = max(self.seen - log.first, 0)
        batch = log.events[start:]
        self.seen = log.first + len(log.events)
        return batch

    def __aiter__(self):
        return self._follow()

    async def _follow(self):
        while not self.over:
            changed = self.log._changed
            for event in self.take():
                yield event
            await changed.wait()


def spawn_failure(spawner):
    """Why the spawner's last spawn failed (the exception), or None.

    JupyterHub 6.1 keeps a failed spawn's exception only in the spawner's private ``_spawn_future``
    (its own progress API reads it there too) and has no public accessor, so this is the one place
    binderspawner reads it. Used by the build API to report a failure that happened after start()
    returned (e.g. the server never answered) on a spawn it did not start itself.
    """
    future = getattr(spawner, "_spawn_future", None)
    if future is not None and future.done() and not future.cancelled():
        return future.exception()
    return None
