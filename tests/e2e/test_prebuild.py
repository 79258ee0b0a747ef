"""Prebuild on push (issue 18 item 1) against the real hub, Docker engine, repo2docker and a git
daemon on 127.0.0.1.

The deliveries are fixtures following each forge's documented push payload and signature headers
(tests/support/forgehooks.py): GitHub, GitLab and Gitea cannot be reached from here. Their clone
URL names the local git daemon, which stands for the forge's git side. One hub serves the module;
every repository uses one small Dockerfile, so each build after the first is mostly Docker's cache.
"""

import json
import re
import time
import uuid
from urllib.parse import quote

import pytest
import requests

from tests.conftest import serving
from tests.support.forgehooks import ZERO, delivery, push_payload
from tests.support.hub import Hub
from tests.support.images import SERVER_DOCKERFILE

SECRETS = {"github": "gh-" + uuid.uuid4().hex, "gitlab": "gl-" + uuid.uuid4().hex, "gitea": "gt-" + uuid.uuid4().hex}
CI_TOKEN = uuid.uuid4().hex
EXTRA = f"""
from binderspawner.web.handlers import binder_handlers
from binderspawner import prebuild
c.JupyterHub.extra_handlers = binder_handlers()
prebuild.configure(c)
c.JupyterHub.services.append({{"name": "ci", "api_token": {CI_TOKEN!r}}})
c.JupyterHub.load_roles.append({{"name": "ci-prebuild", "scopes": [prebuild.SCOPE], "services": ["ci"]}})
c.Prebuild.github_secret = {SECRETS['github']!r}
c.Prebuild.gitlab_secret = {SECRETS['gitlab']!r}
c.Prebuild.gitea_secret = {SECRETS['gitea']!r}
c.Prebuild.specs = ["^git/git%3A%2F%2F127\\\\.0\\\\.0\\\\.1%3A[0-9]+%2Fpb-"]
c.Prebuild.per_repo_per_hour = 4
c.Prebuild.max_body_bytes = 64 * 1024
"""
IMAGE = SERVER_DOCKERFILE
TIMEOUT = 900


@pytest.fixture(scope="module")
def phub(docker_client, git_server, tmp_path_factory):
    hub = Hub(str(tmp_path_factory.mktemp("pbhub")), extra_config=EXTRA, run_id="pb" + uuid.uuid4().hex[:6])
    hub.image_prefix = "bstest-pb-"
    with serving(hub, docker_client, "jupyterhub-prebuild.log"):
        yield hub


def new_repo(git_server, kind):
    name = f"pb-{kind}-{uuid.uuid4().hex[:6]}"
    sha = git_server.add_repo(name, files={"Dockerfile": IMAGE, "index.ipynb": "{}"})
    return name, sha


def send(hub, forge, payload, secret="", body=None, **kwargs):
    signed_body, headers = delivery(forge, payload, SECRETS[forge] if secret == "" else secret, **kwargs)
    return requests.post(f"http://127.0.0.1:{hub.port}/hub/binder/webhooks/{forge}", data=body or signed_body,
                         headers=headers, timeout=60)


def image_of(hub, docker_client, url, sha):
    """The image the hub names for this repository and commit (found in the hub's log)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.findall(rf"(bstest-pb-\S+:{sha})", hub.log())
        if found:
            return found[0]
        time.sleep(0.3)
    raise AssertionError(f"the hub never named an image for {sha}")


def wait_for_outcome(hub, sha, timeout=TIMEOUT):
    """The hub's log line ending the prebuild of ``sha`` (built, found, dropped or failed)."""
    pattern = re.compile(rf"Prebuild of \S+: image \S+:{sha} (built|was there already)|"
                         rf"Prebuild of \S+ \(\S+:{sha}\) dropped|Prebuild of \S+/{sha} failed")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = pattern.search(hub.log())
        if found:
            return found.group(0)
        time.sleep(0.5)
    raise AssertionError(f"no prebuild outcome for {sha}:\n{hub.log()[-3000:]}")


