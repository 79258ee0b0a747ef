"""When a session is stopped (inside it and on the home page), the share page's form checks, the
ever-shared record with its hook and single-use share codes (JupyterHub's own tables in sqlite)."""

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from jupyterhub import orm
from traitlets.config import Config

from binderspawner import session
from binderspawner.auth import pushback, sharing
from binderspawner.services import culling
from binderspawner.session import notice
from binderspawner.web import sharepage

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
STARTED = datetime(2026, 3, 1, 11, 30)  # naive UTC, as JupyterHub stores it


def test_schedule_and_words():
    plan = notice.schedule(NOW, STARTED, 600, 6 * 3600)
    assert plan["idle_at"] == NOW + timedelta(minutes=10)
    assert plan["ends_at"] == datetime(2026, 3, 1, 17, 30, tzinfo=timezone.utc)
    text = notice.session_notice(NOW, STARTED, 600, 6 * 3600)
    assert text.startswith("This session is stopped after 10 minutes without activity, and at the latest "
                           "at 17:30 UTC (in 5 h 30 min; sessions last at most 6 hours).")
    assert "Download" in text
    assert notice.session_notice(NOW, STARTED, 0, 0) is None
    assert notice.session_notice(NOW, None, 60, 3600) == notice.session_notice(NOW, None, 60, 0)
    late = notice.session_notice(NOW, STARTED, 0, 24 * 3600)  # tomorrow: the date is said
    assert "at the latest at 2026-03-02 11:30 UTC" in late and "without activity" not in late
    assert [notice.duration(s) for s in (20, 60, 600, 3600, 5400)] == [
        "less than a minute", "1 minute", "10 minutes", "1 hour", "1 h 30 min"]


def test_the_environment_carries_the_times_and_the_link_to_the_notice():
    env = session.server_env(600, 3600, STARTED, ("Share this session", "/hub/binder/share/ann/x"))
    assert env == {notice.ENV_IDLE: "600", notice.ENV_MAX_AGE: "3600",
                   notice.ENV_STARTED: "2026-03-01T11:30:00+00:00",
                   notice.ENV_LINK: "Share this session|/hub/binder/share/ann/x"}
    message, (label, url) = notice.notification(env, NOW)
    assert message == notice.session_notice(NOW, STARTED, 600, 3600)
    assert (label, url) == ("Share this session", "/hub/binder/share/ann/x")
    assert session.server_env(0, 0, STARTED) == {}
    # a link elsewhere than the hub's own pages is not offered; bad numbers count as off
    env[notice.ENV_LINK] = "Click|https://evil.example/"
    assert isinstance(notice.notification(env, NOW), str)
    assert notice.notification({notice.ENV_IDLE: "ten", notice.ENV_MAX_AGE: "-5"}, NOW) is None


