"""Errors a user can act on.

They are tornado HTTPErrors, so JupyterHub's REST API answers a failed launch with their status and
message, and ``jupyterhub_message`` is what the spawn page and the progress stream show. Every
message is written for the person launching: what was wrong and how to fix it.
"""

from tornado.web import HTTPError


class LaunchError(HTTPError):
    """The launch cannot go ahead; the message is safe to show to the user.

    ``field`` names the user option that was wrong (``repo``, ``ref``, ``urlpath``), when one was.
    """

    def __init__(self, message, *, field=None, status=400):
        super().__init__(status, message)
        self.message = message
        self.field = field
        self.jupyterhub_message = message

    def __str__(self):
        return self.message


class BuildFailed(LaunchError):
    """repo2docker (or another builder) could not build the image.

    ``status`` says whose fault it is: 422 when the repository's own build steps failed, 5xx for the
    hub's (registry, build pods, time limits)."""

    def __init__(self, message, status=500):
        super().__init__(message, status=status)


class RepositoryRefused(BuildFailed):
    """The repository asks for something this hub does not build: the repository's fault (422),
    decided from its files before any build starts."""

    def __init__(self, message):
        super().__init__(message, status=422)