def builds_of(hub, sha):
    return len(re.findall(rf"Prebuild of \S+: image \S+:{sha} built", hub.log()))


@pytest.mark.parametrize("forge", ["github", "gitlab", "gitea"])
def test_signed_push_builds_and_the_next_launch_finds_the_image(phub, git_server, docker_client, forge):
    name, first = new_repo(git_server, forge)
    sha = git_server.commit(name, {"index.ipynb": '{"changed": 1}'})
    url = git_server.url(name)
    r = send(phub, forge, push_payload(forge, url, f"lab/{name}", "refs/heads/main", sha, before=first))
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "queued" and r.json()["image"].endswith(":" + sha)
    assert "built" in wait_for_outcome(phub, sha)
    docker_client.images.get(r.json()["image"])  # it is there
    if forge == "github":  # one real launch: the first visitor after the push builds nothing
        response, events = phub.launch(f"pb-{forge}", {"repo": url, "ref": "main"})
        assert response.status_code in (201, 202), response.text
        messages = [e.get("message", "") for e in events]
        assert any(m.startswith(f"Found image {r.json()['image']}") for m in messages), messages
        assert not any(m.startswith("Built image") for m in messages)
        phub.stop_server(f"pb-{forge}")
    assert builds_of(phub, sha) == 1


def test_bad_deliveries_are_refused_and_build_nothing(phub, git_server, docker_client):
    name, first = new_repo(git_server, "bad")
    sha = git_server.commit(name, {"index.ipynb": '{"bad": 1}'})
    url = git_server.url(name)
    for forge in ("github", "gitlab", "gitea"):
        payload = push_payload(forge, url, f"lab/{name}", "refs/heads/main", sha, before=first)
        assert send(phub, forge, payload, secret=None).status_code == 401  # unsigned
        assert send(phub, forge, payload, secret="not-the-secret").status_code == 401
        body, _ = delivery(forge, payload, SECRETS[forge])
        tampered = body.replace(sha.encode(), first.encode())
        r = send(phub, forge, payload, body=tampered)  # signed for another body
        assert r.status_code == (202 if forge == "gitlab" else 401), r.text
        if forge == "gitlab":
            # GitLab's token is not a signature of the body (documented): the tampered body passes
            # and is the first commit's push, built like any other push of this repository.
            assert wait_for_outcome(phub, first)
    # unknown repository (no c.Prebuild.specs pattern, never launched here): 403, nothing built
    other = f"other-{uuid.uuid4().hex[:6]}"
    other_sha = git_server.add_repo(other, files={"Dockerfile": IMAGE})
    r = send(phub, "github", push_payload("github", git_server.url(other), f"lab/{other}", "refs/heads/main",
                                          other_sha))
    assert r.status_code == 403 and "not prebuilt" in r.json()["message"], r.text
    # oversized, unknown forge, deleted branch, other events, ping
    big = push_payload("github", url, f"lab/{name}", "refs/heads/main", sha)
    big["padding"] = "x" * (70 * 1024)
    big_body, big_headers = delivery("github", big, SECRETS["github"])
    chunked = iter([big_body[i:i + 8192] for i in range(0, len(big_body), 8192)])  # no Content-Length
    r = requests.post(f"http://127.0.0.1:{phub.port}/hub/binder/webhooks/github", data=chunked,
                      headers=big_headers, timeout=60)
    assert r.status_code == 413 and "max_body_bytes" in r.json()["message"], r.text
    for _ in range(10):  # a refusal leaves the proxy's keep-alive connection to the hub sound (no 503)
        assert send(phub, "github", big).status_code == 413
        assert requests.post(f"http://127.0.0.1:{phub.port}/hub/binder/webhooks/bitbucket", data=b"{}",
                             timeout=30).status_code == 404
    deleted = send(phub, "github", push_payload("github", url, f"lab/{name}", "refs/heads/gone", ZERO, before=sha))
    assert deleted.status_code == 200 and deleted.json()["status"] == "ignored"
    issue = send(phub, "github", {"action": "opened"}, event="issues")
    assert issue.status_code == 200 and issue.json()["status"] == "ignored"
    assert send(phub, "github", {"zen": "hi"}, event="ping").json()["status"] == "pong"
    assert builds_of(phub, sha) == 0 and builds_of(phub, other_sha) == 0
    log = phub.log()
    assert "refused (401)" in log and "refused (413)" in log
    for secret in SECRETS.values():
        assert secret not in log  # secrets are never logged


