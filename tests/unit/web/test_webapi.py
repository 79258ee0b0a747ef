"""Pure decisions of push-back, the build API's token and fetch-metadata guard, per-user quotas and
capped event lists."""

from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest

from binderspawner.auth import pushback
from binderspawner.builders.logs import EventWindow
from binderspawner.errors import LaunchError
from binderspawner.policy import quotas
from binderspawner.providers.base import TokenCredentials
from binderspawner.web import buildapi

OLD, NEW = "1" * 40, "2" * 40


def pkt(line):
    data = line.encode()
    return b"%04x" % (len(data) + 4) + data


def push_body(*commands, caps="report-status side-band-64k"):
    lines = [f"{old} {new} {ref}" for old, new, ref in commands]
    lines[0] += "\0" + caps
    return b"".join(pkt(line + "\n") for line in lines) + b"0000PACK..."


def test_push_commands_are_read_from_the_request():
    body = push_body((OLD, NEW, "refs/heads/a"), ("0" * 40, NEW, "refs/heads/b"))
    assert pushback.push_commands(body) == [(OLD, NEW, "refs/heads/a"), ("0" * 40, NEW, "refs/heads/b")]
    assert pushback.push_commands(pkt(f"shallow {OLD}\n") + push_body((OLD, NEW, "refs/heads/a"))) == [
        (OLD, NEW, "refs/heads/a")]
    for bad in (b"", b"zzzz", b"0100short", pkt("not a command\n") + b"0000"):
        with pytest.raises(ValueError):
            pushback.push_commands(bad)


def test_only_allowed_refs_are_updated_and_nothing_is_deleted():
    allowed = ["refs/heads/*"]
    assert pushback.ref_refusal([(OLD, NEW, "refs/heads/work")], allowed) is None
    assert "Deleting refs/heads/work" in pushback.ref_refusal([(OLD, "0" * 40, "refs/heads/work")], allowed)
    assert "refs/tags/v1" in pushback.ref_refusal([(OLD, NEW, "refs/tags/v1")], allowed)
    assert "refs/heads/main" in pushback.ref_refusal([(OLD, NEW, "refs/heads/main")], ["refs/heads/binder-*"])
    assert pushback.ref_refusal([], allowed)


def test_the_server_gets_the_hub_relay_never_the_token():
    credentials = TokenCredentials(token="s3cret", username="oauth2", hosts=("git.lab:8443",))
    env = pushback.container_env(True, credentials, "https://git.lab:8443/r.git",
                                 "http://10.0.0.1:8081/hub/api")
    assert "s3cret" not in repr(env)
    assert env["GIT_CONFIG_KEY_0"] == "url.http://10.0.0.1:8081/hub/binder/git/repo.insteadOf"
    assert env["GIT_CONFIG_VALUE_0"] == "https://git.lab:8443/r.git"
    assert env["GIT_CONFIG_KEY_1"] == "credential.http://10.0.0.1:8081/hub/binder/git/repo.helper"
    assert "$JUPYTERHUB_API_TOKEN" in env["GIT_CONFIG_VALUE_1"]
    assert pushback.container_env(False, credentials, "https://git.lab:8443/r.git", "http://h/hub/api") == {}
    assert pushback.container_env(True, credentials, "https://other.host/r.git", "http://h/hub/api") == {}
    assert pushback.container_env(True, None, "https://git.lab:8443/r.git", "http://h/hub/api") == {}


def test_push_back_refusals():
    ok = dict(enabled=True, own_server=True, ever_shared=False, covered=True)
    assert pushback.refusal(**ok) is None
    assert "turned off" in pushback.refusal(**{**ok, "enabled": False})
    assert "own API token" in pushback.refusal(**{**ok, "own_server": False})
    assert "is or was shared" in pushback.refusal(**{**ok, "ever_shared": True})
    assert "expired" in pushback.refusal(**{**ok, "covered": False})


