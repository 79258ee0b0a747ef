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


def test_a_hub_removes_only_the_images_of_this_sessions_hubs(docker_client):
    """Another test run on the same engine may be launching its own image this moment: the CI's
    session hub once removed every bstest- image while a helper's hub was creating a container."""
    import io

    import docker

    from binderspawner.services.cleanup import LABEL_HUB
    from tests.conftest import _remove_test_images
    from tests.support.hub import HUB_IDS

    run = uuid.uuid4().hex[:8]
    ours, theirs = f"hub-ours{run}", f"hub-theirs{run}"
    HUB_IDS.add(ours)
    tags = {}
    for hub_id in (ours, theirs):
        tags[hub_id] = f"bstest-rm{run}-{hub_id}:x"
        dockerfile = f"FROM binderspawner-base:bookworm\nLABEL {LABEL_HUB}={hub_id}\n"
        docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tags[hub_id], rm=True)
    try:
        _remove_test_images(docker_client, f"bstest-rm{run}-")
        with pytest.raises(docker.errors.ImageNotFound):
            docker_client.images.get(tags[ours])
        docker_client.images.get(tags[theirs])
    finally:
        for tag in tags.values():
            try:
                docker_client.images.remove(tag, force=True)
            except docker.errors.ImageNotFound:
                pass
