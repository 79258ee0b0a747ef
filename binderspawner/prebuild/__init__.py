"""Prebuild on push: build a repository's pushed commit before anyone launches it.

``c.JupyterHub.extra_handlers = binder_handlers()`` serves
``POST /hub/binder/webhooks/<github|gitlab|gitea>`` (the forge's signed push event) and
``POST /hub/binder/prebuild/<provider>/<spec>`` (CI, with a hub API token holding the scope
``custom:binder-prebuild``); ``prebuild.configure(c)`` declares that scope. Settings are
``c.Prebuild.*`` (settings.py); the work is done by runner.Prebuilder, through the launches' own
queue (builders/queue.py) at a lower priority than launches.
"""

from binderspawner.prebuild.settings import SCOPE, Prebuild, configure

__all__ = ["SCOPE", "Prebuild", "configure"]