def test_ready_token_lives_no_longer_than_the_callers_credentials():
    now = datetime(2026, 1, 1)
    assert buildapi.token_lifetime(86400) == 86400
    assert buildapi.token_lifetime(86400, now + timedelta(seconds=600), now) == 600
    assert buildapi.token_lifetime(86400, now + timedelta(days=30), now) == 86400
    assert buildapi.token_lifetime(86400, now - timedelta(seconds=1), now) is None
    assert buildapi.token_lifetime(86400, caller_max_age=3600) == 3600
    assert buildapi.server_scope("ann", "b-x") == "access:servers!server=ann/b-x"


def test_ready_event_without_token_says_why():
    link = SimpleNamespace(repo_url="r", binder_request="v2/x", ref_url=lambda v: "u",
                           persistent_request=lambda v: "p")
    event = buildapi.ready_event(url="http://h/user/a/s/", token=None, image="i", link=link, version="v",
                                 launch_host="http://h/hub/")
    assert "token" not in event and "access:servers" in event["message"]


def test_fetch_metadata_guard():
    for dest in ("image", "iframe", "frame", "script", "embed", "object"):
        assert buildapi.fetch_refusal(dest, buildapi.LAUNCH_DESTINATIONS)
        assert buildapi.fetch_refusal(dest, buildapi.BUILD_API_DESTINATIONS)
    assert buildapi.fetch_refusal("document", buildapi.LAUNCH_DESTINATIONS) is None
    assert buildapi.fetch_refusal(None, buildapi.LAUNCH_DESTINATIONS) is None
    assert buildapi.fetch_refusal("empty", buildapi.LAUNCH_DESTINATIONS)
    assert buildapi.fetch_refusal("empty", buildapi.BUILD_API_DESTINATIONS) is None
    assert buildapi.failed_event("no", 403) == {"phase": "failed", "message": "no\n", "status_code": 403}


def _spawner(user, repo, active=True):
    return SimpleNamespace(user=SimpleNamespace(name=user), binder_repo=repo, active=active)


def test_per_user_quota_counts_servers_and_build_only_builds():
    spawners = [_spawner("ann", "a"), _spawner("ann", "b", active=False), _spawner("bob", "a")]
    counts = quotas.count_servers(spawners, "a", user="ann", build_only=["ann", "bob"])
    assert counts == quotas.Counts(repo=2, total=4, user=2)
    with pytest.raises(LaunchError) as refused:
        quotas.check_quota(counts, quotas.QuotaLimits(per_repo=None, per_user=2), "a")
    assert refused.value.status_code == 429 and "per_user_quota = 2" in str(refused.value)
    quotas.check_quota(counts, quotas.QuotaLimits(per_repo=None, per_user=3), "a")
    with pytest.raises(LaunchError, match="servers and builds"):
        quotas.check_quota(counts, quotas.QuotaLimits(per_repo=None, total=4), "a")


async def test_build_only_builds_are_tracked_while_they_run():
    import asyncio

    registry = quotas.BuildOnlyLaunches()
    gate = asyncio.Event()
    task = asyncio.ensure_future(gate.wait())
    registry.track("ann", task)
    assert registry.user_names() == ["ann"]
    gate.set()
    await task
    await asyncio.sleep(0)
    assert registry.user_names() == []


def test_failed_named_servers_do_not_count_against_the_limit():
    spawners = {"": SimpleNamespace(launch_failed=None), "a": SimpleNamespace(launch_failed="boom"),
                "b": SimpleNamespace(launch_failed=None)}
    user = SimpleNamespace(kind="user", orm_spawners=dict.fromkeys(spawners), spawners=spawners)
    assert quotas.failed_named_servers(user) == ["a"]
    limit = quotas.named_server_limit(2)
    assert limit(SimpleNamespace(current_user=user)) == 3
    assert limit(SimpleNamespace(current_user=None)) == 2
    assert quotas.named_server_limit(0) == 0
    assert limit.refusal(user) is None
    assert "(b, c)" in quotas.named_server_limit(2).refusal(SimpleNamespace(
        kind="user", orm_spawners=dict.fromkeys([*spawners, "c"]),
        spawners={**spawners, "c": SimpleNamespace(launch_failed=None)}))


