"""Base for binderspawner's small JSON endpoints under /hub/binder/: API tokens accepted (page
handlers refuse them), JSON errors instead of HTML pages, no redirect to the login page."""

from jupyterhub.handlers import BaseHandler
from tornado import web


class JsonApiHandler(BaseHandler):
    _accept_token_auth = True

    def redirect(self, *args, **kwargs):
        raise web.HTTPError(403, "Send an API token ('Authorization: token <token>') or log in.")

    def write_error(self, status_code, **kwargs):
        error = kwargs.get("exc_info", (None, None))[1]
        self.finish({"status": status_code, "message": getattr(error, "log_message", None) or self._reason})
