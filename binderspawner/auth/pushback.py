"""Saving back to the repository from a member's own server (off by default).

Binder's documentation says you cannot save back to your repository. Here a member may, when the
admin turns it on, and the member's token never enters the server: git in the server talks to the
hub (``/hub/binder/git/…``, rewritten from the repository's URL by ``url.<hub>.insteadOf``), with
the server's own API token as its password. The hub checks the server (this member's, never shared,
not even once), relays to the one repository the server was launched from (whatever URL git asked
for) and only the ref updates ``c.PushBack.allowed_refs`` allows, and adds the member's credentials
on its side of the connection. A process in the server can therefore push to that repository's
allowed branches while the server runs, and nothing else: no token to copy, no other repository.
"""

import base64
import binascii
import fnmatch
import hmac
import re

from jupyterhub import orm
from sqlalchemy import Column, DateTime, ForeignKey, Integer, MetaData, Table, event, func, insert, select
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Bool, Int, List, Unicode
from traitlets.config import Configurable

from binderspawner.web.apihandler import JsonApiHandler

ROUTE = r"/binder/git/repo(?P<suffix>[^?]*?)/(?P<operation>info/refs|git-receive-pack|git-upload-pack)"
PROXY_PATH = "/binder/git/repo"  # under the hub's base URL; git appends e.g. /info/refs
SERVICES = {"git-receive-pack", "git-upload-pack"}
ZERO = "0" * 40
REALM = "binder push-back (the server's API token)"

# git runs '!' helpers through sh with 'get', 'store' or 'erase' appended; only 'get' answers, with
# the server's API token from the server's own environment (never the member's token).
HELPER = ("!f() { test \"$1\" = get && printf 'username=server\\npassword=%s\\n' "
          "\"$JUPYTERHUB_API_TOKEN\"; }; f")


class PushBack(Configurable):
    enabled = Bool(
        False,
        help="""Let members push commits back to the repository they launched, from their own
        server, with their own access rights. The member's token never enters the server: git
        there pushes through the hub, which adds the member's credentials for that one repository.
        Refused for a server that was ever shared (or had a share code), so a collaborator, or a
        process one left behind, never pushes as its owner. Needs an authenticator from
        binderspawner.auth whose token may write (GitHub's 'repo' scope; GitLab 'write_repository').""",
    ).tag(config=True)

    allowed_refs = List(
        Unicode(),
        ["refs/heads/*"],
        help="""Refs a push from a server may create or update (shell patterns on the full ref
        name), e.g. ["refs/heads/binder-*"] to keep servers off the main branch. Deleting a ref
        is always refused; the git server's own branch protection applies on top.""",
    ).tag(config=True)

    max_push_bytes = Int(
        100 * 1024 * 1024,
        help="Largest push (request body, bytes) the hub relays to the git server.",
    ).tag(config=True)


def container_env(enabled, credentials, repo_url, hub_api_url):
    """Environment that sends git in the server through the hub for ``repo_url`` (pure). Empty
    unless push-back is on and the member's token may go to the repository's host."""
    if not (enabled and credentials is not None and repo_url and hub_api_url
            and credentials.covers(repo_url)):
        return {}
    proxy = hub_api_url.rstrip("/").rsplit("/api", 1)[0] + PROXY_PATH
    return {
        "GIT_CONFIG_COUNT": "2",
        "GIT_CONFIG_KEY_0": f"url.{proxy}.insteadOf",
        "GIT_CONFIG_VALUE_0": repo_url,
        "GIT_CONFIG_KEY_1": f"credential.{proxy}.helper",
        "GIT_CONFIG_VALUE_1": HELPER,
    }


def refusal(*, enabled, own_server, ever_shared, covered):
    """Why the hub will not push or fetch for this server now (None: it will). Pure."""
    if not enabled:
        return "Pushing back from Binder servers is turned off on this hub (c.PushBack.enabled)."
    if not own_server:
        return "Only a server's own API token can push through the hub for its owner."
    if ever_shared:
        return ("This server is or was shared, so pushing with your credentials is turned off for it. "
                "Stop and delete this server and launch the repository again to push from a fresh one.")
    if not covered:
        return "Your login's token is not for this repository's host, or your login has expired."
    return None


# --- the ref updates a push asks for (git's pkt-line protocol) ---------------------------------------

_COMMAND = re.compile(r"^([0-9a-f]{40}|[0-9a-f]{64}) ([0-9a-f]{40}|[0-9a-f]{64}) (\S+)$")


def push_commands(body):
    """[(old, new, ref)] from the start of a git-receive-pack request body (pure); ValueError if
    it is not one."""
    return read_push(body)[0]


