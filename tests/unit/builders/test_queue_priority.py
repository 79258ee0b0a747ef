"""Prebuilds in the hub's build queue (issue 18): below waiting launches, capped, joined by
launches, withdrawn only while nobody waits for them. Same stepped builds as test_queue.py."""

import asyncio

from binderspawner.builders.queue import LAUNCH, PREBUILD, BuildQueue
from tests.unit.builders.test_queue import Engine, within


def ensure(engine, queue, image, priority):
    return queue.ensure(image, exists=engine.exists(image), build=engine.build(image), priority=priority)


async def settle():
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_waiting_launch_goes_ahead_of_waiting_prebuilds():
    engine, queue = Engine(), BuildQueue(max_concurrent=1)
    running = ensure(engine, queue, "img:running", LAUNCH)
    await within(engine.started_event("img:running").wait())
    pre1 = ensure(engine, queue, "img:pre1", PREBUILD)
    pre2 = ensure(engine, queue, "img:pre2", PREBUILD)
    await settle()
    user = ensure(engine, queue, "img:user", LAUNCH)
    await settle()
    assert [b.image for b in queue.waiting()] == ["img:user", "img:pre1", "img:pre2"]
    for image in ("img:running", "img:user", "img:pre1", "img:pre2"):
        engine.gate(image).set()
    await within(asyncio.gather(*(b.wait() for b in (running, user, pre1, pre2))))
    assert engine.calls == ["img:running", "img:user", "img:pre1", "img:pre2"]


async def test_prebuilds_take_at_most_their_share_of_the_slots():
    engine, queue = Engine(), BuildQueue(max_concurrent=2, max_concurrent_prebuilds=1)
    pre1 = ensure(engine, queue, "img:pre1", PREBUILD)
    pre2 = ensure(engine, queue, "img:pre2", PREBUILD)
    await within(engine.started_event("img:pre1").wait())
    await settle()
    assert engine.calls == ["img:pre1"]  # a free slot, but the prebuild share is taken
    user = ensure(engine, queue, "img:user", LAUNCH)
    await within(engine.started_event("img:user").wait())  # the launch uses the free slot at once
    for image in ("img:pre1", "img:pre2", "img:user"):
        engine.gate(image).set()
    await within(asyncio.gather(pre1.wait(), pre2.wait(), user.wait()))
    assert engine.calls == ["img:pre1", "img:user", "img:pre2"]
    assert engine.most_running == 2


async def test_a_launch_joins_a_running_prebuild_and_promotes_a_waiting_one():
    engine, queue = Engine(), BuildQueue(max_concurrent=1)
    blocker = ensure(engine, queue, "img:other", LAUNCH)
    await within(engine.started_event("img:other").wait())
    waiting_pre = ensure(engine, queue, "img:a", PREBUILD)
    other_pre = ensure(engine, queue, "img:b", PREBUILD)
    await settle()
    joined = ensure(engine, queue, "img:b", LAUNCH)  # a user launches what the second prebuild builds
    assert joined is other_pre and joined.priority == LAUNCH
    assert [b.image for b in queue.waiting()] == ["img:b", "img:a"]
    assert not queue.withdraw(joined)  # somebody waits for it now
    for image in ("img:other", "img:a", "img:b"):
        engine.gate(image).set()
    await within(asyncio.gather(blocker.wait(), waiting_pre.wait(), joined.wait()))
    assert engine.calls == ["img:other", "img:b", "img:a"]


async def test_a_running_prebuild_is_joined_not_repeated():
    engine, queue = Engine(), BuildQueue(max_concurrent=2)
    pre = ensure(engine, queue, "img:a", PREBUILD)
    await within(engine.started_event("img:a").wait())
    user = ensure(engine, queue, "img:a", LAUNCH)
    assert user is pre
    assert not queue.withdraw(pre)  # running: never withdrawn
    engine.gate("img:a").set()
    assert await within(user.wait()) is True
    assert engine.calls == ["img:a"]


async def test_a_waiting_prebuild_can_be_withdrawn_and_frees_its_place():
    engine, queue = Engine(), BuildQueue(max_concurrent=1)
    blocker = ensure(engine, queue, "img:other", LAUNCH)
    await within(engine.started_event("img:other").wait())
    old = ensure(engine, queue, "img:old", PREBUILD)
    new = ensure(engine, queue, "img:new", PREBUILD)
    await settle()
    assert queue.withdraw(old)
    await settle()
    assert [b.image for b in queue.waiting()] == ["img:new"]
    engine.gate("img:other").set()
    engine.gate("img:new").set()
    await within(asyncio.gather(blocker.wait(), new.wait()))
    assert engine.calls == ["img:other", "img:new"]
    assert old.task.cancelled()
    assert "img:old" not in queue.active
