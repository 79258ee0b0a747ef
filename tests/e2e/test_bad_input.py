"""Bad launch input through the real hub's REST API: a clear 4xx before anything is cloned or
built, and nothing left behind (no server, no container, no image)."""

import pytest


def run_images(hub, git_server):
    """Images built from this run's git server (other sessions may build on the same engine)."""
    marker = f"127-0-0-1-{git_server.port}-"
    return {tag for image in hub.docker.images.list() for tag in image.tags if marker in tag}


BAD = [
    ({"repo": "not a url"}, "repo", "spaces"),
    ({"repo": "https://"}, "repo", "host"),
    ({"repo": "file:///etc/passwd"}, "repo", "scheme 'file' is not allowed"),
    ({"repo": "/srv/repos/example"}, "repo", "not a URL"),
    ({"repo": "ext::sh -c touch% /tmp/pwned"}, "repo", "spaces"),
    ({"repo": "ext::sh"}, "repo", "remote helpers"),
    ({"repo": "ssh://127.0.0.1/x.git"}, "repo", "scheme 'ssh'"),
    ({"repo": "-uhttps://127.0.0.1/x.git"}, "repo", "starts with '-'"),
    ({"repo": "https://user:secret@127.0.0.1/x.git"}, "repo", "credentials"),
    ({"repo": "https://example.org/org/repo.git"}, "repo", "not on this hub's list of allowed hosts"),
    ({"repo": "https://127.0.0.1/" + "a" * 2000}, "repo", "at most 1024"),
    ({"repo": "GIT_URL", "ref": "main; rm -rf /"}, "ref", "it contains a space"),
    ({"repo": "GIT_URL", "ref": "$(id)"}, "ref", "has no branch, tag or commit '$(id)'"),  # git allows it
    ({"repo": "GIT_URL", "ref": "--upload-pack=touch /tmp/x"}, "ref", "starts with '-'"),
    ({"repo": "GIT_URL", "ref": "-b"}, "ref", "starts with '-'"),
    ({"repo": "GIT_URL", "ref": "a..b"}, "ref", "'..'"),
    ({"repo": "GIT_URL", "ref": "x" * 300}, "ref", "at most 255"),
    ({"repo": "GIT_URL", "urlpath": "../../hub/admin"}, "urlpath", "'..'"),
    ({"repo": "GIT_URL", "urlpath": "https://evil.example/"}, "urlpath", "not a URL"),
    ({"repo": "GIT_URL", "image": "busybox"}, "image", "Unknown server option"),
    ({"ref": "main"}, "repo", "No repository given"),
]


@pytest.mark.parametrize("options, field, expected", BAD, ids=[f"{i}-{b[1]}" for i, b in enumerate(BAD)])
def test_bad_input_is_refused_clearly(hub, git_server, options, field, expected):
    options = {k: (git_server.url("requirements") if v == "GIT_URL" else v) for k, v in options.items()}
    images_before = run_images(hub, git_server)
    r = hub.spawn("mallory", options)
    assert r.status_code == 400, r.text
    message = r.json()["message"]
    assert expected in message
    assert hub.api("GET", "/users/mallory").json()["servers"] == {}
    assert [c for c in hub.containers() if "JUPYTERHUB_USER=mallory" in c.attrs["Config"]["Env"]] == []
    assert run_images(hub, git_server) == images_before


@pytest.mark.parametrize("repo, ref, status, expected", [
    ("MISSING", None, 404, "was not found, or you do not have access to it"),
    ("GIT_URL", "no-such-branch", 400, "has no branch, tag or commit 'no-such-branch'"),
    ("CLOSED_PORT", None, 502, "Could not reach the host"),
])
def test_unknown_repo_or_ref_is_refused_before_building(hub, git_server, repo, ref, status, expected):
    url = {"MISSING": git_server.url("no-such-repo"), "GIT_URL": git_server.url("requirements"),
           "CLOSED_PORT": "git://127.0.0.1:9/nothing.git"}[repo]
    options = {"repo": url, **({"ref": ref} if ref else {})}
    r = hub.spawn("mallory", options)
    assert r.status_code == status, r.text
    assert expected in r.json()["message"]
    assert hub.api("GET", "/users/mallory").json()["servers"] == {}
    assert "Building image" not in hub.log().split(url)[-1]


def test_refused_launches_leave_no_unread_failures_in_the_hub_log(hub):
    """After the refusals above: each failure is logged once, as the launch's error; none comes back
    as asyncio's 'Future exception was never retrieved' (a Future holding a LaunchError) when
    JupyterHub replaces the failed spawner; the launch request is noted, not warned about as
    unhandled user_options."""
    log = hub.log()
    assert "Launch request for mallory:" in log
    assert "exception=LaunchError()" not in log and "unhandled user_options" not in log
