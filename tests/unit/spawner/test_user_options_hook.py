"""user_options are the launch request, read by start(): JupyterHub's apply_user_options hook notes
them instead of warning, on every launch, that they went unhandled."""

import asyncio
import logging
from types import SimpleNamespace

from binderspawner.dockerhost import DockerBinderSpawner


def test_the_launch_request_is_noted_not_warned_about(caplog):
    spawner = DockerBinderSpawner(user=SimpleNamespace(name="ada", url="/user/ada/"))
    with caplog.at_level(logging.INFO, logger=spawner.log.name):
        asyncio.run(spawner._run_apply_user_options({"repo": "https://example.org/r.git", "ref": "main"}))
    text = [r.getMessage() for r in caplog.records]
    assert "Launch request for ada: ref, repo" in text, text
    assert not any("unhandled" in t for t in text)
