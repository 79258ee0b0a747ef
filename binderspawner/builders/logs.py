"""Full build logs, kept in the hub's memory per image, and who may read them.

The progress page shows every line while a build runs; this keeps them afterwards so the page can
link to the whole log (a failure message only carries its end). Memory is bounded: at most
``max_images`` logs, each cut to its last ``max_bytes``; the least recently written log goes first.
Logs do not survive a hub restart (an image found already built has no log here).

Who may read a log: admins, and users who launched that image. A build log shows the repository's
files and its dependency list; launching proves the user may see the repository (their launch
resolved it with their credentials), so they may see how it was built. Nobody else may, because the
repository may be private to its launchers.
"""

import asyncio
import collections
import itertools

MAX_BYTES = 2 * 1024 * 1024
MAX_IMAGES = 100
MAX_EVENTS = 10_000  # events a build or a launch's progress keeps for late readers
MAX_EVENT_BYTES = 2 * 1024 * 1024


class EventWindow:
    """Events in order, capped like a build log: the last ``max_events`` (and ``max_bytes`` of
    text) are kept; readers address events by their absolute position, so a reader that fell
    behind learns how many it missed instead of reading out of order."""

    def __init__(self, max_events=MAX_EVENTS, max_bytes=MAX_EVENT_BYTES, size=len):
        self._events = collections.deque()
        self._sizes = collections.deque()
        self.start = 0  # absolute position of the oldest kept event
        self.bytes = 0
        self.max_events, self.max_bytes, self._size = max_events, max_bytes, size

    def append(self, event):
        size = self._size(event)
        self._events.append(event)
        self._sizes.append(size)
        self.bytes += size
        while len(self._events) > 1 and (len(self._events) > self.max_events or self.bytes > self.max_bytes):
            self._events.popleft()
            self.bytes -= self._sizes.popleft()
            self.start += 1

    def __len__(self):
        """The absolute position after the newest event (events ever appended)."""
        return self.start + len(self._events)

    def __iter__(self):
        return iter(list(self._events))

    def since(self, position):
        """(missed, events, next position): the events from ``position`` on; ``missed`` counts
        those no longer kept."""
        missed = max(0, self.start - position)
        position = max(position, self.start)
        events = list(itertools.islice(self._events, position - self.start, None))
        return missed, events, len(self)


class BuildLog:
    def __init__(self, max_bytes):
        self.lines = collections.deque()
        self.size = 0
        self.max_bytes = max_bytes
        self.dropped = 0
        self.readers = set()
        self.state = "building"

    def append(self, line):
        self.lines.append(line)
        self.size += len(line.encode("utf-8", "replace")) + 1
        while self.size > self.max_bytes and len(self.lines) > 1:
            self.size -= len(self.lines.popleft().encode("utf-8", "replace")) + 1
            self.dropped += 1

    def text(self):
        head = f"[{self.dropped} earlier lines dropped: the log is capped at {self.max_bytes} bytes]\n"
        return (head if self.dropped else "") + "\n".join(self.lines) + "\n"


class BuildLogStore:
    def __init__(self, max_bytes=MAX_BYTES, max_images=MAX_IMAGES):
        self.max_bytes = max_bytes
        self.max_images = max_images
        self._logs = collections.OrderedDict()
        self._followed = set()

    def _log(self, image):
        log = self._logs.get(image)
        if log is None:
            log = self._logs[image] = BuildLog(self.max_bytes)
        self._logs.move_to_end(image)
        while len(self._logs) > self.max_images:
            self._logs.popitem(last=False)
        return log

    def grant(self, image, username):
        """``username`` launched ``image``: they may read its log."""
        self._log(image).readers.add(username)

    def may_read(self, image, username, admin=False):
        log = self._logs.get(image)
        return log is not None and (admin or username in log.readers)

    def get(self, image):
        return self._logs.get(image)

    def record(self, image, username, build):
        """Grant ``username`` and copy ``build``'s events (a build.queue.Build) into the log, once
        per build however many launches share it. ``username`` None: a prebuild, readable by admins
        (and by whoever launches the image later)."""
        if username is not None:
            self.grant(image, username)
        if id(build) in self._followed:
            return
        self._followed.add(id(build))

        async def copy():
            log = self._log(image)
            fresh = False
            try:
                async for event in build.follow():
                    if not fresh:  # a new build replaces an earlier log; a found image keeps it
                        fresh = True
                        readers = log.readers
                        log = self._logs[image] = BuildLog(self.max_bytes)
                        log.readers = readers
                    log.append(f"[{event.phase}] {event.message}")
                try:
                    built = await build.wait()
                except Exception as e:  # noqa: BLE001 - the build's own error, shown in the log
                    log.append(f"[failed] {e}")
                    log.state = "failed"
                else:
                    if fresh or not log.lines:
                        log.state = "built" if built else "found"
                    if not built and not log.lines:
                        log.append("The image already existed when this hub started; its build "
                                   "log is not kept here.")
            finally:
                self._followed.discard(id(build))

        asyncio.ensure_future(copy())


STORE = BuildLogStore()
