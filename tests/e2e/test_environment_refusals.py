"""Through the real hub: what the hub cannot build fails at once, with one first line naming the
file and what to do, and leaves no server, container or image behind (builders/environment.py)."""

import uuid

import pytest


@pytest.mark.parametrize("files, first", [
    ({"runtime.txt": "python-3.10\n", "requirements.txt": "six\n"},
     "runtime.txt asks for Python 3.10, which this hub cannot build"),
    ({"apt.txt": "ffmpeg\napt-get install -y graphviz\n"}, "apt.txt line 2: 'apt-get install -y graphviz'"),
    ({"install.R": "install.packages('ggplot2')\n", "runtime.txt": "r-4.3-2024-05-01\n"},
     "runtime.txt asks for R, which this hub does not build"),
])
def test_refused_before_building_with_its_message(hub, git_server, files, first):
    name = f"refuse-{uuid.uuid4().hex[:8]}"
    git_server.add_repo(name, files=files)
    user = f"env{uuid.uuid4().hex[:6]}"
    response, events = hub.launch(user, {"repo": git_server.url(name)}, timeout=120)
    messages = [response.json().get("message", "")] if response.status_code >= 400 else []
    messages += [e.get("message", "") for e in events if e.get("failed")]
    assert any(m.startswith(first) for m in messages), (response.status_code, response.text, events)
    assert not any("Step" in e.get("message", "") or e.get("message", "").startswith("#")
                   for e in events)  # no Docker build ran
    servers = hub.api("GET", f"/users/{user}").json()["servers"]
    assert not any(s.get("ready") for s in servers.values())
    assert [c for c in hub.containers() if f"JUPYTERHUB_USER={user}" in c.attrs["Config"]["Env"]] == []
    assert not [t for i in hub.docker.images.list() for t in i.tags if name in t]
