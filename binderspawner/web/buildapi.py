"""BinderHub's build API events from this hub's launch progress (pure).

BinderHub streams ``data: {json}`` lines with a ``phase`` of waiting, fetching, building, pushing,
built, launching, ready or failed. The spawner reports ``[phase] message`` for build lines and plain
messages around them; ``PhaseTracker`` turns each into BinderHub's event, keeping phases in order.
"""

import json
import re

PHASES = ("waiting", "fetching", "building", "pushing", "built", "launching", "ready", "failed")
_BUILD_PHASES = {"waiting", "fetching", "building", "pushing", "built"}
_PREFIX = re.compile(r"^\[([a-z]+)\] (.*)$", re.S)
_IMAGE_READY = re.compile(r"^(Built|Found) image (\S+); starting server")


class PhaseTracker:
    """Feed it progress messages in order; it returns BinderHub events."""

    def __init__(self):
        self.launching = False
        self.image = None
        self.phase = "waiting"

    def event(self, message):
        found = _PREFIX.match(message)
        if found:
            phase, text = found.group(1), found.group(2)
            if phase not in _BUILD_PHASES:
                phase = "building"
            # never back: repo2docker logs a 'fetching' line after its first plain output lines
            if PHASES.index(phase) < PHASES.index(self.phase):
                phase = self.phase
            self.phase = phase
            return [{"phase": phase, "message": text + "\n"}]
        ready = _IMAGE_READY.match(message)
        if ready:
            self.image = ready.group(2)
            self.launching = True
            self.phase = "launching"
            return [
                {"phase": "built", "imageName": self.image,
                 "message": f"{'Built' if ready.group(1) == 'Built' else 'Found built'} image, "
                            "launching...\n"},
                {"phase": "launching", "message": "Launching server...\n"},
            ]
        return [{"phase": "launching" if self.launching else "waiting", "message": message + "\n"}]


def ready_event(*, url, token, image, link, version, launch_host):
    """BinderHub's 'ready' payload; ``token`` may only reach the caller's own server. None: the
    caller may not open servers (no ``access:servers`` scope), so none is issued."""
    note = "" if token else (" (no token issued: your credentials may not open servers, they lack "
                             "the access:servers scope; open it with your login)")
    return {
        "phase": "ready",
        "message": f"server running at {url}{note}\n",
        **_binder_fields(image, link, version, launch_host),
        **({"token": token} if token else {}),
        "url": url,
    }


def built_only_event(*, image, link, version, launch_host):
    """The last event of ``build_only=true``: the image exists, nothing was launched."""
    return {
        "phase": "ready",
        "message": f"Done! Image {image} is built; no server was launched (build_only).\n",
        "imageName": image,
        **_binder_fields(image, link, version, launch_host),
    }


def _binder_fields(image, link, version, launch_host):
    """What BinderHub's 'ready' events carry about the image and the repository (pure)."""
    return {
        "image": image,
        "repo_url": link.repo_url,
        "binder_ref_url": link.ref_url(version),
        "binder_launch_host": launch_host,
        "binder_request": link.binder_request,
        "binder_persistent_request": link.persistent_request(version),
    }


def failed_event(message, status_code=None):
    """BinderHub's 'failed' event; ``status_code`` says what kind of refusal (as BinderHub does)."""
    event = {"phase": "failed", "message": message.rstrip("\n") + "\n"}
    if status_code:
        event["status_code"] = status_code
    return event


def token_lifetime(limit, caller_expires_at=None, now=None, caller_max_age=None):
    """Seconds the 'ready' event's server token may live (pure): at most ``limit``, never past the
    caller's own token (``caller_expires_at``, naive UTC like JupyterHub's) or login cookie
    (``caller_max_age`` seconds). None when the caller's own credentials are about to expire."""
    lifetime = limit
    if caller_expires_at is not None and now is not None:
        lifetime = min(lifetime, int((caller_expires_at - now).total_seconds()))
    if caller_max_age:
        lifetime = min(lifetime, int(caller_max_age))
    return lifetime if lifetime >= 1 else None


def server_scope(user_name, server_name):
    """The one scope the 'ready' event's token gets: open this one server."""
    return f"access:servers!server={user_name}/{server_name}"


# Fetch metadata (the Sec-Fetch-Dest request header, sent by browsers): what a request is for.
# Launch links are pages a user opens; the build API is read by EventSource/fetch (destination
# 'empty') or opened as a page. Nothing else may start servers on a logged-in visitor's behalf:
# not an <img>, <script>, <iframe> or <frame> on some page, the hub's own or a server's included.
LAUNCH_DESTINATIONS = frozenset({"document"})
BUILD_API_DESTINATIONS = frozenset({"document", "empty"})


def fetch_refusal(destination, allowed):
    """Why a request with this Sec-Fetch-Dest may not launch (None: it may). Pure. Clients that
    send no fetch metadata (curl, API clients, older browsers) are not refused by it."""
    if destination is None or destination.lower() in allowed:
        return None
    return (f"This URL starts builds and servers, so it must be opened as a page or read as an "
            f"event stream, not loaded as {destination!r} (for example an image or a frame on "
            "another page).")


def sse(event):
    """One event-stream record."""
    return f"data: {json.dumps(event)}\n\n"
