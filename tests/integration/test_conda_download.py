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


@pytest.fixture
def internal_service():
    """A service only the hub's machine reaches (here: loopback), which records what it is asked."""
    import http.server
    import threading

    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("spec", ["{url}/internal/noarch/bs-data-1.0-0.tar.bz2",
                                  "bs-data[url={url}/internal/noarch/bs-data-1.0-0.tar.bz2]",
                                  "file:///etc/bs-data-1.0-0.tar.bz2", "/etc/bs-data-1.0-0.tar.bz2"])
async def test_a_dependency_that_is_a_package_url_or_path_is_refused_before_the_hub_fetches_it(
        spec, channel, internal_service, tmp_path):
    """rattler fetches a match spec that is a URL (or reads a path) itself, on the hub, past the
    hub's address rules and the admin's channels: environment.yml may not name one, and the solve
    refuses one before any request."""
    from binderspawner.builders.environment import Environment, EnvironmentRefused, Policy, RepoFiles, decide

    server, _ = channel
    url, hits = internal_service
    spec = spec.format(url=url)
    with pytest.raises(EnvironmentRefused, match=r"^environment.yml: the dependency .* is a package URL or path"):
        decide(RepoFiles({"environment.yml": f"dependencies:\n  - '{spec}'\n"}), Policy(("3.11",)))
    env = Environment("conda", "venv", python="3.11", conda_file="environment.yml", conda_specs=(spec,))
    settings = conda.CondaSettings(channels=(server.url,), allowed_private_hosts=("127.0.0.1",))
    with pytest.raises(conda.CondaFailed, match="is a package URL or path") as info:
        await conda.solve(env, "3.11", settings, lambda *a: None)
    assert info.value.refused
    assert hits == []
