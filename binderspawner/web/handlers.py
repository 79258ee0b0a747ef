"""Binder's URLs on the hub: launch links, the build API, the badge and build logs.

Add them in jupyterhub_config.py::

    from binderspawner.web.handlers import binder_handlers, TEMPLATE_PATH
    c.JupyterHub.extra_handlers = binder_handlers()
    c.JupyterHub.template_paths = [TEMPLATE_PATH]   # build phases and log link on the progress page
    c.JupyterHub.allow_named_servers = True          # one named server per launched repository

They run inside the hub (JupyterHub's BaseHandler), so login, cookies, API tokens and scopes work as
on the hub's own pages, and launches go through the hub's own spawn machinery.
"""

import asyncio
import os
import time
from datetime import datetime, timezone
from urllib.parse import quote, unquote

from jupyterhub.handlers import BaseHandler
from jupyterhub import scopes
from jupyterhub.scopes import needs_scope
from jupyterhub.utils import url_path_join
from tornado import web
from tornado import httputil
from tornado.httputil import url_concat
from tornado.iostream import StreamClosedError

from binderspawner.web import buildapi
from binderspawner.policy import quotas

from binderspawner.builders import logs as buildlogs

from binderspawner.auth import pushback

from binderspawner.auth import sharing
from binderspawner.web import sharepage
from binderspawner.auth import attach_member_credentials
from binderspawner import launcher
from binderspawner.web.badge import BADGE_SVG
from binderspawner.errors import LaunchError
from binderspawner.launch.links import parse_launch_path, server_name_for
from binderspawner.progress import ProgressLog, spawn_failure

TEMPLATE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
TOKEN_EXPIRY = 24 * 3600  # seconds the build API's server token lives
HEARTBEAT = 15  # seconds between keep-alive comments on a quiet event stream


def binder_handlers():
    """Handlers for c.JupyterHub.extra_handlers (paths are under the hub's prefix, /hub/)."""
    return [
        (r"/v2/(.+)", LaunchHandler),
        (r"/build/(.+)", BuildHandler),
        (r"/badge_logo\.svg", BadgeHandler),
        (r"/badge\.svg", BadgeHandler),
        (r"/binder/logs/(.+)", BuildLogHandler),
        (pushback.ROUTE, pushback.GitRelayHandler),
        (sharing.ROUTE, sharing.GroupShareHandler),
        (sharepage.ROUTE, sharepage.SharePageHandler),
        *prebuild_handlers(),
    ]


def prebuild_handlers():
    """Push webhooks and the CI prebuild API (web/webhooks.py); imported here, late, because
    webhooks.py builds on this module."""
    from binderspawner.web import webhooks
    return [(webhooks.WEBHOOK_ROUTE, webhooks.WebhookHandler),
            (webhooks.PREBUILD_ROUTE, webhooks.PrebuildApiHandler)]


class BinderHandler(BaseHandler):
    route = ""

    def launch_link(self):
        """The link from the raw request path: escaped parts must stay escaped (see launchlinks)."""
        prefix = url_path_join(self.hub.base_url, self.route) + "/"
        path = self.request.path
        if not path.startswith(prefix):
            raise web.HTTPError(404)
        spawner = self.current_user.spawner if self.current_user else None
        providers = [cls(parent=spawner) for cls in spawner.provider_classes] \
            if hasattr(spawner, "provider_classes") else None  # the hub's configured providers
        return parse_launch_path(path[len(prefix):], self.request.query, providers)

    def check_repo(self, user, link):
        """Refuse a repository this hub would refuse, before any server entry is made (no network)."""
        spawner = user.spawner
        if hasattr(spawner, "provider_classes"):
            launcher.read_request(spawner, link.user_options)

    async def named_spawner(self, user, link):
        """The repository's named server; a failed one is replaced by a fresh spawner (JupyterHub's
        replace_failed), so its old failure does not stand in for the new launch."""
        name = server_name_for(link)
        if name not in user.orm_spawners:
            limit = self.settings.get("named_server_limit_per_user")
            refused = limit.refusal(user) if isinstance(limit, quotas.NamedServerLimit) else None
            if refused:
                raise LaunchError(refused, status=400)
            await self._check_named_server_request(user, name, name)
        return user.get_or_create_spawner(name, name, replace_failed=True)


