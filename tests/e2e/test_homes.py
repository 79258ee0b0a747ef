"""Persistent homes end to end: a real hub with c.PersistentHome on, the real jupyterhub-idle-culler
and cleanup service, real Docker volumes, repo2docker images of a repository on the local git server.

One hub for the module (a second, small one for the size-limit refusal); every volume the tests make
carries the module's hub id and is removed at the end.
"""

import contextlib
import json
import os
import signal
import threading
import uuid

import docker
import pytest
import requests

from binderspawner.homes import LABEL, home_for
from binderspawner.homes.records import HomeRecords, read_summary
from binderspawner.services.cleanup import LABEL_HUB, expire_homes
from tests.e2e.test_lifecycle import metric, wait_for
from tests.support import EXAMPLES
from tests.support.hub import Hub

HOMES = """
c.JupyterHub.load_roles[0]["scopes"] += ["shares", "read:metrics"]
c.HubCleanup.lifecycle_dir = settings["dir"] + "/lifecycle"
c.HubCleanup.hub_id = {hub_id!r}
c.PersistentHome.enabled = True
c.IdleCuller.timeout = 15
c.IdleCuller.interval = 3
c.JupyterHub.last_activity_interval = 3
from binderspawner.services import cleanup, culling
culling.configure(c)
cleanup.configure(c)
"""


def remove_volumes(client, hub_id):
    for volume in client.volumes.list(filters={"label": f"{LABEL_HUB}={hub_id}"}):
        for container in client.containers.list(all=True, filters={"volume": volume.name}):
            container.remove(force=True)
        volume.remove(force=True)


@pytest.fixture(scope="module")
def repo(git_server):
    name = "homes-" + uuid.uuid4().hex[:8]
    git_server.add_repo(name, os.path.join(EXAMPLES, "requirements"),
                        files={"notes.txt": "first version\n", "data/table.csv": "a,b\n1,2\n"})
    return name


@pytest.fixture(scope="module")
def homes_hub(docker_client, git_server, tmp_path_factory):
    hub_id = "homes-" + uuid.uuid4().hex[:8]
    hub = Hub(str(tmp_path_factory.mktemp("homeshub")), extra_config=HOMES.format(hub_id=hub_id),
              run_id="hm" + uuid.uuid4().hex[:8])
    hub.hub_id = hub_id
    try:
        yield hub.start()
    finally:
        hub.stop(signal.SIGKILL)
        hub.cleanup()
        remove_volumes(docker_client, hub_id)


def ready(events):
    assert events and events[-1].get("ready"), [e.get("message") for e in events][-10:]
    return [e.get("message", "") for e in events]


def contents(hub, user, path, method="GET", body=None):
    url = f"http://127.0.0.1:{hub.port}/user/{user}/api/contents/{path}"
    r = requests.request(method, url, headers={"Authorization": f"token {hub.token}"}, json=body, timeout=30)
    return r


def read_text(hub, user, path):
    r = contents(hub, user, path + "?content=1&format=text&type=file")
    return r.json()["content"] if r.status_code == 200 else None


def write_text(hub, user, path, text):
    r = contents(hub, user, path, "PUT", {"type": "file", "format": "text", "content": text})
    assert r.status_code in (200, 201), r.text


def culled(hub, user):
    """Wait for the idle culler to stop the user's server (no request reaches it meanwhile)."""
    wait_for(lambda: not hub.api("GET", f"/users/{user}").json().get("servers"), 150,
             f"the culler to stop {user}'s server", interval=2)
    wait_for(lambda: not [c for c in hub.containers() if f"JUPYTERHUB_USER={user}" in c.attrs["Config"]["Env"]],
             60, f"{user}'s container to go")
    assert f"Culling server {user} " in hub.log()


