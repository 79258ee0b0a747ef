"""The progress log: one launch per subscription, capped, followed asynchronously."""

import asyncio

from binderspawner.progress import ProgressLog


def test_a_subscription_sees_only_its_launch_from_the_start():
    log = ProgressLog()
    log.restart()
    log.report("old launch")
    nxt = log.subscribe(log.launch + 1)
    assert nxt.take() == [], "the next launch has not begun"
    log.restart()
    log.report("resolving", 5)
    log.report("building")
    assert nxt.take() == [{"message": "resolving", "progress": 5}, {"message": "building"}]
    log.report("built", 90)
    assert nxt.take() == [{"message": "built", "progress": 90}]
    assert nxt.take() == []
    log.restart()
    log.report("a later launch")
    assert nxt.over and nxt.take() == []


def test_the_log_keeps_the_last_events_only():
    log = ProgressLog(cap=3)
    log.restart()
    early = log.subscribe()
    for i in range(5):
        log.report(f"line {i}")
    assert [e["message"] for e in log.events] == ["line 2", "line 3", "line 4"]
    assert [e["message"] for e in early.take()] == ["line 2", "line 3", "line 4"]
    log.report("line 5")
    assert [e["message"] for e in early.take()] == ["line 5"]
    late = log.subscribe()
    assert [e["message"] for e in late.take()] == ["line 3", "line 4", "line 5"]


async def test_async_followers_get_events_as_they_come_and_stop_at_the_next_launch():
    log = ProgressLog()
    log.restart()
    log.report("first")
    received = []

    async def follow():
        async for event in log.subscribe():
            received.append(event["message"])

    task = asyncio.ensure_future(follow())
    await asyncio.sleep(0)
    log.report("second")
    await asyncio.sleep(0)
    assert received == ["first", "second"]
    log.restart()
    await asyncio.wait_for(task, 1)
    assert received == ["first", "second"]


def test_a_latest_subscription_moves_on_to_the_launch_that_begins():
    log = ProgressLog()
    log.restart()
    log.report("the previous launch")
    attached = log.subscribe(latest=True)
    assert [e["message"] for e in attached.take()] == ["the previous launch"]
    log.restart()
    log.report("this launch")
    assert [e["message"] for e in attached.take()] == ["this launch"] and not attached.over


async def test_the_spawners_progress_follows_the_launch_begun_after_it_subscribed(tmp_path, monkeypatch):
    from binderspawner.spawner import BinderSpawner

    monkeypatch.chdir(tmp_path)
    spawner = BinderSpawner()
    received = []

    async def page():  # JupyterHub's progress page, opened before start() began
        async for event in spawner.progress():
            received.append(event["message"])

    task = asyncio.ensure_future(page())
    await asyncio.sleep(0)
    spawner.progress_log.restart()  # what start() does first
    spawner.progress_log.report("Resolving the default branch", 5)
    for _ in range(3):
        await asyncio.sleep(0)
    task.cancel()
    assert received == ["Resolving the default branch"]