class LaunchHandler(BinderHandler):
    """GET /hub/v2/<provider>/<spec>?urlpath=… : log in, start (or find) the repo's server, open it."""

    route = "v2"

    @web.authenticated
    async def get(self, _path):
        # A launch is a page the user opens, never an image, script or frame another page embeds
        # to make a logged-in visitor start servers (browsers say which in Sec-Fetch-Dest).
        refused = buildapi.fetch_refusal(self.request.headers.get("Sec-Fetch-Dest"),
                                         buildapi.LAUNCH_DESTINATIONS)
        if refused:
            raise web.HTTPError(403, "Launch links must be opened as a page: " + refused)
        link = self.launch_link()
        return await self._launch(user_name=self.current_user.name, link=link)

    @needs_scope("servers")
    async def _launch(self, user_name, link):
        user = self.current_user
        name = server_name_for(link)
        target = user.server_url(name) + link.urlpath
        pending_url = url_concat(
            url_path_join(self.hub.base_url, "spawn-pending", user.escaped_name, name), {"next": target})
        if name in user.orm_spawners:
            spawner = user.spawners[name]
            if spawner.ready:  # a second click: the server is running
                return self.redirect(target)
            if spawner.active:
                return self.redirect(pending_url)
        self.check_repo(user, link)
        await self.named_spawner(user, link)
        spawn = asyncio.ensure_future(self.spawn_single_user(user, name, name, options=link.user_options))
        # Wait only until the start begins (the hub's refusals, e.g. throttled or login expired, come
        # before it), not a fixed time: every start, also one that fails at once (a cached image whose
        # server exits), is then shown on the progress page, whatever the timing. The spawner is looked
        # up each time: JupyterHub replaces a failed one in user.spawners when the spawn begins.
        while not (spawn.done() or user.spawners[name]._spawn_pending):
            await asyncio.sleep(0.02)
        if spawn.done() and spawn.exception() and not user.spawners[name]._failed:
            error = spawn.exception()
            raise error if isinstance(error, web.HTTPError) else web.HTTPError(500, str(error))
        self.redirect(pending_url)