def test_a_flood_of_pushes_builds_each_commit_at_most_once(phub, git_server, docker_client):
    name, first = new_repo(git_server, "flood")
    url = git_server.url(name)
    commits = [git_server.commit(name, {"index.ipynb": json.dumps({"n": n})}) for n in range(5)]
    answers = []
    payload = push_payload("github", url, f"lab/{name}", "refs/heads/main", commits[0], before=first)
    for _ in range(3):  # one commit delivered three times (three delivery ids: redeliveries)
        answers.append(send(phub, "github", payload))
    body, headers = delivery("github", payload, SECRETS["github"], delivery_id="replayed-" + name)
    for _ in range(2):  # the same delivery replayed
        answers.append(requests.post(f"http://127.0.0.1:{phub.port}/hub/binder/webhooks/github", data=body,
                                     headers=headers, timeout=60))
    for before, after in zip(commits, commits[1:]):
        answers.append(send(phub, "github", push_payload("github", url, f"lab/{name}", "refs/heads/main", after,
                                                         before=before)))
    codes = [a.status_code for a in answers]
    # the first delivery of commit 0 is queued, its repeats are duplicates; commits 1-3 are queued
    # (waiting older ones may be dropped for newer ones) until the per-repository quota (4 an
    # hour) refuses commit 4
    assert codes == [202, 200, 200, 200, 200, 202, 202, 202, 429], [a.text for a in answers]
    assert "c.Prebuild.per_repo_per_hour" in answers[-1].json()["message"]
    assert answers[-1].headers.get("Retry-After")
    outcomes = [wait_for_outcome(phub, sha) for sha in commits[:4]]
    assert "built" in outcomes[3], outcomes  # the branch's newest admitted commit
    # older commits were built or, while they still waited, dropped for the newer push
    assert all("built" in outcome or "dropped" in outcome for outcome in outcomes[:3]), outcomes
    assert all(builds_of(phub, sha) <= 1 for sha in commits)
    assert builds_of(phub, commits[4]) == 0  # refused by the quota


def test_ci_api_needs_the_scope_and_streams_the_build(phub, git_server, docker_client):
    name, sha = new_repo(git_server, "ci")
    path = f"/hub/binder/prebuild/git/{quote(git_server.url(name), safe='')}/main"
    base = f"http://127.0.0.1:{phub.port}"
    no_scope = requests.post(base + path, headers={"Authorization": f"token {phub.token}"}, timeout=60)
    assert no_scope.status_code == 403 and "custom:binder-prebuild" in no_scope.json()["message"]
    assert requests.post(base + path, timeout=60).status_code == 403  # no token
    events = []
    with requests.post(base + path, headers={"Authorization": f"token {CI_TOKEN}"}, stream=True,
                       timeout=TIMEOUT) as r:
        assert r.status_code == 200, r.text
        for line in r.iter_lines(decode_unicode=True):
            if line.startswith("data:"):
                events.append(json.loads(line[len("data:"):]))
    assert events[-1]["phase"] == "ready", events[-3:]
    assert events[-1]["imageName"].endswith(":" + sha)
    assert any(e["phase"] == "building" for e in events)
    docker_client.images.get(events[-1]["imageName"])
