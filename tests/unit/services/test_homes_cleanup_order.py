"""A new admin turns persistent homes on by adding c.PersistentHome lines to jupyterhub_config.py.
cleanup.configure(c) reads them when it is called, so lines after it (or no call) would leave homes
never expiring and never measured, silently: the hub names that, and the fix, in its log."""

import logging

from traitlets.config import Config, PyFileConfigLoader

from binderspawner.dockerhost import spawner as docker_spawner
from binderspawner.services import cleanup


def load(tmp_path, text):
    """The config a jupyterhub_config.py with ``text`` gives, loaded as JupyterHub loads it."""
    (tmp_path / "jupyterhub_config.py").write_text(
        "from binderspawner.services import cleanup\nc = get_config()\n"
        "c.HubCleanup.lifecycle_dir = '/srv/hub/lifecycle'\n" + text)
    return PyFileConfigLoader("jupyterhub_config.py", path=str(tmp_path)).load_config()


def test_homes_enabled_after_the_cleanup_service_is_named(tmp_path):
    config = load(tmp_path, "cleanup.configure(c)\nc.PersistentHome.enabled = True\n")
    problem = cleanup.homes_not_cleaned(config)
    assert "configured before c.PersistentHome.enabled" in problem
    assert "cleanup.configure(c) after the c.PersistentHome settings" in problem


def test_expire_days_set_after_the_cleanup_service_is_named(tmp_path):
    config = load(tmp_path, "c.PersistentHome.enabled = True\ncleanup.configure(c)\n"
                            "c.PersistentHome.expire_days = 7\n")
    assert "configured before c.PersistentHome.expire_days" in cleanup.homes_not_cleaned(config)


def test_homes_without_a_cleanup_service(tmp_path):
    config = load(tmp_path, "c.PersistentHome.enabled = True\n")
    assert "('binder-cleanup') is not configured" in cleanup.homes_not_cleaned(config)


def test_the_lab_configs_order_is_fine(tmp_path):
    # config/private_lab_config.py: jupyterhub_config.py's call, then homes, then configure again
    config = load(tmp_path, "c.JupyterHub.services.append({'name': 'other'})\ncleanup.configure(c)\n"
                            "c.PersistentHome.enabled = True\nc.PersistentHome.expire_days = 60\n"
                            "cleanup.configure(c)\n")
    assert cleanup.homes_not_cleaned(config) is None
    assert cleanup.homes_not_cleaned(load(tmp_path, "cleanup.configure(c)\n")) is None  # homes off


def test_the_docker_spawner_logs_it_once(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(docker_spawner, "_homes_checked", set())
    config = load(tmp_path, "cleanup.configure(c)\nc.PersistentHome.enabled = True\n")
    with caplog.at_level(logging.WARNING):
        docker_spawner.warn_homes_not_cleaned(docker_spawner.DockerBinderSpawner(config=config))
        docker_spawner.warn_homes_not_cleaned(docker_spawner.DockerBinderSpawner(config=config))
    assert caplog.text.count("homes never expire") == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        docker_spawner.warn_homes_not_cleaned(docker_spawner.DockerBinderSpawner(config=Config()))
    assert "homes never expire" not in caplog.text
