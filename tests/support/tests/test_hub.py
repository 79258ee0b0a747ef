"""The test hub refuses to run with config JupyterHub does not recognize (traitlets only warns): such
a line silently does nothing, as `c.JupyterHub.slow_spawn_timeout` once did in test_launches.py."""

import uuid

import pytest

from tests.support.hub import Hub


def test_a_config_line_jupyterhub_does_not_recognize_fails_the_start(docker_client, tmp_path):
    hub = Hub(str(tmp_path), extra_config="c.JupyterHub.slow_spawn_timeout = 0\n",
              run_id="cfg" + uuid.uuid4().hex[:6])
    try:
        with pytest.raises(AssertionError, match="slow_spawn_timeout"):
            hub.start()
    finally:
        hub.cleanup()
