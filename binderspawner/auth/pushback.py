"""Saving back to the repository from a member's own server (off by default).

Binder's documentation says you cannot save back to your repository. Here a member may, when the
admin turns it on: git in their server asks a credential helper, the helper asks the hub (with the
server's own API token) and gets the member's current token for that one git operation. The token
is never in the container's environment or on its disk, and the hub stops handing it out as soon as
the server is shared (or has an open share code), so collaborators never push as the owner.
"""

import hmac
import json

from jupyterhub import orm
from tornado import web
from traitlets import Bool
from traitlets.config import Configurable

from binderspawner.web.apihandler import JsonApiHandler

ROUTE = "/binder/git-credential"

# git runs the helper through sh with 'get', 'store' or 'erase'; only 'get' answers. The hub URL is
# the server's own JUPYTERHUB_API_URL without its '/api'.
HELPER_SOURCE = """\
import json, os, sys, urllib.request
if sys.argv[1:] != ["get"]:
    sys.exit(0)
hub = os.environ["JUPYTERHUB_API_URL"].rsplit("/api", 1)[0]
request = urllib.request.Request(hub + "%s", headers={
    "Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"]})
try:
    with urllib.request.urlopen(request, timeout=20) as response:
        answer = json.load(response)
except urllib.error.HTTPError as e:
    sys.stderr.write("binder: " + json.loads(e.read() or b"{}").get("message", str(e)) + "\\n")
    sys.exit(1)
sys.stdout.write("username=%%s\\npassword=%%s\\n" %% (answer["username"], answer["password"]))
""" % ROUTE


class PushBack(Configurable):
    enabled = Bool(
        False,
        help="""Let members push commits back to the repository they launched, from their own
        server, with their own access rights. git in the server gets the member's token from the
        hub for each push (nothing is stored in the server). Refused while the server is shared
        with anyone, so a collaborator cannot push as its owner. Needs an authenticator from
        binderspawner.auth whose token may write (GitHub's 'repo' scope; GitLab 'write_repository').""",
    ).tag(config=True)


def container_env(enabled, credentials, repo_url):
    """Environment that points git in the server at the hub's credential helper for ``repo_url``
    (pure). Empty unless push-back is on and the member's token may go to the repository's host."""
    if not (enabled and credentials is not None and repo_url and credentials.covers(repo_url)):
        return {}
    return {
        "BINDER_GIT_CREDENTIAL_HELPER": HELPER_SOURCE,
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"credential.{repo_url}.helper",
        "GIT_CONFIG_VALUE_0": '!python3 -c "$BINDER_GIT_CREDENTIAL_HELPER"',
    }


def refusal(*, enabled, own_server, shared, covered):
    """Why the hub will not hand out the member's token now (None: it will). Pure."""
    if not enabled:
        return "Pushing back from Binder servers is turned off on this hub (c.PushBack.enabled)."
    if not own_server:
        return "Only a server's own API token can ask for its owner's git credentials."
    if shared:
        return ("This server is shared, so pushing with your credentials is turned off. Revoke its "
                "shares (and share codes) to push from it again.")
    if not covered:
        return "Your login's token is not for this repository's host, or your login has expired."
    return None


def is_shared(db, orm_spawner):
    """Shared with a user or group, or shareable by an unused share code."""
    return bool(db.query(orm.Share).filter_by(spawner_id=orm_spawner.id).first()
                or db.query(orm.ShareCode).filter_by(spawner_id=orm_spawner.id).first())


class GitCredentialHandler(JsonApiHandler):
    """GET /hub/binder/git-credential, called by the helper inside a member's server."""

    async def get(self):
        user = self.current_user
        spawner = own_server(user, self.get_auth_token() or "")
        enabled = PushBack(config=self.settings.get("config")).enabled
        credentials = None
        repo_url = (getattr(spawner, "launch_state", None) or {}).get("fetch_url", "")
        if spawner is not None and enabled and hasattr(self.authenticator, "member_credentials"):
            # as before a spawn: a fresh token, and still a member of the lab
            if not self.authenticator.refresh_pre_spawn or await self.refresh_auth(user, force=True):
                credentials = self.authenticator.member_credentials(await user.get_auth_state())
        problem = refusal(enabled=enabled, own_server=spawner is not None,
                          shared=spawner is not None and is_shared(self.db, spawner.orm_spawner),
                          covered=bool(credentials and repo_url and credentials.covers(repo_url)))
        if problem:
            raise web.HTTPError(403, problem)
        self.log.info("Handing %s's git credentials to their server %r for %s", user.name,
                      spawner.name, repo_url)
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps({"username": credentials.username, "password": credentials.token}))


def own_server(user, token):
    """The user's server whose own API token this is, or None."""
    if user is None or getattr(user, "kind", "user") != "user" or not token:
        return None
    return next((s for s in user.spawners.values()
                 if s.api_token and hmac.compare_digest(s.api_token, token)), None)