def test_event_window_keeps_the_last_events_and_counts_what_a_reader_missed():
    window = EventWindow(max_events=3, max_bytes=10**6, size=lambda event: 1)
    for i in range(5):
        window.append(i)
    assert len(window) == 5 and list(window) == [2, 3, 4]
    assert window.since(0) == (2, [2, 3, 4], 5)
    assert window.since(4) == (0, [4], 5)
    assert window.since(5) == (0, [], 5)
    by_bytes = EventWindow(max_events=100, max_bytes=10, size=len)
    for text in ("aaaa", "bbbb", "cccc"):
        by_bytes.append(text)
    assert list(by_bytes) == ["bbbb", "cccc"]
    one_huge = EventWindow(max_events=100, max_bytes=10, size=len)
    one_huge.append("x" * 100)
    assert list(one_huge) == ["x" * 100]  # the newest is always kept


def test_shipped_config_caps_each_user(monkeypatch, tmp_path):
    """config/jupyterhub_config.py as it is (the Docker network lookup answered here)."""
    import os

    from traitlets.config import Config

    from binderspawner.dockerhost import network
    from tests.support import ROOT

    monkeypatch.setattr(network, "ensure_network", lambda name: "10.99.0.1")
    monkeypatch.setenv("BINDERSPAWNER_STATE_DIR", str(tmp_path))
    config = Config()
    path = os.path.join(ROOT, "config", "jupyterhub_config.py")
    with open(path) as f:
        exec(compile(f.read(), path, "exec"), {"get_config": lambda: config, "__file__": path})
    assert config.Quotas.per_user_quota > 0
    limit = config.JupyterHub.named_server_limit_per_user
    user = SimpleNamespace(kind="user", orm_spawners={"a": None},
                           spawners={"a": SimpleNamespace(launch_failed="x")})
    assert callable(limit) and limit(SimpleNamespace(current_user=user)) == limit(
        SimpleNamespace(current_user=None)) + 1


def test_a_server_once_shared_stays_refused_until_it_is_deleted():
    """JupyterHub's own tables (sqlite in memory): revoking does not undo a share; a new server,
    even one given the deleted server's id, starts clean."""
    from jupyterhub import orm

    db = orm.new_session_factory("sqlite://")()
    owner, other = orm.User(name="ann"), orm.User(name="bob")
    db.add_all([owner, other])
    db.commit()
    server = orm.Spawner(user=owner, name="s")
    coded = orm.Spawner(user=owner, name="t")
    db.add_all([server, coded])
    db.commit()
    assert not pushback.ever_shared(db, server)
    orm.Share.grant(db, server, other)
    orm.Share.revoke(db, server, other)
    assert pushback.ever_shared(db, server) and not pushback.ever_shared(db, coded)
    code, _ = orm.ShareCode.new(db, coded, scopes=["access:servers!server=ann/t"])
    db.delete(code)
    db.commit()
    assert pushback.ever_shared(db, coded)
    old_id = coded.id
    db.delete(coded)
    db.commit()
    fresh = orm.Spawner(user=owner, name="t")
    db.add(fresh)
    db.commit()
    assert fresh.id == old_id  # sqlite gives the id again: the record went with the old server
    assert not pushback.ever_shared(db, fresh)


def test_a_refused_push_is_answered_in_git_s_report_status():
    """(git itself reads it in tests/e2e/test_private_lab.py.)"""
    commands = [(OLD, "0" * 40, "refs/heads/work")]
    plain = pushback.rejected_push(commands, set(), "Deleting refs/heads/work is not allowed.")
    ng = b"ng refs/heads/work Deleting refs/heads/work is not allowed.\n"
    assert plain == b"000eunpack ok\n" + b"%04x" % (len(ng) + 4) + ng + b"0000"
    banded = pushback.rejected_push(commands, {"side-band-64k", "report-status"}, "no")
    assert banded.startswith(b"0008\x02no\n") and banded.endswith(b"0000")
    body = push_body((OLD, NEW, "refs/heads/a"), caps="report-status side-band-64k")
    assert pushback.read_push(body)[1] == {"report-status", "side-band-64k"}