class BuildHandler(BinderHandler):
    """GET /hub/build/<provider>/<spec> : BinderHub's build API as an event stream.

    The caller authenticates with the hub (an API token in the Authorization header, or the login
    cookie). It builds the image, starts the caller's named server for the repository (unless
    ``build_only=true``) and ends with BinderHub's 'ready' event, whose ``token`` is a new API token
    of the caller's that can only reach that one server and expires after a day.
    """

    route = "build"
    _accept_token_auth = True  # API clients send 'Authorization: token …' (page handlers refuse it)

    def redirect(self, *args, **kwargs):
        # an API: answer 403 instead of sending an event-stream client to the login page
        raise web.HTTPError(403, "Log in to the hub, or send an API token: 'Authorization: token <token>'.")

    def write_error(self, status_code, **kwargs):
        """Every refusal is a 'failed' event in the stream, as BinderHub sends it (HTTP 200, the
        refusal's status in ``status_code``): an EventSource cannot read an error response."""
        error = kwargs.get("exc_info", (None, None))[1]
        message = (getattr(error, "jupyterhub_message", None) or getattr(error, "log_message", None)
                   or httputil.responses.get(status_code, "Error"))
        self.set_status(200)
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.finish(buildapi.sse(buildapi.failed_event(message, status_code)))

    async def get(self, _path):
        refused = buildapi.fetch_refusal(self.request.headers.get("Sec-Fetch-Dest"),
                                         buildapi.BUILD_API_DESTINATIONS)
        if refused:
            raise web.HTTPError(403, refused)
        user = self.current_user
        if user is None or getattr(user, "kind", "user") != "user":
            raise web.HTTPError(403, "The build API launches servers for hub users: log in, or send "
                                     "a user's API token: 'Authorization: token <token>'.")
        link = self.launch_link()
        self.check_repo(user, link)
        return await self._build(user_name=user.name, link=link)

    async def send(self, event):
        self.write(buildapi.sse(event) if isinstance(event, dict) else event)
        await self.flush()

    @property
    def launch_host(self):
        return f"{self.request.protocol}://{self.request.host}{self.hub.base_url}"

    @needs_scope("servers")
    async def _build(self, user_name, link):
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        build_only = self.get_argument("build_only", "").lower() in ("true", "1", "yes")
        try:
            if build_only:
                await self._build_only(link)
            else:
                await self._launch(link)
        except StreamClosedError:
            pass  # the client left; the build and the server go on
        except web.HTTPError as e:  # LaunchErrors and the hub's own refusals (e.g. the server limit)
            message = getattr(e, "jupyterhub_message", None) or e.log_message or str(e)
            await self.send(buildapi.failed_event(message, e.status_code))
        self.finish()

    async def _follow(self, messages, done):
        """Relay progress messages until ``done()``; return the tracker."""
        tracker = buildapi.PhaseTracker()
        quiet_since = time.monotonic()
        while True:
            finished = done()
            batch = messages()
            for message in batch:
                for event in tracker.event(message):
                    await self.send(event)
            if batch:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > HEARTBEAT:
                await self.send(": heartbeat\n\n")
                quiet_since = time.monotonic()
            if finished:
                return tracker
            await asyncio.sleep(0.2)

    async def _build_only(self, link):
        user = self.current_user
        # As before a spawn: a fresh token, membership re-checked, then the member's own credentials.
        if self.authenticator.refresh_pre_spawn and await self.refresh_auth(user, force=True) is None:
            raise LaunchError("Your login has expired: log in again.", status=403)
        await attach_member_credentials(self.authenticator, user, user.spawner)
        # counted like a launch for the user's and the hub's quotas while it builds
        quotas.Quotas(parent=user.spawner).check_build_only(user.name)
        log = ProgressLog()
        log.restart()
        subscription = log.subscribe()
        task = asyncio.ensure_future(launcher.make_launch(user.spawner, link.user_options, log.report))
        quotas.BUILD_ONLY.track(user.name, task)
        await self._follow(lambda: [e["message"] for e in subscription.take()], task.done)
        if task.exception():
            raise _as_launch_error(task.exception())
        launch = task.result()
        await self.send(buildapi.built_only_event(
            image=launch.image, link=link, version=launch.resolved.version, launch_host=self.launch_host))

    async def _launch(self, link):
        user = self.current_user
        name = server_name_for(link)
        spawner = user.spawners[name] if name in user.orm_spawners else None
        if spawner is None or not (spawner.ready or spawner.active):
            spawner = await self.named_spawner(user, link)
            # the launch this spawn's start() opens (none is reported before it begins)
            subscription = spawner.progress_log.subscribe(spawner.progress_log.launch + 1)
            spawn = asyncio.ensure_future(
                self.spawn_single_user(user, name, name, options=link.user_options))
        else:  # running: straight to ready; starting: its whole progress so far, then the rest
            log = spawner.progress_log
            subscription = log.subscribe(log.launch + 1) if spawner.ready else log.subscribe(latest=True)
            spawn = None

        def take():
            return [e.get("message", "") for e in subscription.take()]

        def done():
            if spawn is not None and not spawn.done():
                return False
            return spawner.ready or not spawner.active

        await self._follow(take, done)
        if spawn is not None and spawn.exception():
            raise _as_launch_error(spawn.exception())
        if not spawner.ready:
            error = spawn_failure(spawner)
            raise _as_launch_error(error or RuntimeError("The server stopped before it was ready."))
        token = self.server_token(user, name, link)
        launch = getattr(spawner, "launch", None)
        url = f"{self.request.protocol}://{self.request.host}{user.server_url(name)}"
        await self.send(buildapi.ready_event(
            url=url, token=token, image=launch.image if launch else spawner.image, link=link,
            version=launch.resolved.version if launch else "", launch_host=self.launch_host))

    def server_token(self, user, name, link):
        """A token for the 'ready' event that opens this one server, issued only if the caller's
        own credentials may open it, and living no longer than they do (nor TOKEN_EXPIRY)."""
        scope = buildapi.server_scope(user.name, name)
        if not scopes.has_scope(scope, self.parsed_scopes, db=self.db):
            return None
        caller = self.get_token()  # None: the login cookie
        max_age_days = None if caller is not None else self.settings.get("cookie_max_age_days")
        lifetime = buildapi.token_lifetime(
            TOKEN_EXPIRY, caller_expires_at=caller.expires_at if caller is not None else None,
            now=datetime.now(timezone.utc).replace(tzinfo=None),
            caller_max_age=max_age_days * 86400 if max_age_days else None)
        if lifetime is None:
            return None
        return user.new_api_token(scopes=[scope], expires_in=lifetime,
                                  note=f"binderspawner build API: {link.binder_request}")


def _as_launch_error(error):
    if isinstance(error, LaunchError):
        return error
    message = getattr(error, "jupyterhub_message", None) or getattr(error, "log_message", None) or str(error)
    return LaunchError(f"The launch failed: {message}", status=500)


class BadgeHandler(BaseHandler):
    """The launch badge. No login: READMEs on other sites embed it."""

    def get(self):
        self.set_header("Content-Type", "image/svg+xml")
        self.set_header("Cache-Control", "public, max-age=86400")
        self.finish(BADGE_SVG)


class BuildLogHandler(BaseHandler):
    """GET /hub/binder/logs/<image>: the full build log of an image, for admins and its launchers.

    Anyone else gets 404, as for an image without a log, so the names of others' images do not leak.
    """

    @web.authenticated
    def get(self, image):
        image = unquote(image)
        user = self.current_user
        if not buildlogs.STORE.may_read(image, user.name, admin=bool(getattr(user, "admin", False))):
            raise web.HTTPError(404, f"No build log for {image} that you may read. Logs are kept in "
                                     "memory for images launched since the hub started.")
        log = buildlogs.STORE.get(image)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(f"# build log of {image} ({log.state})\n" + log.text())


def log_url(base_url, image):
    """Where the log of ``image`` is served."""
    return url_path_join(base_url, "binder/logs", quote(image, safe="/:"))
