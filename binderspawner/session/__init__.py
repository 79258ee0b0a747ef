"""What a member sees of their session's end: the stop times inside the session and on the hub's
home page, and what every image's server environment gets for it.

``notice.py`` is the part that runs inside the server (copied into each image); this module is the
hub's side: the environment the spawner passes, the image files and the install step a buildpack adds.
"""

import os
from datetime import timezone

from binderspawner.session import notice

IMAGE_PATH = "/usr/local/lib/binderspawner/binderspawner_session.py"


def build_script_files():
    """{file on the hub: path in the image} for a buildpack's get_build_script_files."""
    return {os.path.abspath(notice.__file__): IMAGE_PATH}


def install_command(python):
    """The build step that installs the notice into the environment of ``python`` (the server's)."""
    return f"{python} {IMAGE_PATH} install"


def server_env(idle_timeout, max_age, started, link=None):
    """The server's environment for the notice (pure). ``started`` as the hub counts it (the
    culler's max-age), ``link`` an optional (label, hub path) for the notification's button."""
    if not (idle_timeout or max_age):
        return {}
    env = {notice.ENV_IDLE: str(int(idle_timeout or 0)), notice.ENV_MAX_AGE: str(int(max_age or 0))}
    if started is not None:
        started = started if started.tzinfo else started.replace(tzinfo=timezone.utc)  # the hub's naive UTC
        env[notice.ENV_STARTED] = started.isoformat()
    if link:
        label, url = link
        env[notice.ENV_LINK] = f"{label}|{url}"
    return env