def read_push(body):
    """([(old, new, ref)], {capabilities}) from a git-receive-pack request body (pure)."""
    commands, capabilities, pos = [], set(), 0
    while True:
        try:
            length = int(body[pos:pos + 4], 16)
        except ValueError:
            raise ValueError("not a git push") from None
        if length == 0:
            return commands, capabilities
        if length < 4 or pos + length > len(body):
            raise ValueError("not a git push")
        line, _, caps = body[pos + 4:pos + length].partition(b"\0")
        line = line.decode("utf-8", "replace").rstrip("\n")
        if caps and not capabilities:
            capabilities = set(caps.decode("utf-8", "replace").split())
        pos += length
        if line.startswith("shallow "):
            continue
        found = _COMMAND.match(line)
        if not found:
            raise ValueError("not a git push")
        commands.append(found.groups())


def ref_refusal(commands, allowed_refs):
    """Why these ref updates are refused (None: allowed). Pure."""
    if not commands:
        return "The push names no ref to update."
    for old, new, ref in commands:
        if set(new) == {"0"}:
            return f"Deleting {ref} from a Binder server is not allowed."
        if not any(fnmatch.fnmatchcase(ref, pattern) for pattern in allowed_refs):
            return (f"Pushing to {ref} from a Binder server is not allowed on this hub "
                    f"(c.PushBack.allowed_refs: {', '.join(allowed_refs) or 'none'}).")
    return None


def _pkt(data):
    return b"%04x" % (len(data) + 4) + data


def rejected_push(commands, capabilities, reason):
    """A git-receive-pack answer that rejects every ref update with ``reason`` (pure), so git shows
    it ('! [remote rejected] <ref> (<reason>)' and 'remote: <reason>') instead of a bare HTTP error."""
    reason = reason.replace("\n", " ")
    report = _pkt(b"unpack ok\n") + b"".join(
        _pkt(f"ng {ref} {reason}\n".encode()) for _, _, ref in commands) + b"0000"
    if not capabilities & {"side-band", "side-band-64k"}:
        return report
    size = 65515 if "side-band-64k" in capabilities else 995
    chunks = [_pkt(b"\2" + f"{reason}\n".encode())]
    chunks += [_pkt(b"\1" + report[i:i + size]) for i in range(0, len(report), size)]
    return b"".join(chunks) + b"0000"


# --- servers that were ever shared ------------------------------------------------------------------
# JupyterHub deletes a share's row when it is revoked; this table keeps the fact that a server was
# shared for as long as the server exists (the row goes with the server).

_metadata = MetaData()
SHARED_SERVERS = Table(
    "binderspawner_shared_servers", _metadata,
    Column("spawner_id", Integer, ForeignKey(orm.Spawner.__table__.c.id, ondelete="CASCADE"),
           primary_key=True),
    Column("first_shared", DateTime, server_default=func.now()),
)


def _record_shared(mapper, connection, target):
    spawner_id = target.spawner_id or (target.spawner.id if target.spawner is not None else None)
    if spawner_id is None:
        return
    SHARED_SERVERS.create(connection, checkfirst=True)
    if connection.execute(select(SHARED_SERVERS.c.spawner_id).where(
            SHARED_SERVERS.c.spawner_id == spawner_id)).first() is None:
        connection.execute(insert(SHARED_SERVERS).values(spawner_id=spawner_id))


def _forget_server(mapper, connection, target):
    SHARED_SERVERS.create(connection, checkfirst=True)
    connection.execute(SHARED_SERVERS.delete().where(SHARED_SERVERS.c.spawner_id == target.id))


for _model in (orm.Share, orm.ShareCode):
    if not event.contains(_model, "after_insert", _record_shared):
        event.listen(_model, "after_insert", _record_shared)
if not event.contains(orm.Spawner, "after_delete", _forget_server):
    event.listen(orm.Spawner, "after_delete", _forget_server)


def ever_shared(db, orm_spawner):
    """Shared now (with a user or group, or by a share code), or at any time since it was made, or
    running on a persistent home that was ever shared (homes/records.py: the record follows the home)."""
    from binderspawner.homes.records import server_home_ever_shared

    if server_home_ever_shared(db, orm_spawner):
        return True
    if (db.query(orm.Share).filter_by(spawner_id=orm_spawner.id).first()
            or db.query(orm.ShareCode).filter_by(spawner_id=orm_spawner.id).first()):
        return True
    connection = db.connection()
    SHARED_SERVERS.create(connection, checkfirst=True)
    return connection.execute(select(SHARED_SERVERS.c.spawner_id).where(
        SHARED_SERVERS.c.spawner_id == orm_spawner.id)).first() is not None


def own_server(user, token):
    """The user's server whose own API token this is, or None."""
    if user is None or getattr(user, "kind", "user") != "user" or not token:
        return None
    return next((s for s in user.spawners.values()
                 if s.api_token and hmac.compare_digest(s.api_token, token)), None)


def _basic_password(header):
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        _, sep, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return password if sep else None


