"""End to end on one Docker host: a real JupyterHub + configurable-http-proxy, the Docker engine,
repo2docker, and a git server on 127.0.0.1 serving the example repositories."""

import concurrent.futures
import re
import uuid

import pytest

GiB = 1024**3


def messages(events):
    return [e.get("message", "") for e in events]


def assert_ready(events):
    assert events and events[-1].get("ready"), "spawn did not become ready:\n" + \
                                     "\n".join(messages(events)[-30:])


def builds_of(hub, image):
    return hub.log().count(f"Building image {image} ")


def image_of(events):
    for m in messages(events):
        found = re.search(r"image (\S+:[0-9a-f]{40})", m)
        if found:
            return found.group(1)
    raise AssertionError("no image named in the progress events")


def containers_of(hub, user):
    return [c for c in hub.containers() if f"JUPYTERHUB_USER={user}" in c.attrs["Config"]["Env"]]


def container_of(hub, user):
    found = containers_of(hub, user)
    assert len(found) == 1, [c.name for c in hub.containers()]
    return found[0]


@pytest.fixture(scope="module")
def alice(hub, git_server):
    """alice's server from the requirements.txt example, launched once for the tests below; at a
    commit of its own, so that this first launch builds (other modules launch the example too)."""
    git_server.commit("requirements", {"docker-e2e-nonce": uuid.uuid4().hex})
    r, events = hub.launch("alice", {"repo": git_server.url("requirements"),
                                     "urlpath": "lab/tree/index.ipynb"})
    assert r.status_code in (201, 202), r.text
    assert_ready(events)
    return events


def test_first_launch_builds_and_streams_the_log(hub, alice):
    text = "\n".join(messages(alice))
    assert "default branch main is at" in text
    assert "install.py" in text and "requirements.txt" in text, "build log missing from progress"
    assert "[building] #" in text and "naming to" in text
    assert "Built image" in text
    assert builds_of(hub, image_of(alice)) == 1
    r = hub.server_get("alice", "api/status")
    assert r.status_code == 200, r.text
    assert "kernels" in r.json()


def test_container_has_limits_labels_and_urlpath(hub, git_server, alice):
    container = container_of(hub, "alice")
    host = container.attrs["HostConfig"]
    assert host["Memory"] == 1 * GiB
    assert host["MemorySwap"] == 1 * GiB, "swap must be capped at the memory limit"
    assert (host["CpuQuota"], host["CpuPeriod"]) == (100_000, 100_000)
    assert host["PidsLimit"] == 1024
    labels = container.labels
    assert labels["binderspawner.repo"] == git_server.url("requirements")
    assert re.fullmatch(r"[0-9a-f]{40}", labels["binderspawner.commit"])
    assert labels["binderspawner.image"] == image_of(alice) == container.attrs["Config"]["Image"]
    env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
    assert env["JUPYTERHUB_DEFAULT_URL"] == "/lab/tree/index.ipynb"
    assert env["BINDER_REF"] == labels["binderspawner.commit"]


def test_memory_hog_is_killed_and_neighbours_keep_running(hub, git_server, alice):
    r, bob = hub.launch("bob", {"repo": git_server.url("requirements")})
    assert_ready(bob)
    hog = container_of(hub, "alice").exec_run(
        ["python3", "-c", "x = b'\\xff' * (1536 * 1024 * 1024); print('survived')"])
    assert hog.exit_code == 137, (hog.exit_code, hog.output[-500:])  # SIGKILL from the OOM killer
    assert b"survived" not in hog.output
    assert hub.server_get("alice", "api/status").status_code == 200
    assert hub.server_get("bob", "api/status").status_code == 200
    assert hub.api("GET", "/users/alice").status_code == 200
    hub.stop_server("bob")


def test_second_launch_of_same_commit_builds_nothing(hub, git_server, alice):
    image = image_of(alice)
    hub.stop_server("alice")
    assert containers_of(hub, "alice") == [], "container left behind"
    r, again = hub.launch("alice", {"repo": git_server.url("requirements")})
    assert_ready(again)
    text = "\n".join(messages(again))
    assert f"Found image {image}" in text
    assert "[building]" not in text
    assert builds_of(hub, image) == 1


def test_push_gives_new_commit_and_new_image(hub, git_server, alice):
    old_image = image_of(alice)
    sha = git_server.commit("requirements", {"notes.md": "a notebook-only change\n"})
    r, events = hub.launch("carol", {"repo": git_server.url("requirements"), "ref": "main"})
    assert_ready(events)
    image = image_of(events)
    assert image != old_image and image.endswith(":" + sha)
    assert container_of(hub, "carol").labels["binderspawner.commit"] == sha
    hub.stop_server("carol")


def test_five_concurrent_launches_share_one_build(hub, git_server):
    sha = git_server.add_repo("storm", files={"requirements.txt": "six==1.16.0\n", "index.ipynb": "{}"})
    users = [f"storm{i}" for i in range(5)]
    with concurrent.futures.ThreadPoolExecutor(len(users)) as pool:
        results = list(pool.map(lambda u: hub.launch(u, {"repo": git_server.url("storm")}), users))
    images = set()
    for (r, events) in results:
        assert r.status_code in (201, 202), r.text
        assert_ready(events)
        images.add(image_of(events))
    (image,) = images
    assert image.endswith(":" + sha)
    assert builds_of(hub, image) == 1
    for user in users:
        assert hub.server_get(user, "api/status").status_code == 200
        hub.stop_server(user)


def test_failed_build_fails_spawn_with_log_tail_and_leaves_nothing(hub, git_server):
    git_server.add_repo("broken", files={"requirements.txt": "binderspawner-no-such-package-xyz==0.0.1\n"})
    r, events = hub.launch("dave", {"repo": git_server.url("broken")})
    if r.status_code >= 400:  # failed within JupyterHub's slow_spawn_timeout
        message = r.json()["message"]
    else:
        assert events[-1].get("failed"), messages(events)[-5:]
        message = events[-1]["message"]
    assert "failed" in message and "Last lines of the build log" in message
    assert "binderspawner-no-such-package-xyz" in message
    assert containers_of(hub, "dave") == []
    assert hub.api("GET", "/users/dave").json()["servers"] == {}


@pytest.mark.parametrize("example, check", [
    ("dockerfile", ["python3", "-c", "import jupyterhub"]),
    ("apt-postbuild", ["sh", "-c", "/usr/games/cowsay moo && cat $HOME/postbuild-ran"]),
])
def test_other_examples_build_and_run(hub, git_server, example, check):
    user = f"ex-{example}"
    r, events = hub.launch(user, {"repo": git_server.url(example)})
    assert_ready(events)
    assert hub.server_get(user, "api/status").status_code == 200
    result = container_of(hub, user).exec_run(check)
    assert result.exit_code == 0, result.output
    if example == "apt-postbuild":
        assert b"moo" in result.output and b"postBuild ran as jovyan" in result.output
    hub.stop_server(user)