@contextlib.contextmanager
def kept_active(hub, *users):
    """Requests through the proxy every 2 s, so the module's quick culler leaves these servers alone."""
    stop = threading.Event()

    def poke():
        while not stop.wait(2):
            for user in users:
                try:
                    hub.server_get(user, "api/status")
                except requests.RequestException:
                    pass

    thread = threading.Thread(target=poke, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


def stop(hub, user):
    """Stop the user's server unless the culler did already."""
    if hub.api("GET", f"/users/{user}").json().get("servers"):
        hub.stop_server(user)


def volumes_of(client, hub_id, user):
    return {v.name: v for v in client.volumes.list(filters={"label": [f"{LABEL_HUB}={hub_id}", f"{LABEL}=1"]})
            if v.attrs["Labels"].get("binderspawner.home.user") == user}


def test_work_survives_culling_new_commits_and_hub_restarts(homes_hub, git_server, repo, docker_client):
    hub, options = homes_hub, {"repo": git_server.url(repo)}
    messages = ready(hub.launch("alice", options)[1])
    assert any("persistent home" in m for m in messages), messages
    (name,) = volumes_of(docker_client, hub.hub_id, "alice")
    notebook = json.loads(read_text(hub, "alice", "index.ipynb"))
    notebook["cells"].append({"cell_type": "markdown", "metadata": {}, "source": ["alice's analysis"]})
    write_text(hub, "alice", "index.ipynb", json.dumps(notebook))
    write_text(hub, "alice", "mywork.txt", "mine\n")
    culled(hub, "alice")

    # a new commit changes the notebook alice edited, a file she did not touch, and adds one
    theirs = json.loads(open(os.path.join(git_server.work, repo, "index.ipynb")).read())
    theirs["cells"].append({"cell_type": "markdown", "metadata": {}, "source": ["upstream's cell"]})
    sha = git_server.commit(repo, {"index.ipynb": json.dumps(theirs), "notes.txt": "second version\n",
                                   "added.txt": "new in the commit\n"})
    with kept_active(hub, "alice"):
        messages = ready(hub.launch("alice", options)[1])
        assert volumes_of(docker_client, hub.hub_id, "alice").keys() == {name}
        assert read_text(hub, "alice", "mywork.txt") == "mine\n"
        assert "alice's analysis" in read_text(hub, "alice", "index.ipynb"), "her edit was overwritten"
        beside = f"index.{sha[:7]}.ipynb"
        assert "upstream's cell" in read_text(hub, "alice", beside)
        assert read_text(hub, "alice", "notes.txt") == "second version\n"
        assert read_text(hub, "alice", "added.txt") == "new in the commit\n"
        note = read_text(hub, "alice", f"BINDER-MERGE-{sha[:7]}.md")
        assert "index.ipynb" in note and beside in note
        assert any("1 file(s) changed both" in m and beside in m for m in messages), messages
        assert metric(hub, "binderspawner_homes_merges_total", result="conflicts") == 1
        assert not [c for c in docker_client.containers.list(all=True) if c.name.endswith("-home-merge")]

        # sharing the server marks the home: later servers on it warn and refuse push-back
        hub.ensure_user("bob")
        r = hub.api("POST", "/shares/alice/", json={"user": "bob"})
        assert r.status_code in (200, 201), r.text
        stop(hub, "alice")

    hub.stop()
    hub.start()  # a hub restart: the same volume, no merge for the same commit
    with kept_active(hub, "alice"):
        messages = ready(hub.launch("alice", options)[1])
        assert read_text(hub, "alice", "mywork.txt") == "mine\n"
        assert any("as you left them" in m for m in messages), messages
        assert any("was shared with others" in m for m in messages), messages
        assert HomeRecords(os.path.join(hub.dir, "lifecycle")).merged_commit(name) == sha
        assert metric(hub, "binderspawner_homes_merges_total", result="skipped") >= 1
        # the cleanup service measured the homes at its pass after the restart
        wait_for(lambda: (read_summary(os.path.join(hub.dir, "lifecycle")) or {}).get("homes", 0) >= 1, 60,
                 "the cleanup service's homes summary")
        assert metric(hub, "binderspawner_homes") >= 1 and metric(hub, "binderspawner_homes_bytes") > 0
        stop(hub, "alice")


def test_members_never_see_each_others_home_and_can_start_fresh(homes_hub, git_server, repo, docker_client):
    hub, options = homes_hub, {"repo": git_server.url(repo)}
    with kept_active(hub, "carol", "dave"):
        ready(hub.launch("carol", options)[1])
        write_text(hub, "carol", "carol.txt", "carol's\n")
        ready(hub.launch("dave", options)[1])
        assert read_text(hub, "dave", "carol.txt") is None
        carol, dave = volumes_of(docker_client, hub.hub_id, "carol"), volumes_of(docker_client, hub.hub_id, "dave")
        assert len(carol) == len(dave) == 1 and carol.keys() != dave.keys()
        (carols,) = docker_client.containers.list(filters={"volume": next(iter(carol))})
        assert "JUPYTERHUB_USER=carol" in carols.attrs["Config"]["Env"]

        # a second server of carol on the same repository is refused while the first runs
        r, events = hub.launch("carol", options, server="second")
        assert events and events[-1].get("failed") and "in use by your other server" in events[-1]["message"]
        hub.api("DELETE", "/users/carol/servers/second", json={"remove": True})

        stop(hub, "carol")
        messages = ready(hub.launch("carol", {**options, "home": "fresh"})[1])
        assert any("Started a fresh home" in m for m in messages), messages
        assert read_text(hub, "carol", "carol.txt") is None
        assert read_text(hub, "carol", "index.ipynb") is not None
        assert len(volumes_of(docker_client, hub.hub_id, "carol")) == 2, "the old home is set aside, not removed"
        saved = hub.api("GET", "/users/carol").json()["servers"][""]["user_options"]
        assert "home" not in saved, "a restart must not start fresh again"
        r, events = hub.launch("carol", {**options, "home": "everything"}, server="third")
        said = r.text if r.status_code >= 400 else events[-1].get("message", "")
        assert "'home' option 'everything' is not valid" in said, said
        for user in ("carol", "dave"):
            stop(hub, user)


def test_expiry_removes_only_unused_expired_homes(homes_hub, docker_client):
    hub_id, lifecycle = homes_hub.hub_id, os.path.join(homes_hub.dir, "lifecycle")
    store = HomeRecords(lifecycle)
    made = {}
    for user, days_ago in (("old", 40), ("older-in-use", 50), ("recent", 2)):
        home = home_for("binder-home-", hub_id, user, "git/expiry-test")
        docker_client.volumes.create(home.name, labels=home.labels)
        store.used(home, at=1_000_000_000 + (60 - days_ago) * 86400)
        made[user] = home.name
    now = 1_000_000_000 + 60 * 86400
    user = docker_client.containers.create("binderspawner-base:bookworm", ["true"],
                                           volumes={made["older-in-use"]: {"bind": "/data", "mode": "rw"}},
                                           labels={LABEL_HUB: hub_id}, name=f"{homes_hub.prefix}-expiry-user")
    try:
        removed = expire_homes(docker_client, hub_id, lifecycle, 30, now=now)
    finally:
        user.remove(force=True)
    assert removed == [made["old"]]
    names = {v.name for v in docker_client.volumes.list(filters={"label": f"{LABEL_HUB}={hub_id}"})}
    assert made["old"] not in names and made["older-in-use"] in names and made["recent"] in names
    summary = read_summary(lifecycle)
    assert summary["expired"] >= 1 and summary["homes"] >= 2 and summary["bytes"] >= 0
    for name in (made["older-in-use"], made["recent"]):
        docker_client.volumes.get(name).remove()


def test_a_size_limit_the_volume_driver_cannot_enforce_is_refused(
        git_server, repo, docker_client, tmp_path_factory, homes_hub):
    hub_id = "homes-" + uuid.uuid4().hex[:8]
    extra = HOMES.format(hub_id=hub_id) + 'c.PersistentHome.size_limit = "1G"\n'
    hub = Hub(str(tmp_path_factory.mktemp("sizehub")), extra_config=extra, run_id="hs" + uuid.uuid4().hex[:8])
    try:
        hub.start()
        r, events = hub.launch("erin", {"repo": git_server.url(repo)})
        assert events and events[-1].get("failed"), events
        assert "c.PersistentHome.size_limit" in events[-1]["message"], events[-1]
        assert not docker_client.volumes.list(filters={"label": f"{LABEL_HUB}={hub_id}"})
    finally:
        hub.stop(signal.SIGKILL)
        hub.cleanup()
        remove_volumes(docker_client, hub_id)
        assert docker.from_env().volumes.list(filters={"label": f"{LABEL_HUB}={hub_id}"}) == []