class GitRelayHandler(JsonApiHandler):
    """GET .../info/refs?service=…, POST .../git-receive-pack and .../git-upload-pack, from git in
    a member's server: relayed to the server's own repository with the member's credentials."""

    def get_auth_token(self):
        # git sends the helper's answer as HTTP basic auth: the password is the server's API token
        return _basic_password(self.request.headers.get("Authorization")) or super().get_auth_token()

    def check_xsrf_cookie(self):
        pass  # only the server's API token authenticates here (no cookies)

    def write_error(self, status_code, **kwargs):
        # git prints a text/plain error body to the user ("remote: …")
        error = kwargs.get("exc_info", (None, None))[1]
        if status_code == 401:
            self.set_header("WWW-Authenticate", f'Basic realm="{REALM}"')
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish((getattr(error, "log_message", None) or self._reason) + "\n")

    async def get(self, suffix, operation):
        service = self.get_argument("service", "")
        if operation != "info/refs" or service not in SERVICES:
            raise web.HTTPError(404, "Only git's smart HTTP protocol is relayed here.")
        await self._relay(suffix, f"info/refs?service={service}", service, "GET", None)

    async def post(self, suffix, operation):
        if operation not in SERVICES:
            raise web.HTTPError(404, "Only git's smart HTTP protocol is relayed here.")
        await self._relay(suffix, operation, operation, "POST", self.request.body)

    async def _relay(self, suffix, path, service, method, body):
        if suffix not in ("", "/", ".git"):
            raise web.HTTPError(404, "This server may push only to the repository it was launched from.")
        settings = PushBack(config=self.settings.get("config"))
        token = self.get_auth_token()
        if not token:
            raise web.HTTPError(401, "Authenticate with the server's API token.")
        user = self.current_user
        spawner = own_server(user, token)
        repo_url = (getattr(spawner, "launch_state", None) or {}).get("fetch_url", "")
        credentials = None
        shared = spawner is not None and ever_shared(self.db, spawner.orm_spawner)
        if spawner is not None and settings.enabled and not shared and repo_url \
                and hasattr(self.authenticator, "member_credentials"):
            # as before a spawn: a fresh token, and still a member of the lab
            if not self.authenticator.refresh_pre_spawn or await self.refresh_auth(user, force=True):
                credentials = self.authenticator.member_credentials(await user.get_auth_state())
        problem = refusal(enabled=settings.enabled, own_server=spawner is not None, ever_shared=shared,
                          covered=bool(credentials and repo_url and credentials.covers(repo_url)))
        if problem:
            raise web.HTTPError(403, problem)
        if service == "git-receive-pack" and method == "POST":
            if len(body) > settings.max_push_bytes:
                raise web.HTTPError(413, f"The push is larger than c.PushBack.max_push_bytes "
                                         f"({settings.max_push_bytes} bytes).")
            try:
                commands, capabilities = read_push(body)
            except ValueError as e:
                raise web.HTTPError(400, str(e)) from None
            problem = ref_refusal(commands, settings.allowed_refs)
            if problem:
                self.log.warning("Refused a push from %s's server %r: %s", user.name, spawner.name, problem)
                self.set_header("Content-Type", "application/x-git-receive-pack-result")
                self.set_header("Cache-Control", "no-cache")
                return self.finish(rejected_push(commands, capabilities, problem))
            self.log.info("Pushing %s for %s's server %r to %s", " ".join(c[2] for c in commands),
                          user.name, spawner.name, repo_url)
        await self._forward(repo_url.rstrip("/") + "/" + path, method, body, credentials)

    async def _forward(self, url, method, body, credentials):
        """One request to the repository's git server with the member's credentials; the answer is
        read whole (with tornado's curl client a streamed body may arrive after the fetch ends)."""
        basic = base64.b64encode(f"{credentials.username}:{credentials.token}".encode()).decode()
        headers = {"Authorization": f"Basic {basic}", "User-Agent": "binderspawner-push-back"}
        for name in ("Content-Type", "Content-Encoding", "Accept", "Git-Protocol"):
            if name in self.request.headers:
                headers[name] = self.request.headers[name]
        request = HTTPRequest(url, method=method, body=body, headers=headers, follow_redirects=False,
                              decompress_response=False, request_timeout=600)
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except (HTTPClientError, OSError) as e:
            raise web.HTTPError(502, f"The repository's git server could not be reached: {e}") from None
        if response.code in (401, 403, 404):
            raise web.HTTPError(403, f"The git server refused your credentials for this repository "
                                     f"(HTTP {response.code}): you may not write to it, or your token lacks "
                                     "the scope to push.")
        if response.code != 200:
            raise web.HTTPError(502, f"The repository's git server answered HTTP {response.code}.")
        for name in ("Content-Type", "Content-Encoding", "Cache-Control"):
            if name in response.headers:
                self.set_header(name, response.headers[name])
        self.finish(response.body or b"")
