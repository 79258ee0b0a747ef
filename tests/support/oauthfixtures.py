"""Local stand-ins for GitHub and GitLab as a lab's sign-in service and repository host.

GitHub.com and GitLab.com cannot be reached from the test machines, so oauthenticator and the
providers talk to these tornado servers on 127.0.0.1 instead (one per service, each on its own port,
so that a token bound to one host can be seen not to reach the other). They answer as the services'
documentation describes:

GitHub (``github_url`` = ``url()``; the REST API under /api/v3, where oauthenticator and GitHub
Enterprise Server put it for any host but github.com):
  - "Authorizing OAuth apps", web application flow: GET /login/oauth/authorize redirects to the
    redirect_uri (same host and port as the registered callback, path at or below it) with ``code``
    and ``state``; POST /login/oauth/access_token answers {"access_token", "token_type": "bearer",
    "scope": "<comma-separated>"} (JSON or form-encoded, after Accept), and failures with status
    200 and "error" / "error_description" (incorrect_client_credentials, bad_verification_code,
    redirect_uri_mismatch). PKCE (S256) is checked when a code_challenge was sent.
  - GET /user (401 "Requires authentication" / "Bad credentials"); GET /user/teams.
  - GET /orgs/{org}/members/{username}: 204 member and 404 not a member when the requester is a
    member of the org, else 302 to /orgs/{org}/public_members/{username} (204 / 404).
  - GET /orgs/{org}/teams/{team_slug}/members/{username} ("Get team member (Legacy)"): 204 / 404.
  - GET /repos/{owner}/{repo}/commits/{ref} with Accept application/vnd.github.sha: the sha
    (apifixtures.GitHubCommit). A private repository the token cannot read answers 404, exactly as
    a missing one does. Read access: the repository's ``readers`` or members of its ``teams``.

GitLab (``gitlab_url`` = ``url()``):
  - OAuth 2.0 identity provider API: GET /oauth/authorize (redirect_uri must equal the registered
    one) and POST /oauth/token for the authorization_code and refresh_token grants: {"access_token",
    "token_type": "Bearer", "expires_in", "refresh_token", "scope", "created_at"}; refreshing
    invalidates the old access and refresh tokens; errors 400 invalid_grant / 401 invalid_client.
  - GET /api/v4/user and /api/v4/version (401 without a valid token; an expired one answers
    {"error": "invalid_token", "error_description": "Token is expired. ..."}).
  - GET /api/v4/groups/:id/members/all/:user_id and /api/v4/projects/:id/members/all/:user_id:
    the member (with access_level, inherited memberships included) or 404.
  - GET /api/v4/projects/:id (numeric id or URL-encoded path) and
    /api/v4/projects/:id/repository/commits/:sha (apifixtures' handlers): 404 "Project Not Found"
    for a private project the token cannot read (Guest sees the project, Reporter reads code).

The authorize endpoints approve at once for ``state.signed_in``: the test's stand-in for a person who
has signed in at the provider and approved the app. Requests are recorded as ``Request(method, uri,
authorized, who)``: whether an Authorization header came and whose live token it carried, never
the token. The servers keep only digests of the codes and tokens they issue.
"""

import base64
import hashlib
import secrets
import time
from collections import namedtuple
from urllib.parse import urlencode, urlsplit

import tornado.escape
import tornado.web

from .apifixtures import ApiFixtures, GitHubCommit, GitLabCommit, GitLabProject, Handler, State

Request = namedtuple("Request", "method uri authorized who")

GITHUB_DOCS = "https://docs.github.com/rest"
CODE_SECONDS = 600  # both services let an authorization code live ten minutes


