"""Pure parts of culling, cleanup and the image cache (no hub, no Docker)."""

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

from traitlets.config import Config

from binderspawner.services import cleanup

from binderspawner.services import culling
from binderspawner.services.imagecache import CachedImage, LaunchLog, parse_size, plan_removal

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


def test_culler_service_has_least_scopes_and_settings():
    c = Config()
    c.IdleCuller.timeout = 30
    c.IdleCuller.interval = 5
    service = culling.configure(c)
    assert service["command"][:3] == [sys.executable, "-m", "jupyterhub_idle_culler"]
    assert "--timeout=30" in service["command"] and "--cull-every=5" in service["command"]
    assert f"--max-age={6 * 3600}" in service["command"]
    assert "--remove-named-servers=true" not in service["command"]
    (role,) = c.JupyterHub.load_roles  # added to whatever the config has (a second call replaces it)
    assert c.JupyterHub.services == [service]
    assert sorted(role["scopes"]) == sorted(
        ["list:users", "read:users:activity", "read:servers", "delete:servers"])
    assert role["services"] == [service["name"]]


def test_named_servers_are_removed_when_named_servers_are_on():
    c = Config()
    c.JupyterHub.allow_named_servers = True
    c.JupyterHub.services = []
    c.JupyterHub.load_roles = []
    service = culling.configure(c)
    assert "--remove-named-servers=true" in service["command"]
    assert c.JupyterHub.services == [service]


def test_server_args():
    assert culling.server_args(600, 60, 900) == [
        "--MappingKernelManager.cull_idle_timeout=600", "--MappingKernelManager.cull_interval=60",
        "--ServerApp.shutdown_no_activity_timeout=900"]
    assert culling.server_args(0, 60, 0) == []


def test_stop_reason():
    naive = (NOW - timedelta(seconds=700)).replace(tzinfo=None)  # JupyterHub stores naive UTC
    assert culling.stop_reason(NOW, naive, NOW - timedelta(seconds=800), 600, 3600) == "idle"
    assert culling.stop_reason(NOW, NOW, NOW - timedelta(hours=2), 600, 3600) == "max_age"
    assert culling.stop_reason(NOW, NOW, NOW - timedelta(hours=2), 600, 0) == "other"
    assert culling.stop_reason(NOW, None, None, 600, 3600) == "other"


def image(name, size, created, in_use=False):
    return CachedImage(id=name, tags=(f"{name}:v",), unique_bytes=size, created=created, in_use=in_use)


def test_plan_removes_least_recently_launched_until_within_budget():
    images = [image("a", 10, 0), image("b", 10, 0), image("c", 10, 0), image("d", 10, 0)]
    launches = {"a:v": 400, "b:v": 100, "c:v": 300, "d:v": 200}
    plan = plan_removal(images, launches, budget_bytes=20, now=1000, grace=100)
    assert [i.id for i in plan] == ["b", "d"]


def test_plan_keeps_images_in_use_and_within_grace():
    images = [image("a", 10, 0, in_use=True), image("b", 10, 950), image("c", 10, 0)]
    launches = {"a:v": 1, "c:v": 980}
    assert plan_removal(images, launches, budget_bytes=0, now=1000, grace=100) == []
    assert [i.id for i in plan_removal(images, launches, 0, now=2000, grace=100)] == ["b", "c"]


def test_parse_size():
    assert parse_size("500M") == 500 << 20
    assert parse_size("1.5G") == int(1.5 * (1 << 30))
    assert parse_size("2GiB") == 2 << 30
    assert parse_size(1234) == 1234


def test_launch_log(tmp_path):
    log = LaunchLog(str(tmp_path))
    log.record("x:1", at=5)
    log.record("x:1", at=7)
    log.record("y:1", at=6)
    assert LaunchLog(str(tmp_path)).all() == {"x:1": 7, "y:1": 6}
    log.forget(["x:1"])
    assert log.all() == {"y:1": 6}


def test_orphans():
    containers = [("c1", "alice", ""), ("c2", "bob", "x"), ("c3", "carol", "")]
    assert cleanup.orphan_containers(containers, {("alice", ""), ("bob", "")}) == ["c2", "c3"]


