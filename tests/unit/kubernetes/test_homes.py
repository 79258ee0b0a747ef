"""Persistent homes on Kubernetes: kubespawner's own PVC and pod manifests (get_pvc_manifest,
get_pod_manifest) for a launch with a home, validated against the official schemas."""

import pytest

from binderspawner.homes import merge
from binderspawner.homes.records import HomeRecords
from binderspawner.kubernetes import objects
from tests.unit.kubernetes.test_objects import SHA, launch, spawner, user_pod, validate  # noqa: F401


@pytest.fixture
def home_spawner(spawner):  # noqa: F811 - the fixture of test_objects
    spawner.config.PersistentHome.enabled = True
    spawner.config.PersistentHome.size_limit = "5Gi"
    spawner.user.name = "alice{username}"  # braces reach kubespawner's templates escaped
    spawner.launch_state = {"phase": "starting"}
    spawner.volumes = [{"name": "shared-data", "emptyDir": {}}]
    return spawner


async def test_a_pvc_per_member_and_repository_with_a_merge_at_the_first_start(home_spawner):
    spawner = home_spawner  # noqa: F811
    await spawner.prepare_server(spawner.launch)
    pvc = spawner.api.api_client.sanitize_for_serialization(spawner.get_pvc_manifest())
    validate(pvc)
    name = spawner.launch_state["home"]
    assert pvc["metadata"]["name"] == name and name.startswith("binder-home-alice-username-")
    assert pvc["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert pvc["metadata"]["labels"]["binderspawner.home.key"]
    assert pvc["metadata"]["annotations"]["binderspawner.home.user"] == "alice{username}"
    assert pvc["metadata"]["annotations"]["binderspawner.home.repo"] == spawner.launch.quota_key

    pod = await user_pod(spawner)
    validate(pod)
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes[objects.HOME_VOLUME]["persistentVolumeClaim"] == {"claimName": name}
    assert "shared-data" in volumes, "the admin's volumes stay"
    (server,) = pod["spec"]["containers"]
    assert {"name": objects.HOME_VOLUME, "mountPath": "/home/jovyan"} in server["volumeMounts"]
    (init,) = pod["spec"]["initContainers"]
    assert init["image"] == spawner.image and init["command"][:3] == ["python3", "-I", "-c"]
    assert init["command"][3] == merge.MERGE_SOURCE, "the script reaches the pod unchanged"
    assert init["command"][4:] == ["--ours", objects.HOME_MERGE_MOUNT, "--theirs", "/home/jovyan", "--commit", SHA]
    assert "env" not in init and init["securityContext"]["capabilities"] == {"drop": ["ALL"]}

    # the same commit again: the same PVC, no merge
    await spawner.prepare_server(spawner.launch)
    pod = await user_pod(spawner)
    validate(pod)
    assert not pod["spec"].get("initContainers")
    assert [v["name"] for v in pod["spec"]["volumes"]].count(objects.HOME_VOLUME) == 1
    assert HomeRecords(spawner.lifecycle.lifecycle_dir).merged_commit(name) == SHA


async def test_off_by_default_and_another_member_gets_another_claim(spawner):  # noqa: F811
    spawner.launch_state = {"phase": "starting"}
    await spawner.prepare_server(spawner.launch)
    pod = await user_pod(spawner)
    assert objects.HOME_VOLUME not in {v["name"] for v in pod["spec"].get("volumes") or []}
    spawner.config.PersistentHome.enabled = True
    await spawner.prepare_server(spawner.launch)
    alice = spawner.pvc_name
    spawner.user.name = "bob"
    await spawner.prepare_server(spawner.launch)
    assert spawner.pvc_name != alice and "bob" in spawner.pvc_name
