"""Prebuild endpoints: forges' push webhooks and the CI API.

``POST /hub/binder/webhooks/<github|gitlab|gitea>``: a forge's push event, verified by its signature
(prebuild/forges.py) before anything in it is read; then prebuild/runner.py decides. Answers (JSON,
also shown in the forge's delivery log): 202 queued (or skipped: private without a hub token), 200
duplicate/ignored/pong, 401 bad or missing signature, 404 forge not configured, 400/422 not a push
this hub can read, 403 repository not prebuilt here, 413 body too large, 429 quota.

``POST /hub/binder/prebuild/<provider>/<spec>`` (launch-link spec, e.g. ``gh/org/repo/main``): for
CI, with a hub API token holding ``custom:binder-prebuild``. Refusals are plain HTTP errors (so
``curl --fail`` sees them); an admitted prebuild answers 200 with the build API's event stream
(``data: {json}`` lines, BinderHub's phases) ending in ``ready`` (with ``imageName``) or ``failed``.
"""

import json

from jupyterhub.utils import url_path_join
from tornado import web
from tornado.iostream import StreamClosedError

from binderspawner import messages
from binderspawner.errors import LaunchError
from binderspawner.launch.links import parse_launch_path
from binderspawner.prebuild import SCOPE, forges
from binderspawner.prebuild.runner import hub_prebuilder
from binderspawner.web import buildapi
from binderspawner.web.handlers import BuildHandler

WEBHOOK_ROUTE = r"/binder/webhooks/([^/]+)"
PREBUILD_ROUTE = r"/binder/prebuild/(.+)"


def prebuilder_for(handler):
    settings = handler.settings
    return hub_prebuilder(settings["config"], settings.get("spawner_class"), settings.get("log"))


@web.stream_request_body
class WebhookHandler(web.RequestHandler):
    """A forge's push delivery. No cookies, no hub login: the signature is the authentication."""

    def check_xsrf_cookie(self):
        """A webhook carries no cookie and is authenticated by its signature alone."""

    def write_error(self, status_code, **kwargs):
        """An unexpected error answers 503, not 500: JupyterHub's request log prints every header
        of a 500 answer, and GitLab's X-Gitlab-Token header is the secret itself."""
        self.set_status(503 if status_code == 500 else status_code)
        self.finish({"status": "error", "message": "The hub could not handle this delivery; see its log."})

    def prepare(self):
        self._chunks, self._size = [], 0
        self.prebuilder = prebuilder_for(self)

    def data_received(self, chunk):
        """Bytes past max_body_bytes are counted and dropped, and post() answers 413. The body is
        still read to its end: answering before it (tornado then closes the connection mid-body)
        makes configurable-http-proxy answer 503 on its keep-alive connection instead."""
        self._size += len(chunk)
        if self._size <= self.prebuilder.settings.max_body_bytes:
            self._chunks.append(chunk)

    def _refuse(self, status, message):
        self.prebuilder.log.warning("Prebuild webhook %s from %s refused (%s): %s", self.request.path,
                                    self.request.remote_ip, status, message)
        self.set_status(status)
        self.finish({"status": "refused", "message": message})

    async def post(self, forge):
        if forge not in forges.FORGES:
            return self._refuse(404, messages.PREBUILD_UNKNOWN_FORGE.format(forge=forge[:40]))
        secret = self.prebuilder.settings.secret(forge)
        if not secret:
            return self._refuse(404, messages.PREBUILD_FORGE_OFF.format(forge=forge))
        limit = self.prebuilder.settings.max_body_bytes
        if self._size > limit:
            return self._refuse(413, messages.PREBUILD_TOO_LARGE.format(size=self._size, limit=limit))
        body = b"".join(self._chunks)
        refused = forges.signature_refusal(forge, secret, self.request.headers, body)
        if refused:
            return self._refuse(401, refused)
        kind = forges.event_kind(forge, self.request.headers)
        if kind == "ping":
            return self._answer(200, {"status": "pong", "message": messages.PREBUILD_PONG})
        if kind != "push":
            message = messages.PREBUILD_NOT_PUSH.format(event=kind[:60])
            return self._answer(200, {"status": "ignored", "message": message})
        try:
            push = forges.read_push(forge, forges.parse_json(body))
        except forges.PayloadError as e:
            return self._refuse(400, messages.PREBUILD_UNREADABLE.format(reason=e))
        outcome = await self.prebuilder.push(push, forges.delivery_id(forge, self.request.headers))
        if outcome.status == 429:
            self.set_header("Retry-After", str(outcome.details.get("retry_after", 60)))
        self._answer(outcome.status, outcome.body())

    def _answer(self, status, body):
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


class PrebuildApiHandler(BuildHandler):
    """POST /hub/binder/prebuild/<provider>/<spec>: a prebuild for CI, followed as an event stream."""

    route = "binder/prebuild"
    _streaming = False

    def write_error(self, status_code, **kwargs):
        if self._streaming:
            return super().write_error(status_code, **kwargs)
        error = kwargs.get("exc_info", (None, None))[1]
        message = getattr(error, "jupyterhub_message", None) or getattr(error, "log_message", None) \
            or self._reason
        self.set_header("Content-Type", "application/json")
        self.finish({"status": "refused", "message": message})

    def check_xsrf_cookie(self):
        """Token-authenticated only (no cookie): nothing for a cross-site form to ride on."""

    async def get(self, _path):
        raise web.HTTPError(405, "Prebuilds are started with POST.")

    async def post(self, _path):
        caller = self.current_user
        if caller is None or self.get_token() is None:
            raise web.HTTPError(403, messages.PREBUILD_NO_TOKEN.format(scope=SCOPE))
        if SCOPE not in self.expanded_scopes:
            raise web.HTTPError(403, messages.PREBUILD_NO_SCOPE.format(scope=SCOPE))
        prebuilder = prebuilder_for(self)
        prefix = url_path_join(self.hub.base_url, self.route) + "/"
        providers = [cls(parent=prebuilder.context) for cls in prebuilder.context.provider_classes]
        try:
            link = parse_launch_path(self.request.path[len(prefix):], "", providers)
        except LaunchError as e:
            raise web.HTTPError(400, e.message) from None
        outcome = prebuilder.request({"repo": link.repo, **({"ref": link.ref} if link.ref else {})},
                                     who=caller.name)
        if outcome.job is None:
            if outcome.status == 429:
                self.set_header("Retry-After", str(outcome.details.get("retry_after", 60)))
            raise web.HTTPError(outcome.status, outcome.message)
        self._streaming = True
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        job = outcome.job
        subscription = job.progress.subscribe()
        try:
            await self.send({"phase": "waiting", "message": f"{outcome.message}\n"})
            await self._follow(lambda: [e["message"] for e in subscription.take()], job.task.done)
        except StreamClosedError:
            return  # the caller left; the prebuild goes on
        if job.error is not None or job.launch is None:
            error = job.error
            message = getattr(error, "message", None) or str(error) or "The prebuild failed."
            await self.send(buildapi.failed_event(message, getattr(error, "status_code", 500)))
        else:
            await self.send(buildapi.built_only_event(image=job.launch.image, link=link,
                                                      version=job.launch.resolved.version,
                                                      launch_host=self.launch_host))
        self.finish()