def test_build_state_trusts_pid_and_start_time_together():
    starts = {10: 500, 20: 900}.get
    record = {"pid": 10, "start": 500, "hub_pid": 20, "hub_start": 900}
    assert cleanup.build_state(record, 20, starts) == "running"
    assert cleanup.build_state(record, 21, starts) == "orphaned"  # another hub process now
    assert cleanup.build_state({**record, "hub_start": 899}, 20, starts) == "orphaned"  # pid reused
    assert cleanup.build_state({**record, "start": 499}, 20, starts) == "ended"  # build pid reused
    assert cleanup.build_state({**record, "start": None}, 20, starts) == "ended"


def _sleeper(env=None):
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True,
                            env={**os.environ, **(env or {})})


def test_cleanup_kills_only_recorded_orphans_and_removes_only_scratch_children(tmp_path):
    lifecycle = tmp_path / "lifecycle"
    root = lifecycle / "build-tmp"
    root.mkdir(parents=True)
    victim = tmp_path / "host-dir"  # a directory a user server names: it must survive
    victim.mkdir()
    (victim / "keep").write_text("x")
    (root / "evil-link").symlink_to(victim)
    scratch = root / "build-orphan"
    scratch.mkdir()
    # a process that only claims to be a build (its environment names the victim): never touched
    claimer = _sleeper({cleanup.ENV_HUB_ID: cleanup.default_hub_id(str(lifecycle)),
                        cleanup.ENV_HUB_PID: "1", cleanup.ENV_BUILD_TMP: str(victim)})
    orphan = _sleeper()
    dead_hub = subprocess.Popen(["true"])
    dead_hub.wait()
    try:
        records = lifecycle / "builds"
        records.mkdir()
        (records / "orphan.json").write_text(json.dumps({
            "pid": orphan.pid, "start": cleanup.process_start(orphan.pid), "hub_pid": dead_hub.pid,
            "hub_start": 1, "scratch": str(scratch)}))
        (records / "outside.json").write_text(json.dumps({  # a record naming a path outside the root
            "pid": dead_hub.pid, "start": 1, "hub_pid": dead_hub.pid, "hub_start": 1,
            "scratch": str(victim)}))
        (records / "link.json").write_text(json.dumps({
            "pid": dead_hub.pid, "start": 1, "hub_pid": dead_hub.pid, "hub_start": 1,
            "scratch": str(root / "evil-link")}))
        assert set(cleanup.our_builds(str(lifecycle))) == {orphan.pid}
        killed = cleanup.kill_orphan_builds(str(lifecycle), os.getpid())
        assert killed == {orphan.pid}
        assert orphan.wait(10) == -9
        assert claimer.poll() is None
        assert not scratch.exists() and (victim / "keep").exists() and os.listdir(records) == []
        assert cleanup.remove_build_scratch(str(lifecycle), os.getpid(), min_age=0) == []
        assert (victim / "keep").exists() and (root / "evil-link").is_symlink()
    finally:
        for proc in (claimer, orphan):
            proc.kill()
            proc.wait()


def test_live_builds_of_this_hub_keep_their_scratch(tmp_path):
    lifecycle = tmp_path / "lifecycle"
    (lifecycle / "build-tmp" / "build-live").mkdir(parents=True)
    (lifecycle / "build-tmp" / "build-old").mkdir()
    build = _sleeper()
    try:
        cleanup.write_build_record(str(lifecycle / "builds" / "live.json"), build.pid,
                                   str(lifecycle / "build-tmp" / "build-live"))
        assert cleanup.kill_orphan_builds(str(lifecycle), os.getpid()) == set()
        assert build.poll() is None
        removed = cleanup.remove_build_scratch(str(lifecycle), os.getpid(), min_age=0)
        assert removed == [str(lifecycle / "build-tmp" / "build-old")]
    finally:
        build.kill()
        build.wait()


def test_cleanup_service_command():
    c = Config()
    c.HubCleanup.lifecycle_dir = "/srv/hub/lifecycle"
    c.HubCleanup.image_cache_budget = "10G"
    service = cleanup.configure(c)
    hub_id = cleanup.default_hub_id("/srv/hub/lifecycle")
    assert service["command"][1:3] == ["-m", "binderspawner.services.cleanup"]
    assert ["--hub-id", hub_id] == service["command"][3:5]
    assert "10G" in service["command"]
