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
    """BinderHub's 'ready' payload; ``token`` may only reach the caller's own server."""
    return {
        "phase": "ready",
        "message": f"server running at {url}\n",
        "image": image,
        "repo_url": link.repo_url,
        "token": token,
        "binder_ref_url": link.ref_url(version),
        "binder_launch_host": launch_host,
        "binder_request": link.binder_request,
        "binder_persistent_request": link.persistent_request(version),
        "url": url,
    }


def built_only_event(*, image, link, version, launch_host):
    """The last event of ``build_only=true``: the image exists, nothing was launched."""
    return {
        "phase": "ready",
        "message": f"Done! Image {image} is built; no server was launched (build_only).\n",
        "imageName": image,
        "image": image,
        "repo_url": link.repo_url,
        "binder_ref_url": link.ref_url(version),
        "binder_launch_host": launch_host,
        "binder_request": link.binder_request,
        "binder_persistent_request": link.persistent_request(version),
    }


def failed_event(message):
    return {"phase": "failed", "message": message.rstrip("\n") + "\n"}


def sse(event):
    """One event-stream record."""
    return f"data: {json.dumps(event)}\n\n"
