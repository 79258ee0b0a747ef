"""A new admin edits c.IdleCuller in jupyterhub_config.py below culling.configure(c) (or calls it
twice). The culler runs with what configure() saw; the session notice must tell users that, not the
later value, and the hub's log names the fix. A second configure() replaces the culler."""

import logging
from types import SimpleNamespace

from traitlets.config import PyFileConfigLoader

from binderspawner import spawner as spawner_module
from binderspawner.services import culling
from binderspawner.session import notice
from binderspawner.spawner import BinderSpawner


def load(tmp_path, text):
    (tmp_path / "jupyterhub_config.py").write_text(
        "from binderspawner.services import culling\nc = get_config()\n" + text)
    return PyFileConfigLoader("jupyterhub_config.py", path=str(tmp_path)).load_config()


def session_env(config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spawner = BinderSpawner(config=config)
    spawner.user = SimpleNamespace(name="ada", url="/user/ada/")
    spawner.name = ""
    return spawner._stop_times_env()


def test_the_session_notice_shows_what_the_culler_runs_with(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(spawner_module, "_warned", set())
    config = load(tmp_path, "culling.configure(c)\nc.IdleCuller.timeout = 3600\nc.IdleCuller.max_age = 60\n")
    running = culling.running_culler(config)
    assert (running.timeout, running.max_age) == (600, 6 * 3600)
    with caplog.at_level(logging.WARNING):
        env = session_env(config, tmp_path, monkeypatch)
        session_env(config, tmp_path, monkeypatch)
    assert env[notice.ENV_IDLE] == "600", env
    assert caplog.text.count("Call culling.configure(c) after the c.IdleCuller settings") == 1


def test_configure_again_replaces_the_culler(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(spawner_module, "_warned", set())
    config = load(tmp_path, "c.JupyterHub.services.append({'name': 'other'})\nculling.configure(c)\n"
                            "c.IdleCuller.timeout = 420\nculling.configure(c)\n")
    services = config.JupyterHub.services
    assert [s["name"] for s in services] == ["other", "binder-idle-culler"]
    assert [r["name"] for r in config.JupyterHub.load_roles] == ["binder-idle-culler-role"]
    assert culling.settings_not_applied(config) is None
    with caplog.at_level(logging.WARNING):
        assert session_env(config, tmp_path, monkeypatch)[notice.ENV_IDLE] == "420"
    assert "IdleCuller" not in caplog.text


def test_without_a_culler_only_the_server_s_own_exit_counts(tmp_path, monkeypatch):
    config = load(tmp_path, "c.IdleCuller.timeout = 3600\n")
    assert culling.running_culler(config) is None and culling.settings_not_applied(config) is None
    assert session_env(config, tmp_path, monkeypatch)[notice.ENV_IDLE] == "900"  # shutdown_no_activity_timeout
