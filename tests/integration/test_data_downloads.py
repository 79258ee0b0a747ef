"""Data records fetch only what the hub's address check admits (issue 14.6).

CKAN is off until the admin names its sites, and what a build downloads for any data record
(every resource URL the site lists, every redirect) passes the same check as the hub's own requests.
Real parts: a CKAN stand-in on 127.0.0.1 answering repo2docker's CKAN content provider
(status_show, package_show with resources), a listener on 127.0.0.2 (loopback, not allow-listed)
recording whether anything reached it, and the real repo2docker (--no-build: fetch only).
"""

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from binderspawner.builders import BuildRequest, Repo2DockerBuilder
from binderspawner.builders.checkedfetch import checking_session
from binderspawner.errors import LaunchError
from binderspawner.providers import CKANProvider
from binderspawner.providers.base import ResolvedRepo
from tests.support.net import free_port


def serve(host, handler):
    server = ThreadingHTTPServer((host, free_port(host)), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture(scope="module")
def sites():
    """'ckan' on 127.0.0.1 (allowed) and 'internal' on 127.0.0.2 (nobody allowed it)."""
    hits = []

    class Internal(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            body = b"internal secret\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    internal, internal_thread = serve("127.0.0.2", Internal)
    internal_url = f"http://127.0.0.2:{internal.server_address[1]}"
    resources = {}

    class Ckan(BaseHTTPRequestHandler):
        def do_GET(self):
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            if self.path.startswith("/api/3/action/status_show"):
                return self.reply({"success": True, "result": {"ckan_version": "2.10"}})
            if self.path.startswith("/api/3/action/package_show"):
                name = self.path.split("id=", 1)[1]
                urls = [u.format(base=base, internal=internal_url) for u in resources[name]]
                return self.reply({"success": True, "result": {
                    "name": name, "metadata_modified": "2024-01-02T03:04:05.678901",
                    "resources": [{"id": f"r{i}", "url": u} for i, u in enumerate(urls)]}})
            if self.path == "/files/data.csv":
                return self.reply("a,b\n1,2\n")
            if self.path == "/files/moved.csv":
                self.send_response(302)
                self.send_header("Location", f"{internal_url}/moved.csv")
                self.send_header("Content-Length", "0")
                return self.end_headers()
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def reply(self, value):
            body = (value if isinstance(value, str) else json.dumps(value)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    ckan, ckan_thread = serve("127.0.0.1", Ckan)
    try:
        yield {"ckan": f"http://127.0.0.1:{ckan.server_address[1]}", "internal": internal_url,
               "hits": hits, "resources": resources}
    finally:
        for server, thread in ((ckan, ckan_thread), (internal, internal_thread)):
            server.shutdown()
            server.server_close()
            thread.join(10)


@pytest.fixture(autouse=True)
def no_hits(sites):
    sites["hits"].clear()


def ckan():
    return CKANProvider(hosts=["127.0.0.1"], allowed_private_hosts=["127.0.0.1"])


def test_ckan_is_off_until_the_admin_names_a_site(sites):
    spec = "ckan/" + f"{sites['ckan']}/dataset/x".replace("/", "%2F").replace(":", "%3A")
    with pytest.raises(LaunchError, match="c.CKANProvider.hosts") as info:
        CKANProvider().parse(spec)
    assert info.value.status_code == 403
    with pytest.raises(LaunchError, match="not a CKAN site"):
        CKANProvider(hosts=["data.example.org"]).parse(spec)
    assert ckan().parse(spec).fetch_url == f"{sites['ckan']}/dataset/x"


@pytest.mark.parametrize("path", ["/direct", "/redirected"])
def test_checking_session_refuses_addresses_and_redirects_nobody_allowed(sites, path):
    session = checking_session(requests.Session(), ["127.0.0.1"])
    assert session.get(f"{sites['ckan']}/files/data.csv", timeout=10).text == "a,b\n1,2\n"
    url = f"{sites['internal']}/x" if path == "/direct" else f"{sites['ckan']}/files/moved.csv"
    with pytest.raises(requests.ConnectionError, match="127.0.0.2.*loopback"):
        session.get(url, timeout=10)
    assert sites["hits"] == []


def repo2docker_fetch(source, version, tmp_path):
    request = BuildRequest(image="binderspawner-test/data:none", resolved=ResolvedRepo(source, None, version),
                           env={"TMPDIR": str(tmp_path)})
    builder = Repo2DockerBuilder(repo2docker_command=[sys.executable, "-m", "repo2docker"],
                                 content_providers=["Git", "CKAN"])
    builder.provider_for = lambda source: ckan()
    argv = builder.command(request)
    argv.insert(argv.index("--no-run"), "--no-build")
    env = builder.environment(request)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("listed", ["{internal}/secret.txt", "{base}/files/moved.csv"])
def test_a_build_downloads_no_resource_from_an_address_nobody_allowed(sites, tmp_path, listed):
    name = f"d{abs(hash(listed)) % 10000}"
    sites["resources"][name] = ["{base}/files/data.csv", listed]
    source = ckan().parse(f"{sites['ckan']}/dataset/{name}")
    result = repo2docker_fetch(source, f"{name}.v1704164645", tmp_path)
    assert result.returncode != 0, result.stdout[-2000:]
    assert "loopback" in result.stdout + result.stderr
    assert sites["hits"] == []


def test_a_build_downloads_resources_from_admitted_addresses(sites, tmp_path):
    sites["resources"]["fine"] = ["{base}/files/data.csv"]
    source = ckan().parse(f"{sites['ckan']}/dataset/fine")
    result = repo2docker_fetch(source, "fine.v1704164645", tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "Fetching data.csv" in result.stdout + result.stderr
