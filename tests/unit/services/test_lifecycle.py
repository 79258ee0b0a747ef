"""Pure parts of culling, cleanup and the image cache (no hub, no Docker)."""

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
    (role,) = c.JupyterHub.load_roles.get_value([])  # appended to whatever the hub has
    assert c.JupyterHub.services.get_value([]) == [service]
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
    env = {cleanup.ENV_HUB_ID: "hub-1", cleanup.ENV_HUB_PID: "100"}
    assert cleanup.is_orphan_build(env, "hub-1", 200)
    assert not cleanup.is_orphan_build(env, "hub-1", 100)
    assert not cleanup.is_orphan_build(env, "hub-2", 200)


def test_cleanup_service_command():
    c = Config()
    c.HubCleanup.lifecycle_dir = "/srv/hub/lifecycle"
    c.HubCleanup.image_cache_budget = "10G"
    service = cleanup.configure(c)
    hub_id = cleanup.default_hub_id("/srv/hub/lifecycle")
    assert service["command"][1:3] == ["-m", "binderspawner.services.cleanup"]
    assert ["--hub-id", hub_id] == service["command"][3:5]
    assert "10G" in service["command"]
