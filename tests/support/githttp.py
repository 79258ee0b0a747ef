"""A real git server over smart HTTP with basic auth on 127.0.0.1, for tests of private repositories.

Requests go to the real ``git http-backend`` run as a CGI program, so clients speak the same
protocol (v0/v2, gzip and chunked request bodies) as with any git hosting. Access follows what
GitHub and GitLab document for private repositories: anonymous requests for anything that is not
public get 401 with a Basic challenge, bad credentials get 401, and a signed-in account without
read access gets 404, as if the repository did not exist.

Requests are recorded without the Authorization value, so tests can show where a token travelled.
"""

import base64
import binascii
import os
import re
import shutil
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import requests

from .gitserver import RepoStore, git
from .net import free_port

REALM = "binderspawner tests"
_REPO_PATH = re.compile(r"^/(?P<name>.+?)\.git(?P<rest>/.*)?$")
_COPY_BUFFER = 64 * 1024


def static_tokens(mapping):
    """An ``authorize`` callable accepting {token: account} (any user name, as GitHub tokens)."""
    mapping = dict(mapping)
    return lambda username, password: mapping.get(password)


def userinfo_tokens(userinfo_url):
    """An ``authorize`` callable asking an OIDC userinfo endpoint about the token, every time
    (nothing is cached, so a revoked token stops working at once)."""
    def authorize(username, password):
        r = requests.get(userinfo_url, headers={"Authorization": f"Bearer {password}"}, timeout=5)
        if r.status_code != 200:
            return None
        return r.json().get("preferred_username")
    return authorize


class GitHttpServer(RepoStore):
    def __init__(self, root, authorize, host="127.0.0.1"):
        """``host``: the address to listen on; a Docker network's gateway lets containers reach it."""
        super().__init__(root)
        self.authorize = authorize
        self.host = host
        self.port = free_port(host)
        self.requests = []
        self._access = {}
        self._lock = threading.Lock()
        self._httpd = None
        self._thread = None

    # --- repositories and rights ---------------------------------------------------------------

    def configure_bare(self, bare):
        super().configure_bare(bare)
        git("config", "http.receivepack", "true", cwd=bare)

    def add_repo(self, name, files=None, readers=None, writers=None, public=False, source_dir=None):
        """Create repo ``name`` with a fresh nonce commit; returns its sha. Writers may also read."""
        sha = super().add_repo(name, source_dir=source_dir, files=files)
        with self._lock:
            self._access[name] = {"readers": set(), "writers": set(), "public": False}
        self.set_access(name, readers=readers or (), writers=writers or (), public=public)
        return sha

    def set_access(self, name, readers=None, writers=None, public=None):
        """Change rights of an existing repo; arguments left as None stay unchanged."""
        with self._lock:
            access = self._access[name]
            if readers is not None:
                access["readers"] = set(readers)
            if writers is not None:
                access["writers"] = set(writers)
            if public is not None:
                access["public"] = bool(public)

    def _rights(self, name, account):
        """(can_read, can_write) of ``account`` (None: anonymous); None if there is no such repo."""
        with self._lock:
            access = self._access.get(name)
            if access is None:
                return None
            write = account is not None and account in access["writers"]
            read = write or access["public"] or (account is not None and account in access["readers"])
            return read, write

    # --- server ----------------------------------------------------------------------------------

    def start(self):
        self._httpd = ThreadingHTTPServer((self.host, self.port), _handler_for(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True,
                                        name=f"git-http-{self.port}")
        self._thread.start()
        return self

    def stop(self):
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(10)
            self._httpd = None

    def url(self, name):
        return f"http://{self.host}:{self.port}/{name}.git"

    def clear_requests(self):
        with self._lock:
            self.requests.clear()

    def _record(self, entry):
        with self._lock:
            self.requests.append(entry)

    def _cgi_env(self, handler, path, query, account, content_length):
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_PROJECT_ROOT": self.repos,
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": handler.request_version,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": str(self.port),
            "REQUEST_METHOD": handler.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": handler.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(content_length),
            "REMOTE_ADDR": handler.client_address[0],
        }
        if account is not None:
            env["REMOTE_USER"] = account
            env["AUTH_TYPE"] = "Basic"
        for header, var in (("Content-Encoding", "HTTP_CONTENT_ENCODING"),
                            ("Git-Protocol", "HTTP_GIT_PROTOCOL")):
            if handler.headers.get(header):
                env[var] = handler.headers[header]
        return env