def _digest(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


def _with_query(url, **params):
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


def _pkce_ok(grant, verifier):
    challenge = grant.get("challenge")
    if not challenge:
        return True
    if grant.get("method", "plain") == "S256":
        computed = base64.urlsafe_b64encode(hashlib.sha256((verifier or "").encode()).digest())
        return computed.decode().rstrip("=") == challenge
    return verifier == challenge


class ProviderState(State):
    """One service's accounts, codes and tokens; tests change memberships between requests."""

    token_prefix = ""
    first_id = 1

    def __init__(self, client_id, client_secret):
        super().__init__()
        self.client_id = client_id
        self.client_secret = client_secret
        self.callback_url = None  # the OAuth app's registered callback; None accepts any
        self.signed_in = None  # login of the person signed in at the provider, or None
        self.users = {}  # login -> {"id": int, "name": str}
        self.grants = {}  # digest of a code or token -> {"kind", "login", ...}
        self.requests = []  # Request tuples

    def add_user(self, login):
        if login not in self.users:
            self.users[login] = {"id": self.first_id + len(self.users), "name": login.title()}
        return self.users[login]["id"]

    def login_of_id(self, user_id):
        return next((login for login, u in self.users.items() if str(u["id"]) == str(user_id)), None)

    # codes and tokens --------------------------------------------------------------------------

    def issue(self, kind, login, **info):
        secret = self.token_prefix + secrets.token_urlsafe(24)
        self.grants[_digest(secret)] = {"kind": kind, "login": login, "issued": time.time(), **info}
        return secret

    def issue_token(self, login):
        """An access token for ``login``, as if they had just signed in to the app."""
        self.add_user(login)
        return self.issue("access", login)

    def take_code(self, code):
        """The grant of a live authorization code, used up (codes work once), or None."""
        grant = self.grants.pop(_digest(code or ""), None)
        if grant is None or grant["kind"] != "code" or time.time() - grant["issued"] > CODE_SECONDS:
            return None
        return grant

    def access_grant(self, token):
        grant = self.grants.get(_digest(token)) if token else None
        return grant if grant and grant["kind"] == "access" else None

    def holder(self, token):
        """Login of a live access token, else None."""
        grant = self.access_grant(token)
        if grant and not grant.get("expired") and not grant.get("revoked"):
            return grant["login"]
        return None

    def expire_tokens(self, login):
        """``login``'s access tokens expire now (refresh tokens stay good)."""
        for grant in self.grants.values():
            if grant["kind"] == "access" and grant["login"] == login:
                grant["expired"] = True

    def requests_by(self, login):
        return [r for r in self.requests if r.who == login]


class GitHubState(ProviderState):
    token_prefix = "gho_"  # GitHub's documented prefix of OAuth access tokens
    first_id = 1001

    def __init__(self, client_id, client_secret):
        super().__init__(client_id, client_secret)
        self.orgs = {}  # org -> {"members": set of logins, "public": set of logins}
        self.teams = {}  # "org:team-slug" -> set of logins

    def add_org_member(self, org, login, public=False):
        self.add_user(login)
        entry = self.orgs.setdefault(org, {"members": set(), "public": set()})
        entry["members"].add(login)
        if public:
            entry["public"].add(login)

    def add_team_member(self, org, team, login):
        self.add_org_member(org, login)  # on GitHub every team member is a member of its org
        self.teams.setdefault(f"{org}:{team}", set()).add(login)

    def remove_team_member(self, org, team, login):
        self.teams.get(f"{org}:{team}", set()).discard(login)

    def add_repo(self, full_name, refs, default="main", readers=(), teams=()):
        """A private repository readable by ``readers`` and members of ``teams`` ("org:slug")."""
        self.github[full_name] = {"refs": dict(refs), "default": default, "private": True,
                                  "readers": set(readers), "teams": set(teams)}

    def can_read(self, login, repo):
        if not repo.get("private"):
            return True
        return login is not None and (login in repo.get("readers", ()) or any(
            login in self.teams.get(team, ()) for team in repo.get("teams", ())))


class GitLabState(ProviderState):
    first_id = 2001

    def __init__(self, client_id, client_secret):
        super().__init__(client_id, client_secret)
        self.groups = {}  # full path -> {"id": int, "members": {login: access_level}}
        self.expires_in = 7200  # what the token endpoint announces

    def add_group(self, path):
        return self.groups.setdefault(path, {"id": 3001 + len(self.groups), "members": {}})

    def add_group_member(self, path, login, access_level=30):
        self.add_user(login)
        self.add_group(path)["members"][login] = access_level

    def remove_group_member(self, path, login):
        self.groups.get(path, {}).get("members", {}).pop(login, None)

    def add_project(self, path, refs, default="main", members=None):
        """A private project; members: {login: access_level}; its groups' members inherit."""
        for login in members or {}:
            self.add_user(login)
        self.gitlab[path] = {"id": 4001 + len(self.gitlab), "refs": dict(refs), "default": default,
                             "private": True, "members": dict(members or {})}

    def group_level(self, login, path):
        """Access level in a group, memberships of its parent groups included ("members/all")."""
        parts = path.split("/")
        return max([self.groups.get("/".join(parts[:i]), {}).get("members", {}).get(login, 0)
                    for i in range(1, len(parts) + 1)] + [0])

    def project_level(self, login, path):
        namespace = path.rpartition("/")[0]
        direct = self.gitlab.get(path, {}).get("members", {}).get(login, 0)
        return max(direct, self.group_level(login, namespace) if namespace else 0)

    def find_group(self, id_or_path):
        if id_or_path.isdigit():
            return next(((p, g) for p, g in self.groups.items() if str(g["id"]) == id_or_path), (None, None))
        return id_or_path, self.groups.get(id_or_path)

    def project_path(self, id_or_path):
        if id_or_path.isdigit():
            return next((p for p, r in self.gitlab.items() if str(r.get("id")) == id_or_path), id_or_path)
        return id_or_path


# handlers shared by both services ---------------------------------------------------------------


class StandInHandler(Handler):
    """Records requests without their credentials; knows whose token came."""

    def prepare(self):
        self.state.requests.append(Request(self.request.method, self.request.uri,
                                           "Authorization" in self.request.headers, self.login()))

    def bearer(self):
        scheme, _, value = self.request.headers.get("Authorization", "").partition(" ")
        return value.strip() if scheme.lower() in ("bearer", "token") else None

    def login(self):
        return self.state.holder(self.bearer())

    def authorized(self):
        return self.login() is not None

    def client_credentials(self):
        """client_id and client_secret from the form body or HTTP Basic (RFC 6749, 2.3.1)."""
        scheme, _, value = self.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            client_id, _, secret = base64.b64decode(value).decode().partition(":")
            return client_id, secret
        return self.get_body_argument("client_id", ""), self.get_body_argument("client_secret", "")

    def issue_code(self, redirect_uri):
        self.state.add_user(self.state.signed_in)
        return self.state.issue(
            "code", self.state.signed_in, redirect_uri=redirect_uri, client_id=self.state.client_id,
            scope=self.get_argument("scope", ""), challenge=self.get_argument("code_challenge", ""),
            method=self.get_argument("code_challenge_method", "plain"))

    def sign_in_page(self, service):
        self.finish(f"<html><body><h1>Sign in to {service}</h1></body></html>")

    def reply(self, status, body=None):
        self.set_status(status)
        self.finish(body)  # None: no body (204)


class ApiHandler(StandInHandler):
    """An API request with a token that is not live is refused before anything else."""

    def prepare(self):
        super().prepare()
        if "Authorization" in self.request.headers and not self.authorized():
            self.unauthorized(self.state.access_grant(self.bearer()))

    def unauthorized(self, grant):
        raise NotImplementedError


# GitHub ----------------------------------------------------------------------------------------


class GitHubApi(ApiHandler):
    def unauthorized(self, grant=None, message="Bad credentials"):
        self.reply(401, {"message": message, "documentation_url": GITHUB_DOCS})

    def not_found(self, message="Not Found"):
        self.reply(404, {"message": message, "documentation_url": GITHUB_DOCS})

    def can_read(self, repo):
        return self.state.can_read(self.login(), repo)

    def org_member(self, org, login):
        return login in self.state.orgs.get(org, {}).get("members", ())


class GitHubAuthorize(StandInHandler):
    def get(self):
        s = self.state
        if self.get_argument("client_id", "") != s.client_id:
            raise tornado.web.HTTPError(404)  # GitHub shows its 404 page for an unknown app
        redirect_uri = self.get_argument("redirect_uri", "") or s.callback_url
        if s.callback_url:
            given, registered = urlsplit(redirect_uri), urlsplit(s.callback_url)
            if (given.scheme, given.netloc) != (registered.scheme, registered.netloc) or \
                    not given.path.startswith(registered.path):
                return self.redirect(_with_query(
                    s.callback_url, error="redirect_uri_mismatch", state=self.get_argument("state", ""),
                    error_description="The redirect_uri MUST match the registered callback URL for "
                                      "this application."))
        if s.signed_in is None:
            return self.sign_in_page("GitHub")
        code = self.issue_code(redirect_uri)
        self.redirect(_with_query(redirect_uri, code=code, state=self.get_argument("state", "")))


class GitHubAccessToken(StandInHandler):
    def post(self):
        s = self.state
        if self.client_credentials() != (s.client_id, s.client_secret):
            return self.answer({"error": "incorrect_client_credentials", "error_description":
                                "The client_id and/or client_secret passed are incorrect."})
        grant = s.take_code(self.get_body_argument("code", ""))
        if grant is None or not _pkce_ok(grant, self.get_body_argument("code_verifier", None)):
            return self.answer({"error": "bad_verification_code",
                                "error_description": "The code passed is incorrect or expired."})
        redirect_uri = self.get_body_argument("redirect_uri", "")
        if redirect_uri and redirect_uri != grant["redirect_uri"]:
            return self.answer({"error": "redirect_uri_mismatch",
                                "error_description": "The redirect_uri MUST match the registered "
                                                     "callback URL for this application."})
        token = s.issue("access", grant["login"])
        self.answer({"access_token": token, "token_type": "bearer",
                     "scope": ",".join(grant["scope"].replace(",", " ").split())})

    def answer(self, body):
        """GitHub answers 200 either way; JSON when asked for, else form-encoded."""
        if "json" in self.request.headers.get("Accept", ""):
            return self.finish(body)
        self.set_header("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
        self.finish(urlencode(body))


class GitHubUser(GitHubApi):
    def get(self):
        login = self.login()
        if login is None:
            return self.unauthorized(message="Requires authentication")
        user = self.state.users[login]
        self.finish({"login": login, "id": user["id"], "node_id": f"U_{user['id']}", "type": "User",
                     "site_admin": False, "name": user["name"], "company": None, "email": None,
                     "html_url": f"{self.request.protocol}://{self.request.host}/{login}"})


class GitHubUserTeams(GitHubApi):
    def get(self):
        login = self.login()
        if login is None:
            return self.unauthorized(message="Requires authentication")
        teams = []
        for number, (key, members) in enumerate(sorted(self.state.teams.items()), 1):
            if login in members:
                org, slug = key.split(":", 1)
                teams.append({"id": number, "slug": slug, "name": slug, "privacy": "closed",
                              "permission": "pull", "organization": {"login": org}})
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(tornado.escape.json_encode(teams))


class GitHubOrgMember(GitHubApi):
    def get(self, org, username):
        if org not in self.state.orgs:
            return self.not_found()
        if not self.org_member(org, self.login()):
            base = f"{self.request.protocol}://{self.request.host}/api/v3"
            return self.redirect(f"{base}/orgs/{org}/public_members/{username}", status=302)
        if self.org_member(org, username):
            return self.reply(204)
        self.not_found("User does not exist or is not a member of the organization")


class GitHubPublicMember(GitHubApi):
    def get(self, org, username):
        if username in self.state.orgs.get(org, {}).get("public", ()):
            return self.reply(204)
        self.not_found()


class GitHubTeamMember(GitHubApi):
    def get(self, org, team, username):
        members = self.state.teams.get(f"{org}:{team}")
        # The team is visible to members of its organisation; to anyone else it does not exist.
        if members is not None and self.org_member(org, self.login()) and username in members:
            return self.reply(204)
        self.not_found()


class GitHubRepoCommit(GitHubApi, GitHubCommit):
    pass


# GitLab ----------------------------------------------------------------------------------------

GUEST, REPORTER = 10, 20


class GitLabApi(ApiHandler):
    read_level = REPORTER  # reading a private project's code needs Reporter

    def unauthorized(self, grant=None):
        if grant and grant.get("expired"):
            return self.reply(401, {"error": "invalid_token", "error_description":
                                    "Token is expired. You can either do re-authorization or token refresh."})
        if grant and grant.get("revoked"):
            return self.reply(401, {"error": "invalid_token", "error_description":
                                    "Token was revoked. You have to re-authorize from the user."})
        self.reply(401, {"message": "401 Unauthorized"})

    def can_read(self, repo):
        if not repo.get("private"):
            return True
        path = next(p for p, r in self.state.gitlab.items() if r is repo)
        return self.state.project_level(self.login(), path) >= self.read_level

    def member(self, login, level):
        user = self.state.users[login]
        return {"id": user["id"], "username": login, "name": user["name"], "state": "active",
                "access_level": level, "expires_at": None, "membership_state": "active"}


class GitLabAuthorize(StandInHandler):
    def get(self):
        s = self.state
        redirect_uri = self.get_argument("redirect_uri", "")
        if self.get_argument("client_id", "") != s.client_id or (
                s.callback_url and redirect_uri != s.callback_url):
            # GitLab shows an error page and does not redirect to an unregistered address.
            return self.reply(400, "<html><body>The redirect URI included is not valid.</body></html>")
        if self.get_argument("response_type", "") != "code":
            return self.redirect(_with_query(redirect_uri, error="unsupported_response_type",
                                             state=self.get_argument("state", "")))
        if s.signed_in is None:
            return self.sign_in_page("GitLab")
        code = self.issue_code(redirect_uri)
        self.redirect(_with_query(redirect_uri, code=code, state=self.get_argument("state", "")))


GITLAB_INVALID_GRANT = {
    "error": "invalid_grant", "error_description":
    "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI "
    "used in the authorization request, or was issued to another client."}


class GitLabToken(StandInHandler):
    def post(self):
        s = self.state
        if self.client_credentials() != (s.client_id, s.client_secret):
            return self.reply(401, {"error": "invalid_client", "error_description":
                                    "Client authentication failed due to unknown client, no client "
                                    "authentication included, or unsupported authentication method."})
        grant_type = self.get_body_argument("grant_type", "")
        if grant_type == "authorization_code":
            grant = s.take_code(self.get_body_argument("code", ""))
            if grant is None or self.get_body_argument("redirect_uri", "") != grant["redirect_uri"] \
                    or not _pkce_ok(grant, self.get_body_argument("code_verifier", None)):
                return self.reply(400, GITLAB_INVALID_GRANT)
            return self.tokens(grant["login"], grant["scope"])
        if grant_type == "refresh_token":
            refresh = s.grants.get(_digest(self.get_body_argument("refresh_token", "")))
            if not refresh or refresh["kind"] != "refresh" or refresh.get("revoked"):
                return self.reply(400, GITLAB_INVALID_GRANT)
            # Refreshing invalidates the old access and refresh tokens and sends new ones.
            refresh["revoked"] = True
            old = s.grants.get(refresh["access"])
            if old:
                old["revoked"] = True
            return self.tokens(refresh["login"], refresh["scope"])
        self.reply(400, {"error": "unsupported_grant_type", "error_description":
                         "The authorization grant type is not supported by the authorization server."})

    def tokens(self, login, scope):
        s = self.state
        access = s.issue("access", login)
        refresh = s.issue("refresh", login, access=_digest(access), scope=scope)
        self.finish({"access_token": access, "token_type": "Bearer", "expires_in": s.expires_in,
                     "refresh_token": refresh, "scope": scope, "created_at": int(time.time())})


class GitLabUser(GitLabApi):
    def get(self):
        login = self.login()
        if login is None:
            return self.unauthorized()
        user = self.state.users[login]
        self.finish({"id": user["id"], "username": login, "name": user["name"], "state": "active",
                     "locked": False, "email": f"{login}@lab.example",
                     "web_url": f"{self.request.protocol}://{self.request.host}/{login}"})


class GitLabVersion(GitLabApi):
    def get(self):
        if self.login() is None:
            return self.unauthorized()
        self.finish({"version": "17.5.2-ee", "revision": "4d4b4e4f4a4"})


class GitLabGroupMember(GitLabApi):
    def get(self, id_or_path, user_id, inherited=True):
        path, group = self.state.find_group(id_or_path)
        # A private group is visible to its members (and its parent groups' members) only.
        if group is None or not self.state.group_level(self.login(), path):
            return self.reply(404, {"message": "404 Group Not Found"})
        login = self.state.login_of_id(user_id)
        level = (self.state.group_level(login, path) if inherited
                 else group["members"].get(login, 0)) if login else 0
        if not level:
            return self.reply(404, {"message": "404 Not found"})
        self.finish(self.member(login, level))


class GitLabDirectGroupMember(GitLabGroupMember):
    def get(self, id_or_path, user_id):
        super().get(id_or_path, user_id, inherited=False)


class GitLabProjectMember(GitLabApi):
    def get(self, id_or_path, user_id):
        path = self.state.project_path(id_or_path)
        if path not in self.state.gitlab or self.state.project_level(self.login(), path) < GUEST:
            return self.reply(404, {"message": "404 Project Not Found"})
        login = self.state.login_of_id(user_id)
        level = self.state.project_level(login, path) if login else 0
        if not level:
            return self.reply(404, {"message": "404 Not found"})
        self.finish(self.member(login, level))


class GitLabProjectInfo(GitLabApi, GitLabProject):
    read_level = GUEST

    def get(self, id_or_path):
        return super().get(self.state.project_path(id_or_path))


class GitLabProjectCommit(GitLabApi, GitLabCommit):
    def get(self, id_or_path, ref):
        return super().get(self.state.project_path(id_or_path), ref)


# the servers -----------------------------------------------------------------------------------


class StandIn(ApiFixtures):
    """Start with ``.start()``; ``state`` holds users, memberships, repositories and requests."""

    state_class = ProviderState
    routes = ()

    def __init__(self, client_id="lab-hub"):
        super().__init__()
        self.state = self.state_class(client_id, secrets.token_hex(16))

    @property
    def client_id(self):
        return self.state.client_id

    @property
    def client_secret(self):
        return self.state.client_secret

    def issue_token(self, login):
        return self.state.issue_token(login)

    def app(self):
        return tornado.web.Application([(path, handler, {"state": self.state})
                                        for path, handler in self.routes])


class GitHubStandIn(StandIn):
    """GitHub (Enterprise-style layout): github_url = url(), API at api_url()."""

    state_class = GitHubState
    routes = (
        (r"/login/oauth/authorize", GitHubAuthorize),
        (r"/login/oauth/access_token", GitHubAccessToken),
        (r"/api/v3/user", GitHubUser),
        (r"/api/v3/user/teams", GitHubUserTeams),
        (r"/api/v3/orgs/([^/]+)/members/([^/]+)", GitHubOrgMember),
        (r"/api/v3/orgs/([^/]+)/public_members/([^/]+)", GitHubPublicMember),
        (r"/api/v3/orgs/([^/]+)/teams/([^/]+)/members/([^/]+)", GitHubTeamMember),
        (r"/api/v3/repos/([^/]+)/([^/]+)/commits/(.+)", GitHubRepoCommit),
    )

    def api_url(self):
        return self.url("/api/v3")


class GitLabStandIn(StandIn):
    """A GitLab server: gitlab_url = url(), API at api_url()."""

    state_class = GitLabState
    routes = (
        (r"/oauth/authorize", GitLabAuthorize),
        (r"/oauth/token", GitLabToken),
        (r"/api/v4/user", GitLabUser),
        (r"/api/v4/version", GitLabVersion),
        (r"/api/v4/groups/([^/]+)/members/all/(\d+)", GitLabGroupMember),
        (r"/api/v4/groups/([^/]+)/members/(\d+)", GitLabDirectGroupMember),
        (r"/api/v4/projects/([^/]+)/members/all/(\d+)", GitLabProjectMember),
        (r"/api/v4/projects/([^/]+)", GitLabProjectInfo),
        (r"/api/v4/projects/([^/]+)/repository/commits/([^/]+)", GitLabProjectCommit),
    )

    def api_url(self):
        return self.url("/api/v4")
