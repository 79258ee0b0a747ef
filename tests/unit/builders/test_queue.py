"""One build per image and a cap on concurrent builds: binderspawner/builders/queue.py.

The builds here are small coroutines that the tests step through with asyncio events, so every
interleaving the tests talk about really happens.
"""

import asyncio
import re

import pytest

from binderspawner.builders.queue import BuildQueue
from binderspawner.errors import BuildFailed

TIMEOUT = 5


def within(awaitable, timeout=TIMEOUT):
    return asyncio.wait_for(awaitable, timeout)


class Engine:
    """Stands in for the Docker engine: which images exist, and builds the tests can step through."""

    def __init__(self):
        self.images = set()
        self.calls = []  # images whose build started, in order
        self.running = 0
        self.most_running = 0
        self.gates = {}  # image -> Event the build waits on before finishing
        self.started = {}  # image -> Event set when its build has started
        self.fail = set()

    def gate(self, image):
        return self.gates.setdefault(image, asyncio.Event())

    def started_event(self, image):
        return self.started.setdefault(image, asyncio.Event())

    def exists(self, image):
        async def exists():
            await asyncio.sleep(0)
            return image in self.images
        return exists

    def build(self, image, steps=("step 1", "step 2")):
        async def build(emit):
            self.calls.append(image)
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            try:
                emit("fetching", f"fetching {image}")
                self.started_event(image).set()
                for step in steps:
                    await asyncio.sleep(0)
                    emit("building", f"{image}: {step}")
                await self.gate(image).wait()
                if image in self.fail:
                    emit("failed", f"{image}: broke")
                    raise BuildFailed(f"Building {image} failed")
                self.images.add(image)
                emit("built", f"built {image}")
            finally:
                self.running -= 1
        return build

    def ensure(self, queue, image, **kwargs):
        return queue.ensure(image, exists=self.exists(image), build=self.build(image, **kwargs))


async def collect(build):
    return [(e.phase, e.message) for e in [event async for event in build.follow()]]


@pytest.fixture
def engine():
    return Engine()


async def test_concurrent_launches_of_one_image_share_one_build(engine):
    queue = BuildQueue(max_concurrent=2)
    builds = [engine.ensure(queue, "img:1") for _ in range(5)]
    assert all(b is builds[0] for b in builds)
    followers = [asyncio.ensure_future(collect(b)) for b in builds]
    await within(engine.started_event("img:1").wait())
    engine.gate("img:1").set()
    logs = await within(asyncio.gather(*followers))
    results = await within(asyncio.gather(*(b.wait() for b in builds)))
    assert engine.calls == ["img:1"]
    assert results == [True] * 5
    expected = [("fetching", "fetching img:1"), ("building", "img:1: step 1"), ("building", "img:1: step 2"),
                ("built", "built img:1")]
    assert all(log == expected for log in logs)


async def test_late_follower_sees_the_log_from_the_start(engine):
    queue = BuildQueue()
    first = engine.ensure(queue, "img:1", steps=[f"step {i}" for i in range(5)])
    early = asyncio.ensure_future(collect(first))
    await within(engine.started_event("img:1").wait())
    for _ in range(10):  # let the build emit its steps; it then waits on its gate
        await asyncio.sleep(0)
    assert len(first.events) == 6
    late_build = engine.ensure(queue, "img:1")
    assert late_build is first
    late = asyncio.ensure_future(collect(late_build))
    await asyncio.sleep(0)
    engine.gate("img:1").set()
    early_log, late_log = await within(asyncio.gather(early, late))
    assert late_log == early_log
    assert late_log[0] == ("fetching", "fetching img:1")
    assert late_log[-1] == ("built", "built img:1")
    assert len(late_log) == 7
    assert engine.calls == ["img:1"]


async def test_follower_of_a_finished_build_gets_the_whole_log(engine):
    queue = BuildQueue()
    build = engine.ensure(queue, "img:1")
    engine.gate("img:1").set()
    assert await within(build.wait()) is True
    log = await within(collect(build))
    assert log[0][0] == "fetching" and log[-1] == ("built", "built img:1")


async def test_launch_after_the_build_finds_the_image(engine):
    queue = BuildQueue()
    engine.gate("img:1").set()
    assert await within(engine.ensure(queue, "img:1").wait()) is True
    again = engine.ensure(queue, "img:1")
    assert await within(again.wait()) is False
    assert engine.calls == ["img:1"]


async def test_existing_image_is_never_built(engine):
    queue = BuildQueue()
    engine.images.add("img:1")
    builds = [engine.ensure(queue, "img:1") for _ in range(3)]
    assert [await within(b.wait()) for b in builds] == [False] * 3
    assert [await within(collect(b)) for b in builds] == [[]] * 3
    assert engine.calls == []
    assert queue.active == {}