def _basic_credentials(value):
    """(username, password) from a Basic Authorization value, or None if it is not one."""
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, sep, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (username, password) if sep else None


def _handler_for(server):
    class Handler(BaseHTTPRequestHandler):
        server_version = "binderspawner-test-git-http"
        _entry = None

        def log_message(self, format, *args):
            pass  # the request list is the log; stderr stays quiet

        def send_response(self, code, message=None):
            # Recorded before any byte of the response leaves, so a client that has its answer
            # finds its request in the list.
            self._entry["status"] = code
            server._record(self._entry)
            super().send_response(code, message)

        def do_GET(self):
            self._serve()

        def do_POST(self):
            self._serve()

        def _serve(self):
            split = urlsplit(self.path)
            path, query = unquote(split.path), split.query
            self._entry = entry = {
                "method": self.command, "path": path, "query": query, "user": None, "status": None,
                "had_authorization": "Authorization" in self.headers,
                "chunked": "chunked" in self.headers.get("Transfer-Encoding", "").lower(),
                "content_encoding": self.headers.get("Content-Encoding")}
            try:
                self._authorized_serve(path, query, entry)
            except Exception:
                if entry["status"] is None:
                    self._plain(500, "internal error\n")
                raise

        def _authorized_serve(self, path, query, entry):
            body = self._read_body()  # always drain the body, even when refusing
            account = None
            if entry["had_authorization"]:
                credentials = _basic_credentials(self.headers["Authorization"])
                account = credentials and server.authorize(*credentials)
                if account is None:
                    return self._challenge()
                entry["user"] = account
            match = _REPO_PATH.match(path)
            rights = match and server._rights(match["name"], account)
            writing = (path.endswith("/git-receive-pack")
                       or "service=git-receive-pack" in query.split("&"))
            if not rights or not rights[0] or (writing and not rights[1]):
                if account is None:
                    return self._challenge()
                if rights and rights[0]:
                    return self._plain(403, "write access denied\n")
                return self._plain(404, "Repository not found\n")
            return self._run_backend(path, query, account, body)

        def _read_body(self):
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                parts = []
                while True:
                    size = int(self.rfile.readline().split(b";", 1)[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline().strip():
                            pass  # trailers
                        return b"".join(parts)
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()  # CRLF after each chunk
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _challenge(self):
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'Basic realm="{REALM}"')
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return 401

        def _plain(self, status, text):
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return status

        def _run_backend(self, path, query, account, body):
            env = server._cgi_env(self, path, query, account, len(body))
            # Files, not pipes, for stdin/stderr: the backend may write before reading all input.
            with tempfile.TemporaryFile() as stdin, tempfile.TemporaryFile() as stderr:
                stdin.write(body)
                stdin.seek(0)
                proc = subprocess.Popen(["git", "http-backend"], stdin=stdin, stdout=subprocess.PIPE,
                                        stderr=stderr, env=env)
                try:
                    status, reason, headers = self._cgi_headers(proc.stdout)
                    self.send_response(status, reason)
                    for name, value in headers:
                        self.send_header(name, value)
                    self.end_headers()  # HTTP/1.0: the body runs until the connection closes
                    shutil.copyfileobj(proc.stdout, self.wfile, _COPY_BUFFER)
                finally:
                    proc.stdout.close()
                    proc.wait(60)
            return status

        @staticmethod
        def _cgi_headers(stdout):
            status, reason, headers = 200, None, []
            for line in iter(stdout.readline, b""):
                line = line.decode("latin-1").rstrip("\r\n")
                if not line:
                    break
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    code, _, reason = value.strip().partition(" ")
                    status, reason = int(code), reason or None
                else:
                    headers.append((name.strip(), value.strip()))
            return status, reason, headers

    return Handler
