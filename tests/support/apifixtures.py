"""A local stand-in for the web APIs the providers talk to, on 127.0.0.1, in its own thread.

GitHub, GitLab, Zenodo, Figshare, HydroShare, Dataverse, CKAN and doi.org cannot be reached from
the test machines. This tornado server answers the requests the providers make the way each
service documents them (status codes, JSON fields, ETag / If-None-Match -> 304, rate-limit headers),
so the providers' real HTTP client code runs. Each service lives under its own path prefix:
configure a provider's base URL to ``server.url("/github")`` and so on. Every request is logged
(path, headers) so tests can count API calls and check where tokens went.
"""

import asyncio
import json
import threading
import time

import tornado.web
from tornado.httpserver import HTTPServer

from .net import free_port


class State:
    """What the fake services hold; tests change it between calls."""

    def __init__(self):
        # GitHub and GitLab: {"owner/repo": {"refs": {name: sha}, "default": "main", "private": bool}}
        self.github = {}
        self.gitlab = {}
        self.gists = {}  # {id: {"owner": login, "public": bool, "history": [sha, ...]}}
        self.zenodo = {}  # {record id: latest record id}  (a concept id maps to its newest version)
        self.figshare = {}  # {article id: latest version}
        self.hydroshare = {}  # {resource id: modified date string}
        self.dataverse = {}  # {doi: (dataset id, major, minor)}
        self.dois = {}  # {doi: URL}
        self.ckan = {}  # {dataset name: metadata_modified}
        self.tokens = set()  # tokens that unlock private repositories
        self.rate_limited = None  # None, or the reset epoch to announce
        self.requests = []  # (method, path, headers)
        self.fail_next = 0  # answer the next N requests with 503


class Handler(tornado.web.RequestHandler):
    def initialize(self, state):
        self.state = state

    def prepare(self):
        self.state.requests.append((self.request.method, self.request.uri, dict(self.request.headers)))
        if self.state.fail_next:
            self.state.fail_next -= 1
            self.send_error(503)

    def authorized(self):
        auth = self.request.headers.get("Authorization", "")
        return auth.split(" ", 1)[-1] in self.state.tokens

    def can_read(self, repo):
        """May this request see ``repo``? Here: a private one needs a known token. Subclasses
        (oauthfixtures.py) decide per user, as GitHub and GitLab do."""
        return not repo.get("private") or self.authorized()

    def rate_limit(self):
        self.set_header("X-RateLimit-Limit", "60")
        if self.state.rate_limited is not None:
            self.set_header("X-RateLimit-Remaining", "0")
            self.set_header("X-RateLimit-Reset", str(int(self.state.rate_limited)))
            self.set_status(403)
            self.finish({"message": "API rate limit exceeded for 127.0.0.1.",
                         "documentation_url": "https://docs.github.com/rest/rate-limit"})
            return True
        self.set_header("X-RateLimit-Remaining", "59")
        return False

    def conditional(self, body, content_type="application/json; charset=utf-8"):
        """Send ``body`` with an ETag; 304 when the client already has it."""
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        etag = f'W/"{abs(hash(data)):x}"'
        self.set_header("ETag", etag)
        if self.request.headers.get("If-None-Match") == etag:
            self.set_status(304)
            return self.finish()
        self.set_header("Content-Type", content_type)
        return self.finish(data)

    def not_found(self, message="Not Found"):
        self.set_status(404)
        self.finish({"message": message})


class GitHubCommit(Handler):
    def get(self, owner, name, ref):
        if self.rate_limit():
            return
        repo = self.state.github.get(f"{owner}/{name}")
        if repo is None or not self.can_read(repo):
            return self.not_found()
        refs = repo["refs"]
        sha = refs.get(repo.get("default", "main")) if ref == "HEAD" else refs.get(ref)
        if sha is None:
            sha = next((s for s in refs.values() if s.startswith(ref.lower()) and len(ref) >= 7), None)
        if sha is None:
            self.set_status(422)
            return self.finish({"message": f"No commit found for SHA: {ref}",
                                "documentation_url": "https://docs.github.com/rest/commits/commits#get-a-commit"})
        if self.request.headers.get("Accept") == "application/vnd.github.sha":
            return self.conditional(sha, "application/vnd.github.sha; charset=utf-8")
        return self.conditional({"sha": sha, "commit": {"message": "test"}})


class GitHubGist(Handler):
    def get(self, gist_id):
        if self.rate_limit():
            return
        gist = self.state.gists.get(gist_id)
        if gist is None:
            return self.not_found()
        return self.conditional({
            "id": gist_id, "public": gist["public"], "owner": {"login": gist["owner"]},
            "git_pull_url": f"https://gist.github.com/{gist_id}.git", "files": {},
            "history": [{"version": v, "committed_at": "2024-01-01T00:00:00Z"} for v in gist["history"]],
        })


class GitLabProject(Handler):
    def get(self, project):
        repo = self.state.gitlab.get(project)
        if repo is None or not self.can_read(repo):
            return self.not_found("404 Project Not Found")
        return self.conditional({"id": repo.get("id", 42), "path_with_namespace": project,
                                 "default_branch": repo.get("default", "main")})


