"""conda.download against a channel on 127.0.0.1: a package's body goes to disk as it arrives
(hashed on the way), never whole into the hub's memory, whoever serves it."""

import hashlib
import os
import tracemalloc

import pytest

from binderspawner.builders import conda, condaspec
from tests.support.condachannel import ChannelServer

SIZE = 48 << 20


@pytest.fixture
def channel(tmp_path):
    folder = tmp_path / "channel" / "noarch"
    folder.mkdir(parents=True)
    chunk = os.urandom(1 << 20)
    with open(folder / "big-1.0-0.tar.bz2", "wb") as f:
        for _ in range(SIZE >> 20):
            f.write(chunk)
    digest = hashlib.sha256(chunk * (SIZE >> 20)).hexdigest()
    server = ChannelServer(tmp_path / "channel")
    try:
        yield server, digest
    finally:
        server.stop()


async def test_a_large_package_is_streamed_to_disk_and_checked(channel, tmp_path):
    server, digest = channel
    url = f"{server.url}/noarch/big-1.0-0.tar.bz2"
    settings = conda.CondaSettings(channels=(server.url,), allowed_private_hosts=("127.0.0.1",))
    dest = tmp_path / "payload"
    tracemalloc.start()
    try:
        entries = await conda.download([condaspec.LockedPackage("big", "1.0", "0", url, digest)], str(dest),
                                       settings, lambda *a: None, "conda-lock.yml")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert entries == [{"file": "big-1.0-0.tar.bz2", "sha256": digest, "size": SIZE}]
    assert os.path.getsize(dest / "pkgs" / "big-1.0-0.tar.bz2") == SIZE
    assert peak < SIZE // 4  # not the whole body in memory


async def test_a_package_with_another_digest_leaves_nothing_behind(channel, tmp_path):
    server, _ = channel
    url = f"{server.url}/noarch/big-1.0-0.tar.bz2"
    settings = conda.CondaSettings(channels=(server.url,), allowed_private_hosts=("127.0.0.1",))
    dest = tmp_path / "payload"
    with pytest.raises(conda.CondaFailed, match="sha256"):
        await conda.download([condaspec.LockedPackage("big", "1.0", "0", url, "0" * 64)], str(dest),
                             settings, lambda *a: None, "conda-lock.yml")
    assert os.listdir(dest / "pkgs") == []


async def test_downloads_past_the_hubs_limit_stop_naming_the_setting(channel, tmp_path):
    """A lock (or a solve) naming many or huge packages cannot fill the hub's disk: the bytes of
    all packages of one build count against conda_max_download as they arrive."""
    server, digest = channel
    url = f"{server.url}/noarch/big-1.0-0.tar.bz2"
    settings = conda.CondaSettings(channels=(server.url,), allowed_private_hosts=("127.0.0.1",),
                                   max_download_bytes=SIZE // 2)
    dest = tmp_path / "payload"
    with pytest.raises(conda.CondaFailed, match=r"more than 24 MiB to download \(c.Repo2DockerBuilder."
                                                r"conda_max_download\); stopped while fetching big") as info:
        await conda.download([condaspec.LockedPackage("big", "1.0", "0", url, digest)], str(dest),
                             settings, lambda *a: None, "conda-lock.yml")
    assert info.value.refused
    assert os.listdir(dest / "pkgs") == []
    settings = conda.CondaSettings(channels=(server.url,), allowed_private_hosts=("127.0.0.1",),
                                   max_download_bytes=SIZE)
    entries = await conda.download([condaspec.LockedPackage("big", "1.0", "0", url, digest)], str(dest),
                                   settings, lambda *a: None, "conda-lock.yml")
    assert entries[0]["size"] == SIZE