def test_install_puts_module_and_settings_into_the_running_environment(tmp_path):
    """`python notice.py install` as the image build runs it, into a fresh venv."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run([python, notice.__file__, "install"], check=True)
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             check=True, capture_output=True, text=True).stdout.strip()
    assert open(os.path.join(purelib, "binderspawner_session.py")).read() == open(notice.__file__).read()
    config = venv / "etc/jupyter/jupyter_lab_config.json"
    assert json.loads(config.read_text()) == {"LabApp": {"check_for_updates_class": "binderspawner_session.CullNotice"}}
    config.write_text('{"LabApp": {"news_url": null}, "ServerApp": {"x": 1}}')  # settings already there stay
    subprocess.run([python, notice.__file__, "install"], check=True)
    assert json.loads(config.read_text()) == {"ServerApp": {"x": 1}, "LabApp": {
        "news_url": None, "check_for_updates_class": "binderspawner_session.CullNotice"}}
    lab = json.loads((venv / "share/jupyter/lab/settings/overrides.d/binderspawner-session.json").read_text())
    assert lab["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    assert subprocess.run([python, notice.__file__], capture_output=True).returncode != 0


def test_venv_images_install_the_notice_after_the_server():
    from binderspawner.builders.buildpacks.venv import VENV, make_venv_buildpack

    pack = make_venv_buildpack(["jupyterlab"])(base_image="binderspawner-base:bookworm")
    assert session.IMAGE_PATH in pack.get_build_script_files().values()
    scripts = [script for _, script in pack.get_build_scripts()]
    server = next(i for i, s in enumerate(scripts) if " server " in s)
    assert scripts[server + 1] == f"{VENV}/bin/python {session.IMAGE_PATH} install"


def test_stop_rules_follow_the_culler_and_the_server_s_own_exit():
    assert culling.stop_rules(600, 3600, True, 900) == (600, 3600)
    assert culling.stop_rules(600, 3600, False, 900) == (900, 0)  # no culler: only the server's own exit
    assert culling.stop_rules(1200, 0, True, 900) == (900, 0)
    assert culling.stop_rules(600, 3600, False, 0) == (0, 0)
    c = Config()
    assert not culling.culler_configured(c, "binder-idle-culler")
    culling.configure(c)
    assert culling.culler_configured(c, "binder-idle-culler")
    times = c.JupyterHub.template_vars.get_value({})["binder_stop_times"]
    of_server = times(None)
    running = SimpleNamespace(ready=True, shutdown_no_activity_timeout=900,
                              orm_spawner=SimpleNamespace(started=STARTED))
    shown = of_server(running, now=NOW)
    assert shown["idle"] == "10 minutes" and shown["idle_at_text"] == "12:10 UTC"
    assert shown["ends_at"] == "2026-03-01T17:30:00+00:00" and shown["max_age"] == "6 hours"
    assert of_server(SimpleNamespace(ready=False), now=NOW) is None


def test_share_forms_are_checked_before_anything_is_looked_up():
    ok = sharepage.form_refusal
    assert ok("share-user", {"user": "bob"}) is None
    assert ok("new-code", {"expires": "3600"}) is None
    assert ok("revoke-code", {"code": "12"}) is None
    assert "does not do" in ok("drop-tables", {})
    assert "user name" in ok("share-user", {"user": ""})
    assert "user name" in ok("share-user", {"user": "../admin"})
    assert "user name" in ok("revoke-user", {"user": "a\nb"})
    assert "user name" in ok("share-user", {"user": "x" * 256})
    assert "group name" in ok("share-group", {"group": ""})
    assert "1 hour, 1 day, 7 days" in ok("new-code", {"expires": "99999999"})
    assert "gone" in ok("revoke-code", {"code": "1 OR 1"})


@pytest.fixture
def db():
    db = orm.new_session_factory("sqlite://")()
    yield db
    db.close()


def servers(db, *names):
    owner, other = orm.User(name="ann"), orm.User(name="bob")
    db.add_all([owner, other])
    db.commit()
    made = [orm.Spawner(user=owner, name=name) for name in names]
    db.add_all(made)
    db.commit()
    return owner, other, made


def test_every_share_is_recorded_once_and_hooks_hear_of_it(db):
    owner, other, (server, coded, inherited) = servers(db, "s", "t", "u")
    heard = []
    hook = lambda connection, orm_spawner: heard.append(orm_spawner.name)  # noqa: E731
    sharing.on_shared(hook)
    try:
        orm.Share.grant(db, server, other)
        orm.Share.revoke(db, server, other)
        orm.Share.grant(db, server, other)
        sharing.new_single_use_code(db, coded, 3600)
        sharing.record_shared(db, inherited)  # e.g. a server starting on a home a shared one wrote to
    finally:
        sharing._shared_hooks.remove(hook)
    assert heard == ["s", "s", "t", "u"]
    assert all(pushback.ever_shared(db, s) for s in (server, coded, inherited))
    orm.Share.revoke(db, server, other)
    assert sharing.ever_shared(db, server)


def test_a_single_use_code_works_once_and_leaves_its_share(db):
    owner, other, (server,) = servers(db, "s")
    third = orm.User(name="cat")
    db.add(third)
    db.commit()
    share_code, code = sharing.new_single_use_code(db, server, 3600)
    assert sharing.single_use_ids(db, [share_code.id]) == {share_code.id}
    assert share_code.expires_at > datetime.utcnow() + timedelta(minutes=59)
    found = orm.ShareCode.find(db, code)
    share = found.exchange(other)
    assert share.user.name == "bob" and orm.Share.find(db, server, other) is not None
    assert orm.ShareCode.find(db, code) is None  # gone: nobody else can use it
    assert db.query(sharing.SINGLE_USE_CODES).count() == 0
    # JupyterHub's own codes (the REST API's) keep working for anyone until they expire
    api_code, plain = orm.ShareCode.new(db, server, scopes=["access:servers!server=ann/s"])
    orm.ShareCode.find(db, plain).exchange(other)
    orm.ShareCode.find(db, plain).exchange(third)
    assert orm.ShareCode.find(db, plain).exchange_count == 2


def test_the_session_links_to_its_share_page_only_where_the_hub_serves_it():
    from binderspawner.web.handlers import binder_handlers

    def spawner(config):
        return SimpleNamespace(config=config, hub=SimpleNamespace(base_url="/hub/"),
                               user=SimpleNamespace(name="ann"), name="my server")
    assert sharepage.session_link(spawner(Config())) is None
    c = Config()
    c.JupyterHub.extra_handlers = binder_handlers()
    assert sharepage.session_link(spawner(c)) == ("Share this session", "/hub/binder/share/ann/my%20server")


def test_the_page_reads_other_parts_settings_without_importing_them():
    c = Config()
    assert not sharepage._setting(c, "PersistentHome", "enabled")
    c.PersistentHome.enabled = True
    assert sharepage._setting(c, "PersistentHome", "enabled")
    assert not sharepage._setting(None, "PushBack", "enabled")


def test_the_share_page_names_only_members_jupyterhubs_share_api_would(db):
    """JupyterHub's share API shares with a user (group) by name only with 'read:users:name'
    ('read:groups:name') on them; the page asks the same, and answers as for a name nobody has."""
    from jupyterhub.scopes import parse_scopes

    owner_orm, other, (server,) = servers(db, "s")
    lab = orm.Group(name="lab", users=[owner_orm, other])
    db.add(lab)
    db.commit()
    owner = SimpleNamespace(orm_user=owner_orm, name="ann")
    handler = object.__new__(sharepage.SharePageHandler)
    handler.application = SimpleNamespace(settings={
        "db": db, "authenticator": SimpleNamespace(normalize_username=lambda n: n.lower())})
    handler._jupyterhub_user = SimpleNamespace(admin=False)
    handler.parsed_scopes = parse_scopes({"shares!user=ann", "read:users:name!user=ann"})
    with pytest.raises(ValueError, match="No user 'bob'"):
        handler._member("bob", owner)
    with pytest.raises(ValueError, match="No user 'nobody'"):
        handler._member("nobody", owner)
    with pytest.raises(ValueError, match="'lab' is not a group"):
        handler._group("lab", owner)
    handler.parsed_scopes = parse_scopes({"shares!user=ann", "read:users:name", "read:groups:name"})
    assert handler._member("Bob", owner) is other and handler._group("lab", owner) is lab
