"""Errors a user can act on.

JupyterHub shows ``jupyterhub_message`` on the spawn page and in the progress stream, so every
message here is written for the person launching: what was wrong and how to fix it.
"""


class LaunchError(Exception):
    """The launch cannot go ahead; the message is safe to show to the user.

    ``field`` names the user option that was wrong (``repo``, ``ref``, ``urlpath``), when one was.
    """

    def __init__(self, message, *, field=None, status=400):
        super().__init__(message)
        self.field = field
        self.status = status
        self.jupyterhub_message = message


class BuildFailed(LaunchError):
    """repo2docker (or another builder) could not build the image."""

    def __init__(self, message):
        super().__init__(message, status=500)