class GitLabCommit(Handler):
    def get(self, project, ref):
        if self.state.rate_limited is not None:
            self.set_header("RateLimit-Reset", str(int(self.state.rate_limited)))
            self.set_header("Retry-After", str(max(0, int(self.state.rate_limited - time.time()))))
            self.set_status(429)
            return self.finish("Retry later")
        repo = self.state.gitlab.get(project)
        if repo is None or not self.can_read(repo):
            return self.not_found("404 Project Not Found")
        sha = repo["refs"].get(ref) or next((s for s in repo["refs"].values() if s.startswith(ref)), None)
        if sha is None:
            return self.not_found("404 Commit Not Found")
        return self.conditional({"id": sha, "short_id": sha[:8], "title": "test"})


class ZenodoRecord(Handler):
    def get(self, record_id):
        latest = self.state.zenodo.get(record_id)
        if latest is None:
            return self.not_found()
        if latest != record_id:  # a concept record redirects to its newest version
            return self.redirect(f"/zenodo/api/records/{latest}", status=302)
        return self.conditional({"id": int(record_id), "conceptrecid": "1", "doi": f"10.5281/zenodo.{record_id}",
                                 "links": {"files": f"/zenodo/api/records/{record_id}/files"},
                                 "metadata": {"upload_type": "software"}})


class FigshareArticle(Handler):
    def get(self, article, version=None):
        latest = self.state.figshare.get(article)
        if latest is None or (version is not None and not 1 <= int(version) <= latest):
            return self.not_found("Entity not found: article")
        return self.conditional({"id": int(article), "version": int(version or latest), "files": []})


class HydroshareMeta(Handler):
    def get(self, resource):
        modified = self.state.hydroshare.get(resource)
        if modified is None:
            return self.not_found()
        return self.conditional({"title": "test", "dates": [
            {"type": "created", "start_date": "2019-01-01T00:00:00.000000Z"},
            {"type": "modified", "start_date": modified}]})


class DataverseDataset(Handler):
    def get(self):
        doi = self.get_argument("persistentId", "").removeprefix("doi:")
        dataset = self.state.dataverse.get(doi)
        if dataset is None:
            self.set_status(404)
            return self.finish(
                {"status": "ERROR", "message": f"Dataset with Persistent ID doi:{doi} not found."})
        dataset_id, major, minor = dataset
        return self.conditional({"status": "OK", "data": {
            "id": dataset_id, "persistentUrl": f"https://doi.org/{doi}",
            "latestVersion": {"versionNumber": major, "versionMinorNumber": minor,
                              "versionState": "RELEASED", "files": []}}})


class DoiHandle(Handler):
    def get(self, doi):
        url = self.state.dois.get(doi)
        if url is None:
            self.set_status(404)
            return self.finish({"responseCode": 100, "handle": doi})
        return self.finish({"responseCode": 1, "handle": doi, "values": [
            {"index": 100, "type": "HS_ADMIN", "data": {"format": "admin", "value": {}}},
            {"index": 1, "type": "URL", "data": {"format": "string", "value": url}}]})


class CkanPackage(Handler):
    def get(self):
        name = self.get_argument("id", "")
        modified = self.state.ckan.get(name)
        if modified is None:
            self.set_status(404)
            return self.finish({"success": False, "error": {
                               "message": "Not found", "__type": "Not Found Error"}})
        return self.conditional({"success": True, "result": {"name": name, "id": "c0ffee",
                                                             "metadata_modified": modified}})


class ApiFixtures:
    """Start with ``ApiFixtures().start()``; ``url(prefix)`` gives each service's base URL."""

    def __init__(self):
        self.state = State()
        self.port = free_port()
        self.loop = None
        self.thread = None

    def url(self, path=""):
        return f"http://127.0.0.1:{self.port}{path}"

    def app(self):
        s = {"state": self.state}
        return tornado.web.Application([
            (r"/github/repos/([^/]+)/([^/]+)/commits/(.+)", GitHubCommit, s),
            (r"/github/gists/([^/]+)", GitHubGist, s),
            (r"/gitlab/api/v4/projects/([^/]+)", GitLabProject, s),
            (r"/gitlab/api/v4/projects/([^/]+)/repository/commits/([^/]+)", GitLabCommit, s),
            (r"/zenodo/api/records/(\d+)", ZenodoRecord, s),
            (r"/figshare/v2/articles/(\d+)", FigshareArticle, s),
            (r"/figshare/v2/articles/(\d+)/versions/(\d+)", FigshareArticle, s),
            (r"/hydroshare/hsapi/resource/([0-9a-f]+)/scimeta/elements", HydroshareMeta, s),
            (r"/dataverse/api/datasets/:persistentId", DataverseDataset, s),
            (r"/doi/api/handles/(.+)", DoiHandle, s),
            (r"/ckan/api/3/action/package_show", CkanPackage, s),
        ])

    def start(self):
        ready = threading.Event()

        def run():
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            server = HTTPServer(self.app())
            server.listen(self.port, address="127.0.0.1")
            self.loop.call_soon(ready.set)
            self.loop.run_forever()
            server.stop()

        self.thread = threading.Thread(target=run, daemon=True, name="api-fixtures")
        self.thread.start()
        ready.wait(10)
        return self

    def stop(self):
        if self.loop:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)

    def calls(self, prefix=""):
        return [r for r in self.state.requests if r[1].startswith(prefix)]


def fresh_provider_caches():
    """Forget every resolution, ETag and request count, so each test starts cold."""
    from binderspawner.providers.api import ApiProvider, stats
    from binderspawner.providers.base import RepoProvider

    RepoProvider.cache.clear()
    ApiProvider.etags.clear()
    stats.clear()
