"""Lifecycle end to end: real JupyterHub + configurable-http-proxy, the real jupyterhub-idle-culler
and binderspawner.services.cleanup as hub-managed services, the Docker engine, repo2docker, and a git server
on 127.0.0.1. Each test runs its own hub (own network, container prefix and lifecycle directory), so
nothing here touches another hub's containers or images."""

import concurrent.futures
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid

import docker
import pytest
import requests

from binderspawner.services.cleanup import CACHE_SUMMARY, LABEL_HUB, default_hub_id, our_builds
from binderspawner.services.imagecache import LaunchLog, parse_size
from tests.support import EXAMPLES
from tests.support.hub import Hub

LIFECYCLE = """
c.JupyterHub.load_roles[0]["scopes"].append("read:metrics")
c.HubCleanup.lifecycle_dir = settings["dir"] + "/lifecycle"
from binderspawner.services import cleanup
from binderspawner.services import culling
"""


def wait_for(condition, timeout, what, interval=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def _running(container):
    """False once the container has exited, or is gone (servers' containers are auto-removed)."""
    try:
        container.reload()
    except docker.errors.NotFound:
        return False
    return container.status == "running"


def ready(events):
    assert events and events[-1].get("ready"), [e.get("message") for e in events][-10:]
    return events


def image_of(events):
    for e in events:
        found = re.search(r"image (\S+:[0-9a-f]{40})", e.get("message", ""))
        if found:
            return found.group(1)
    raise AssertionError("no image in the progress events")


def containers_of(hub, user):
    return [c for c in hub.containers() if f"JUPYTERHUB_USER={user}" in c.attrs["Config"]["Env"]]


def servers(hub, user):
    return hub.api("GET", f"/users/{user}").json().get("servers", {})


def metric(hub, name, **labels):
    text = requests.get(f"http://127.0.0.1:{hub.port}/hub/metrics",
                        headers={"Authorization": f"token {hub.token}"}, timeout=30).text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        if series == (f"{name}{{{want}}}" if labels else name):
            return float(value)
    return 0.0


@pytest.fixture
def make_hub(docker_client, git_server, tmp_path_factory):
    hubs = []

    def make(extra):
        hub = Hub(str(tmp_path_factory.mktemp("lchub")), extra_config=LIFECYCLE + extra,
                  run_id="lc" + uuid.uuid4().hex[:8])
        hubs.append(hub)
        return hub.start()

    yield make
    for hub in hubs:
        hub.stop(signal.SIGKILL)
        for pid in our_builds(os.path.join(hub.dir, "lifecycle")):
            os.killpg(pid, signal.SIGKILL)
        hub.cleanup()


def test_idle_culled_active_kept_until_max_age(make_hub, git_server):
    hub = make_hub("""
c.IdleCuller.timeout = 20
c.IdleCuller.interval = 3
c.IdleCuller.max_age = 90
c.JupyterHub.last_activity_interval = 3
culling.configure(c)
cleanup.configure(c)
""")
    repo = {"repo": git_server.url("requirements")}
    # JupyterHub dates a server's start (the culler's age) from the spawn request, so a build would
    # count towards max_age: build the image first, so that the two launches below take seconds.
    ready(hub.launch("warm", repo)[1])
    hub.stop_server("warm")
    requested = time.monotonic()  # neither server below is older than this
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for r, events in pool.map(lambda u: hub.launch(u, repo), ["idle", "busy"]):
            ready(events)
    cmd = containers_of(hub, "busy")[0].attrs["Config"]["Cmd"]
    assert "--ServerApp.shutdown_no_activity_timeout=900" in cmd
    assert "--MappingKernelManager.cull_idle_timeout=600" in cmd

    def busy_and_idle_gone():
        assert hub.server_get("busy", "api/contents").status_code == 200  # activity via the proxy
        return not servers(hub, "idle")

    wait_for(busy_and_idle_gone, 120, "the idle server to be culled", interval=2)
    assert containers_of(hub, "idle") == [], "culled server's container left behind"
    # the active one outlives the idle timeout; its age stays below max_age until then (counted from
    # before its spawn request, not from when it was ready) ...
    while time.monotonic() - requested < 35:
        assert hub.server_get("busy", "api/contents").status_code == 200
        assert servers(hub, "busy"), "an active server was culled before its max age"
        time.sleep(2)

    # ... and is culled at its max age even though it stays active
    def busy_gone():
        hub.server_get("busy", "api/contents")
        return not servers(hub, "busy")

    wait_for(busy_gone, 150, "the active server to be culled at max age", interval=2)
    wait_for(lambda: containers_of(hub, "busy") == [], 30, "busy's container to go")
    log = hub.log()
    assert re.search(r"Culling server idle \(inactive for", log)
    assert re.search(r"Culling server busy \(age: ", log)
    assert metric(hub, "binderspawner_server_stops_total", reason="idle") >= 1
    assert metric(hub, "binderspawner_server_stops_total", reason="max_age") >= 1


SLOW_DOCKERFILE = """FROM binderspawner-base:bookworm
RUN echo building && sleep 300
"""


def test_sigkill_restart_keeps_servers_and_fails_inflight_build(make_hub, git_server, docker_client):
    hub = make_hub("""
c.BinderSpawner.shutdown_no_activity_timeout = 5
c.HubCleanup.interval = 5
culling.configure(c)
cleanup.configure(c)
""")
    hub_id = default_hub_id(os.path.join(hub.dir, "lifecycle"))
    lifecycle_dir = os.path.join(hub.dir, "lifecycle")
    repo = {"repo": git_server.url("requirements")}
    users = ["keep0", "keep1", "keep2", "lonely"]
    with concurrent.futures.ThreadPoolExecutor(len(users)) as pool:
        for r, events in pool.map(lambda u: hub.launch(u, repo), users):
            ready(events)
    for user in users[:3]:  # a kernel keeps a server from shutting itself down
        r = requests.post(f"http://127.0.0.1:{hub.port}/user/{user}/api/kernels", json={},
                          headers={"Authorization": f"token {hub.token}"}, timeout=60)
        assert r.status_code == 201, r.text
    git_server.add_repo(f"slow-{hub.run_id}", files={"Dockerfile": SLOW_DOCKERFILE})
    assert hub.spawn("builder", {"repo": git_server.url(f"slow-{hub.run_id}")}).status_code == 202
    wait_for(lambda: our_builds(lifecycle_dir), 60, "the build to start")
    ghost = docker_client.containers.create(  # a leftover whose server the hub no longer has
        "binderspawner-base:bookworm", ["true"], name=f"{hub.prefix}-ghost",
        labels={LABEL_HUB: hub_id}, environment={"JUPYTERHUB_USER": "ghost"})

    hub.stop(signal.SIGKILL)  # hub, proxy and services die; repo2docker runs in its own session
    assert our_builds(lifecycle_dir), "the build should outlive the hub process"
    # with the hub down, the server without a kernel ends itself (jupyter_server looks once a minute,
    # so on a slow machine it may have ended, and the hub removed it, before the kill)
    wait_for(lambda: not any(_running(c) for c in containers_of(hub, "lonely")), 150, "lonely to exit by itself",
             interval=2)

    hub.start()
    for user in users[:3]:
        r = wait_for(lambda: hub.server_get(user, "api/status").status_code == 200, 60,
                     f"{user} through the restarted proxy")
        assert r
    events = hub.progress("builder")
    assert events and events[-1].get("failed"), events
    assert "interrupted because the hub restarted" in events[-1]["message"]
    wait_for(lambda: not our_builds(lifecycle_dir), 60, "the orphaned build to be killed")
    assert not servers(hub, "builder") and not servers(hub, "lonely")
    wait_for(lambda: {c.name for c in hub.containers()} == {c.name for u in users[:3]
                                                            for c in containers_of(hub, u)},
             60, "orphaned containers (lonely, ghost) to be removed")
    with pytest.raises(docker.errors.NotFound):
        ghost.reload()
    scratch = os.path.join(hub.dir, "lifecycle", "build-tmp")
    assert not os.path.isdir(scratch) or os.listdir(scratch) == []


def test_churn_and_metrics(make_hub, git_server):
    hub = make_hub("""
c.HubCleanup.interval = 5
c.HubCleanup.image_cache_budget = "2G"
culling.configure(c)
cleanup.configure(c)
""")
    repo = {"repo": git_server.url("requirements")}
    r, first = hub.launch("churn0", repo)
    ready(first)
    hub.stop_server("churn0")

    # counters move during a launch of a cached image ...
    cached_before = metric(hub, "binderspawner_launches_total", image="cached", status="success")
    ready(hub.launch("metrics", repo)[1])
    assert metric(hub, "binderspawner_launches_total", image="cached", status="success") == cached_before + 1
    assert metric(hub, "binderspawner_launch_duration_seconds_count", image="cached") >= 1
    hub.stop_server("metrics")
    # ... and of one that has to be built: the same environment with one more file, so every
    # dependency layer comes from the build cache (no network). A Dockerfile FROM the image above
    # would be refused: a build may not use another launch's image (builders/imagefence.py).
    name = f"onlayer-{hub.run_id}"
    git_server.add_repo(name, os.path.join(EXAMPLES, "requirements"), files={"marker.txt": hub.run_id})
    before = {k: _metric_key(hub, k) for k in [
        ("binderspawner_builds_started_total",),
        ("binderspawner_build_duration_seconds_count", "success"),
        ("binderspawner_launches_total", "built")]}
    ready(hub.launch("metrics", {"repo": git_server.url(name)})[1])
    assert metric(hub, "binderspawner_builds_started_total") == before[(
        "binderspawner_builds_started_total",)] + 1
    assert metric(hub, "binderspawner_build_duration_seconds_count", status="success") == (
        before[("binderspawner_build_duration_seconds_count", "success")] + 1)
    assert metric(hub, "binderspawner_launches_total", image="built", status="success") == (
        before[("binderspawner_launches_total", "built")] + 1)
    assert metric(hub, "binderspawner_builds_failed_total") == 0
    assert metric(hub, "binderspawner_build_queue_length") == 0
    hub.stop_server("metrics")

    def cycles(user):
        for _ in range(10):
            ready(hub.launch(user, repo)[1])
            hub.stop_server(user)

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        list(pool.map(cycles, ["churn1", "churn2", "churn3"]))
    assert hub.containers() == [], [c.name for c in hub.containers()]
    assert metric(hub, "binderspawner_launches_total", image="cached", status="success") >= 31
    summary = wait_for(lambda: _summary(hub), 30, "a cleanup pass")
    assert summary["bytes"] <= parse_size("2G")
    assert metric(hub, "binderspawner_image_cache_images") == summary["images"] >= 1  # the built one


def _metric_key(hub, key):
    name, *value = key
    labels = {}
    if value:
        labels = {
            "status": value[0]} if "build_duration" in name else {
            "image": value[0],
            "status": "success"}
    return metric(hub, name, **labels)


def _summary(hub):
    path = os.path.join(hub.dir, "lifecycle", CACHE_SUMMARY)
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _small_image(client, tag, hub_id, megabytes):
    dockerfile = (f"FROM binderspawner-base:bookworm\nLABEL {LABEL_HUB}={hub_id} binderspawner.image={tag}\n"
                  f"RUN head -c {megabytes}M /dev/urandom > /blob-{uuid.uuid4().hex}\n")
    image, _ = client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    return image


def test_image_gc_least_recently_launched_first(docker_client, tmp_path):
    """The cleanup service's pass (run once, as the hub would) against images built for a fresh hub id."""
    lifecycle = str(tmp_path / "lifecycle")
    hub_id = default_hub_id(lifecycle)
    run = uuid.uuid4().hex[:8]
    tags = [f"bstest-lcgc-{run}-{i}:v" for i in range(4)]
    container = None
    try:
        for tag in tags:
            _small_image(docker_client, tag, hub_id, 8)
        launches = LaunchLog(lifecycle)
        now = time.time()  # launches after the builds, so they (not creation times) set the order
        for at, tag in enumerate(tags):  # 0 is the least recently launched
            launches.record(tag, at=now + at * 0.01)
        time.sleep(0.1)
        container = docker_client.containers.create(tags[0], ["true"], name=f"bstest-lcgc-{run}")
        base_id = docker_client.images.get("binderspawner-base:bookworm").id
        subprocess.run([sys.executable, "-m", "binderspawner.services.cleanup", "--once", "--hub-id", hub_id,
                        "--lifecycle-dir", lifecycle, "--image-cache-budget", "20M", "--grace", "0"],
                       check=True, timeout=120)
        present = {t for t in tags if docker_client.images.list(name=t.split(":")[0])}
        assert present == {tags[0], tags[3]}  # 0 is in use; 1 and 2 were launched least recently
        assert docker_client.images.get("binderspawner-base:bookworm").id == base_id
        summary = _summary_at(lifecycle)
        assert summary["images"] == 2 and summary["bytes"] <= parse_size("20M")
        assert sorted(summary["removed"]) == sorted(tags[1:3])
    finally:
        if container:
            container.remove(force=True)
        for tag in tags:
            try:
                docker_client.images.remove(tag, force=True)
            except docker.errors.ImageNotFound:
                pass


def _summary_at(lifecycle):
    with open(os.path.join(lifecycle, CACHE_SUMMARY)) as f:
        return json.load(f)
