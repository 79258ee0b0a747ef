"""launcher.make_launch against a real git server (git daemon on 127.0.0.1): one Launch carrying
the request, the resolved commit, the image, the launch's Resources and quota key; quotas
admitted without an await in between; and "built" taken from the build itself, so every launch
that shared one build knows it was built (not found).

The builder here implements the Builder interface over an in-memory set of images (no Docker in
this tier); the build queue, the providers, spec control and the policies are the real ones.
"""

import asyncio
from types import SimpleNamespace

import pytest
from traitlets.config import Config

from binderspawner import launcher
from binderspawner.builders import Builder
from binderspawner.errors import LaunchError
from binderspawner.spawner import BinderSpawner

SHA_LENGTH = 40


class MemoryBuilder(Builder):
    """Images that 'exist' are names in a set; a build adds its image after the gate opens."""

    images = set()
    builds = []
    gate = None

    async def image_exists(self, image):
        return image in self.images

    async def build(self, request, emit):
        MemoryBuilder.builds.append(request.image)
        emit("building", f"building {request.image}")
        if MemoryBuilder.gate is not None:
            await MemoryBuilder.gate.wait()
        MemoryBuilder.images.add(request.image)


@pytest.fixture
def spawner(git_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the lifecycle directory (launch log, build scratch)
    MemoryBuilder.images, MemoryBuilder.builds, MemoryBuilder.gate = set(), [], None
    config = Config()
    config.GitProvider.allowed_hosts = ["127.0.0.1"]
    config.GitProvider.resolved_ref_ttl = 0
    config.ResourcePolicy.sizes = {"small": {"cpu_limit": 0.5, "mem_limit": "512M"}}
    config.ResourcePolicy.group_config = {"lab": {"mem_limit": "2G"}}
    spawner = BinderSpawner(config=config, builder_class=MemoryBuilder, image_prefix="t-")
    spawner.user = SimpleNamespace(name="alice", groups=[SimpleNamespace(name="lab")])
    # the Spawner's limits (BinderSpawner alone is not a Spawner)
    spawner.cpu_limit, spawner.mem_limit = 1.0, 1024**3
    spawner.cpu_guarantee = spawner.mem_guarantee = None
    return spawner


def messages():
    reported = []
    return reported, lambda message, progress=None: reported.append(message)


async def test_one_launch_carries_request_version_image_resources_and_quota_key(spawner, git_server):
    url = git_server.url("requirements")
    reported, report = messages()
    admitted = []
    launch = await launcher.make_launch(spawner, {"repo": url, "ref": "main", "size": "small"}, report,
                                        admit=admitted.append)
    assert launch.request.repo == url and launch.request.ref == "main" and launch.request.size == "small"
    assert len(launch.resolved.version) == SHA_LENGTH
    assert launch.image.startswith("t-") and launch.image.endswith(":" + launch.resolved.version)
    # the size wins over the group's memory (the user's pick comes last), nothing else changed
    assert (launch.resources.cpu_limit, launch.resources.mem_limit) == (0.5, 512 * 1024**2)
    assert launch.quota_key == launch.resolved.source.repository and admitted == [launch.quota_key]
    assert "main" not in launch.quota_key, "quotas count the repository, whatever the ref"
    assert launch.labels["binderspawner.commit"] == launch.resolved.version
    assert launch.built is True and MemoryBuilder.builds == [launch.image]
    assert reported[0] == "Size 'small': 0.5 CPU, 0.5 GiB memory"
    assert reported[-1] == f"Built image {launch.image}; starting server"

    again = await launcher.make_launch(spawner, {"repo": url, "ref": "main"}, lambda *a, **k: None)
    assert again.built is False and MemoryBuilder.builds == [launch.image], "found, not built again"
    assert again.resources.mem_limit == 2 * 1024**3, "the group's memory without a size"


async def test_launches_sharing_one_build_all_report_built(spawner, git_server):
    MemoryBuilder.gate = asyncio.Event()
    url = git_server.url("requirements")
    (first_seen, first_report), (second_seen, second_report) = messages(), messages()
    first = asyncio.ensure_future(launcher.make_launch(spawner, {"repo": url}, first_report))
    second = asyncio.ensure_future(launcher.make_launch(spawner, {"repo": url}, second_report))

    def following(seen):
        return any(m.startswith("[building] building ") for m in seen)

    while not (following(first_seen) and following(second_seen)):  # both joined the one build
        await asyncio.sleep(0.01)
    MemoryBuilder.gate.set()
    launches = await asyncio.wait_for(asyncio.gather(first, second), 30)
    assert [launch.built for launch in launches] == [True, True]
    assert len(MemoryBuilder.builds) == 1


async def test_a_refused_option_stops_before_any_network_or_quota(spawner, git_server):
    admitted = []
    with pytest.raises(LaunchError) as refused:
        await launcher.make_launch(spawner, {"repo": git_server.url("requirements"), "size": "huge"},
                                   lambda *a, **k: None, admit=admitted.append)
    assert refused.value.field == "size" and admitted == [] and MemoryBuilder.builds == []
    with pytest.raises(LaunchError) as unknown:
        launcher.read_request(spawner, {"repo": git_server.url("requirements"), "colour": "red"})
    assert unknown.value.field == "colour"


async def test_a_fresh_home_asked_of_a_hub_without_homes_is_named_not_silently_dropped(spawner, git_server):
    reported, report = messages()
    await launcher.make_launch(spawner, {"repo": git_server.url("requirements"), "home": "fresh"}, report)
    assert any("'home' option 'fresh' is ignored" in m and "c.PersistentHome.enabled" in m for m in reported)
    reported.clear()
    await launcher.make_launch(spawner, {"repo": git_server.url("requirements")}, report)
    assert not any("'home'" in m for m in reported)
