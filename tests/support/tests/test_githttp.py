"""The smart HTTP git server used for private-repository tests, driven by the real git CLI."""

import base64
import json
import os
import secrets
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.githttp import GitHttpServer, static_tokens, userinfo_tokens
from tests.support.gitserver import GIT_ENV
from tests.support.net import free_port

TOKENS = {name: f"tok-{name}-{secrets.token_hex(8)}" for name in ("alice", "bob", "wendy", "eve")}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    accounts = {TOKENS[name]: name for name in ("alice", "bob", "wendy")}  # eve: unknown token
    srv = GitHttpServer(str(tmp_path_factory.mktemp("githttp")), static_tokens(accounts)).start()
    yield srv
    srv.stop()


def run_git(*args, token=None, user="x-access-token", cwd=None, env=None):
    """Run git as a client would: no prompts, no helpers, the token only in an extra header."""
    env = {**GIT_ENV, "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    for name in ("GIT_ASKPASS", "SSH_ASKPASS", "GIT_CONFIG_PARAMETERS"):
        env.pop(name, None)
    if token is not None:
        basic = base64.b64encode(f"{user}:{token}".encode()).decode()
        env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="http.extraHeader",
                   GIT_CONFIG_VALUE_0=f"Authorization: Basic {basic}")
    return subprocess.run(["git", *args], check=False, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def statuses(server, path_part):
    return [r["status"] for r in server.requests if path_part in r["path"]]


def test_anonymous_reads_public_but_not_private(server):
    public_sha = server.add_repo("anon-public", public=True)
    server.add_repo("anon-private", readers=["alice"])
    out = run_git("ls-remote", server.url("anon-public"))
    assert out.returncode == 0, out.stderr
    assert public_sha in out.stdout

    server.clear_requests()
    out = run_git("ls-remote", server.url("anon-private"))
    assert out.returncode != 0
    assert "could not read Username" in out.stderr or "Authentication failed" in out.stderr
    assert statuses(server, "anon-private") == [401]
    assert server.requests[0]["user"] is None and not server.requests[0]["had_authorization"]


def test_missing_repo_is_challenged_anonymously_and_absent_when_signed_in(server):
    server.clear_requests()
    assert run_git("ls-remote", server.url("no-such-repo")).returncode != 0
    out = run_git("ls-remote", server.url("no-such-repo"), token=TOKENS["alice"])
    assert out.returncode != 0 and "not found" in out.stderr
    assert statuses(server, "no-such-repo") == [401, 404]


def test_reader_lists_and_clones_private_repo(server, tmp_path):
    sha = server.add_repo("priv-read", files={"README.md": "hello\n"}, readers=["alice"])
    out = run_git("ls-remote", server.url("priv-read"), token=TOKENS["alice"])
    assert out.returncode == 0, out.stderr
    assert f"{sha}\trefs/heads/main" in out.stdout

    dest = tmp_path / "clone"
    out = run_git("clone", "-q", server.url("priv-read"), str(dest), token=TOKENS["alice"])
    assert out.returncode == 0, out.stderr
    assert (dest / "README.md").read_text() == "hello\n"
    assert run_git("rev-parse", "HEAD", cwd=dest).stdout.strip() == sha


def test_non_reader_sees_not_found_and_bad_token_is_refused(server):
    server.add_repo("priv-hidden", readers=["alice"])
    server.clear_requests()
    out = run_git("ls-remote", server.url("priv-hidden"), token=TOKENS["bob"])
    assert out.returncode != 0 and "not found" in out.stderr
    out = run_git("ls-remote", server.url("priv-hidden"), token=TOKENS["eve"])
    assert out.returncode != 0
    assert [(r["user"], r["status"]) for r in server.requests] == [("bob", 404), (None, 401)]


def test_writer_pushes_reader_cannot(server, tmp_path):
    server.add_repo("priv-push", readers=["alice"], writers=["wendy"])
    for who in ("wendy", "alice"):
        dest = tmp_path / who
        assert run_git("clone", "-q", server.url("priv-push"), str(dest),
                       token=TOKENS[who]).returncode == 0
        (dest / f"{who}.txt").write_text(who)
        run_git("add", "-A", cwd=dest)
        assert run_git("commit", "-q", "-m", who, cwd=dest).returncode == 0

    server.clear_requests()
    out = run_git("push", "-q", "origin", "HEAD:main", cwd=tmp_path / "wendy", token=TOKENS["wendy"])
    assert out.returncode == 0, out.stderr
    pushed = run_git("rev-parse", "HEAD", cwd=tmp_path / "wendy").stdout.strip()
    assert pushed in run_git("ls-remote", server.url("priv-push"), token=TOKENS["alice"]).stdout

    out = run_git("push", "-q", "origin", "HEAD:refs/heads/alice", cwd=tmp_path / "alice",
                  token=TOKENS["alice"])
    assert out.returncode != 0 and "403" in out.stderr
    assert ("alice", 403) in [(r["user"], r["status"]) for r in server.requests]
    assert "refs/heads/alice" not in run_git("ls-remote", server.url("priv-push"),
                                             token=TOKENS["wendy"]).stdout


def test_revoked_reader_loses_access(server):
    server.add_repo("priv-revoke", readers=["alice", "bob"])
    assert run_git("ls-remote", server.url("priv-revoke"), token=TOKENS["bob"]).returncode == 0
    server.set_access("priv-revoke", readers=["alice"])
    out = run_git("ls-remote", server.url("priv-revoke"), token=TOKENS["bob"])
    assert out.returncode != 0 and "not found" in out.stderr
    assert run_git("ls-remote", server.url("priv-revoke"), token=TOKENS["alice"]).returncode == 0


def test_token_travels_in_header_only(server, tmp_path):
    server.add_repo("priv-record", readers=["alice"])
    server.clear_requests()
    assert run_git("clone", "-q", server.url("priv-record"), str(tmp_path / "c"),
                   token=TOKENS["alice"]).returncode == 0
    assert server.requests and all(r["had_authorization"] and r["user"] == "alice"
                                   for r in server.requests)
    assert {r["method"] for r in server.requests} == {"GET", "POST"}
    recorded = json.dumps(server.requests)
    assert not any(token in recorded for token in TOKENS.values())
    assert "Basic" not in recorded


def test_large_clone_and_chunked_push(server, tmp_path):
    """Bodies over git's 1 MB post buffer are sent chunked; a 2 MB packfile is one."""
    big = os.urandom(2 * 1024 * 1024)
    server.add_repo("priv-big", files={"big.bin": big}, readers=["alice"], writers=["wendy"])
    dest = tmp_path / "big"
    out = run_git("clone", "-q", server.url("priv-big"), str(dest), token=TOKENS["alice"])
    assert out.returncode == 0, out.stderr
    assert (dest / "big.bin").read_bytes() == big

    push = tmp_path / "push"
    assert run_git("clone", "-q", server.url("priv-big"), str(push),
                   token=TOKENS["wendy"]).returncode == 0
    more = os.urandom(2 * 1024 * 1024)
    (push / "more.bin").write_bytes(more)
    run_git("add", "-A", cwd=push)
    run_git("commit", "-q", "-m", "more", cwd=push)
    server.clear_requests()
    out = run_git("push", "-q", "origin", "HEAD:main", cwd=push, token=TOKENS["wendy"])
    assert out.returncode == 0, out.stderr
    assert any(r["chunked"] and r["status"] == 200 for r in server.requests)

    again = tmp_path / "again"
    assert run_git("clone", "-q", server.url("priv-big"), str(again),
                   token=TOKENS["alice"]).returncode == 0
    assert (again / "more.bin").read_bytes() == more


def test_gzip_request_body(server, tmp_path):
    """A fetch with many local-only commits sends a long 'have' list, which git gzips. The local
    commits are dated after the common one, so negotiation offers them all before finding it."""
    server.add_repo("priv-gzip", readers=["alice"])
    dest = tmp_path / "g"
    assert run_git("clone", "-q", server.url("priv-gzip"), str(dest),
                   token=TOKENS["alice"]).returncode == 0
    start = int(time.time()) + 1000
    for i in range(150):
        date = f"@{start + i} +0000"
        run_git("commit", "-q", "--allow-empty", "-m", f"local {i}", cwd=dest,
                env={"GIT_COMMITTER_DATE": date, "GIT_AUTHOR_DATE": date})
    new = server.commit("priv-gzip", {"new.txt": "new\n"})
    server.clear_requests()
    out = run_git("fetch", "-q", "origin", cwd=dest, token=TOKENS["alice"])
    assert out.returncode == 0, out.stderr
    assert run_git("rev-parse", "origin/main", cwd=dest).stdout.strip() == new
    assert any(r["content_encoding"] == "gzip" and r["status"] == 200 for r in server.requests)


def test_userinfo_tokens_asks_the_endpoint_every_time():
    """A userinfo endpoint as OIDC Core 5.3 describes it: 200 with claims for a valid bearer
    token, 401 otherwise."""
    valid = {"good-token": "carol"}

    class Userinfo(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            auth = self.headers.get("Authorization", "")
            user = valid.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None
            body = json.dumps({"sub": "1", "preferred_username": user} if user else
                              {"error": "invalid_token"}).encode()
            self.send_response(200 if user else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Userinfo)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        authorize = userinfo_tokens(f"http://127.0.0.1:{httpd.server_port}/userinfo")
        assert authorize("anyone", "good-token") == "carol"
        assert authorize("anyone", "bad-token") is None
        valid.clear()  # revoked: no cache may keep it alive
        assert authorize("anyone", "good-token") is None
    finally:
        httpd.shutdown()
        httpd.server_close()
