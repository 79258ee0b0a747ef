"""Admins configure c.BinderSpawner.*; the old c.BinderSpawnerMixin.* is still applied, with a
warning naming the new key."""

import logging

import pytest
from traitlets.config import Config

from binderspawner import spawner as spawner_module
from binderspawner.dockerhost import DockerBinderSpawner


@pytest.fixture
def fresh_warnings(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the lifecycle directory defaults to the working directory
    monkeypatch.setattr(spawner_module, "_warned", set())


def test_the_new_name_configures_the_docker_spawner(fresh_warnings, caplog):
    config = Config()
    config.BinderSpawner.image_prefix = "lab-"
    config.BinderSpawner.max_concurrent_builds = 5
    with caplog.at_level(logging.WARNING):
        spawner = DockerBinderSpawner(config=config)
    assert spawner.image_prefix == "lab-" and spawner.max_concurrent_builds == 5
    assert "deprecated" not in caplog.text


def test_the_old_name_still_works_and_warns_with_the_new_key(fresh_warnings, caplog):
    config = Config()
    config.BinderSpawnerMixin.image_prefix = "old-"
    config.BinderSpawnerMixin.pids_limit = 64
    config.BinderSpawner.pids_limit = 128  # the new name wins
    with caplog.at_level(logging.WARNING):
        spawner = DockerBinderSpawner(config=config)
    assert spawner.image_prefix == "old-" and spawner.pids_limit == 128
    assert "c.BinderSpawnerMixin.image_prefix is deprecated: set c.BinderSpawner.image_prefix" in caplog.text
    assert "c.BinderSpawnerMixin.pids_limit is deprecated" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        DockerBinderSpawner(config=config)
    assert "deprecated" not in caplog.text, "warned once per hub process"
