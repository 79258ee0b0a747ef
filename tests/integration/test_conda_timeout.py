"""A conda channel that takes connections and never answers (what a user sees behind a firewall that
drops packets) fails the launch after c.Repo2DockerBuilder.conda_timeout, naming the channel and both
settings; before, the wait was a fixed 600 s."""

import asyncio
import socket
import threading
from types import SimpleNamespace

from traitlets.config import Config

from binderspawner.builders import conda
from binderspawner.builders.repo2docker import Repo2DockerBuilder


def test_conda_timeout_is_a_setting_handed_to_the_solve():
    config = Config()
    config.Repo2DockerBuilder.conda_timeout = 7
    assert Repo2DockerBuilder(config=config).conda_settings().download_timeout == 7
    assert Repo2DockerBuilder().conda_settings().download_timeout == 600


def test_a_silent_channel_fails_after_the_timeout_naming_channel_and_settings(tmp_path):
    server = socket.create_server(("127.0.0.1", 0))
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/mirror"
    config = Config()
    config.Repo2DockerBuilder.conda_channels = [url]
    config.Repo2DockerBuilder.conda_timeout = 2
    config.Repo2DockerBuilder.conda_cache_dir = str(tmp_path)
    config.RepoProvider.allowed_private_hosts = ["127.0.0.1"]
    settings = Repo2DockerBuilder(config=config).conda_settings()
    environment = SimpleNamespace(conda_channels=(), conda_file="environment.yml", conda_python=None,
                                  conda_specs=("numpy",))
    try:
        asyncio.run(conda.solve(environment, "3.11", settings, lambda *a: None))
        raise AssertionError("the solve succeeded against a channel that never answers")
    except conda.CondaFailed as e:
        message = str(e)
    finally:
        for conn, _ in accepted:
            conn.close()
        server.close()
    assert url in message and "c.Repo2DockerBuilder.conda_channels" in message
    assert "no answer within 2 s (c.Repo2DockerBuilder.conda_timeout)" in message