async def test_one_at_a_time_and_waiting_builds_are_told_their_place(engine):
    queue = BuildQueue(max_concurrent=1)
    a, b, c = (engine.ensure(queue, image) for image in ("img:a", "img:b", "img:c"))
    logs = [asyncio.ensure_future(collect(x)) for x in (a, b, c)]
    await within(engine.started_event("img:a").wait())
    for _ in range(5):
        await asyncio.sleep(0)
    assert engine.calls == ["img:a"]
    assert queue.queue_length == 2
    assert set(queue.active) == {"img:a", "img:b", "img:c"}

    engine.gate("img:a").set()
    await within(engine.started_event("img:b").wait())
    for _ in range(5):
        await asyncio.sleep(0)
    assert engine.calls == ["img:a", "img:b"]
    assert queue.queue_length == 1

    engine.gate("img:b").set()
    engine.gate("img:c").set()
    a_log, b_log, c_log = await within(asyncio.gather(*logs))
    assert [await within(x.wait()) for x in (a, b, c)] == [True, True, True]
    assert engine.calls == ["img:a", "img:b", "img:c"]
    assert engine.most_running == 1

    assert not [e for e in a_log if e[0] == "waiting"]
    b_waiting = [m for phase, m in b_log if phase == "waiting"]
    c_waiting = [m for phase, m in c_log if phase == "waiting"]
    assert len(b_waiting) == 1 and re.search(r"number 1 in line", b_waiting[0])
    assert "1 build(s) running" in b_waiting[0]
    assert len(c_waiting) == 2
    assert "number 2 in line" in c_waiting[0] and "number 1 in line" in c_waiting[1]
    # the waiting messages come before the build's own log
    assert c_log.index(("waiting", c_waiting[-1])) < c_log.index(("fetching", "fetching img:c"))
    assert queue.queue_length == 0 and queue.active == {}


async def test_cap_of_two_runs_two_at_once(engine):
    queue = BuildQueue(max_concurrent=2)
    builds = [engine.ensure(queue, f"img:{i}") for i in range(3)]
    await within(engine.started_event("img:0").wait())
    await within(engine.started_event("img:1").wait())
    for _ in range(5):
        await asyncio.sleep(0)
    assert engine.calls == ["img:0", "img:1"]
    assert engine.running == 2
    assert queue.queue_length == 1
    engine.gate("img:1").set()
    await within(engine.started_event("img:2").wait())
    assert engine.running == 2  # img:2 took img:1's slot while img:0 still runs
    engine.gate("img:0").set()
    engine.gate("img:2").set()
    assert await within(asyncio.gather(*(b.wait() for b in builds))) == [True] * 3
    assert engine.most_running == 2


async def test_failed_build_reaches_every_waiter_and_the_next_launch_builds_again(engine):
    queue = BuildQueue()
    engine.fail.add("img:1")
    builds = [engine.ensure(queue, "img:1") for _ in range(3)]
    followers = [asyncio.ensure_future(collect(b)) for b in builds]
    engine.gate("img:1").set()
    for build in builds:
        with pytest.raises(BuildFailed, match="Building img:1 failed"):
            await within(build.wait())
    logs = await within(asyncio.gather(*followers))  # following ends, it does not hang
    assert all(log[-1] == ("failed", "img:1: broke") for log in logs)
    assert engine.calls == ["img:1"]

    engine.fail.clear()
    again = engine.ensure(queue, "img:1")
    assert again is not builds[0]
    assert await within(again.wait()) is True
    assert engine.calls == ["img:1", "img:1"]
    assert (await within(collect(again)))[-1] == ("built", "built img:1")


async def test_failed_build_frees_its_slot(engine):
    queue = BuildQueue(max_concurrent=1)
    engine.fail.add("img:a")
    a, b = engine.ensure(queue, "img:a"), engine.ensure(queue, "img:b")
    engine.gate("img:a").set()
    engine.gate("img:b").set()
    with pytest.raises(BuildFailed):
        await within(a.wait())
    assert await within(b.wait()) is True
    assert engine.calls == ["img:a", "img:b"]
    assert engine.running == 0


async def test_failing_existence_check_reaches_waiters_and_is_retried(engine):
    queue = BuildQueue()
    attempts = []

    async def broken_exists():
        attempts.append(1)
        raise RuntimeError("engine unreachable")

    first = queue.ensure("img:1", exists=broken_exists, build=engine.build("img:1"))
    second = queue.ensure("img:1", exists=broken_exists, build=engine.build("img:1"))
    assert first is second
    with pytest.raises(RuntimeError, match="engine unreachable"):
        await within(first.wait())
    assert attempts == [1]
    engine.gate("img:1").set()
    assert await within(engine.ensure(queue, "img:1").wait()) is True
    assert engine.calls == ["img:1"]


async def test_waiting_launch_that_joins_a_queued_build(engine):
    queue = BuildQueue(max_concurrent=1)
    engine.ensure(queue, "img:a")
    queued = engine.ensure(queue, "img:b")
    await within(engine.started_event("img:a").wait())
    for _ in range(5):
        await asyncio.sleep(0)
    joined = engine.ensure(queue, "img:b")
    assert joined is queued
    log = asyncio.ensure_future(collect(joined))
    engine.gate("img:a").set()
    engine.gate("img:b").set()
    assert await within(joined.wait()) is True
    events = await within(log)
    assert events[0][0] == "waiting"  # the joiner also sees the place in line it missed
    assert engine.calls == ["img:a", "img:b"]
