"""When a Binder session will be stopped, told inside the session by JupyterLab itself.

This one file is copied into every image the venv buildpack builds and installed into the server's
environment as the module ``binderspawner_session`` (``python notice.py install``). It needs only
the standard library, plus JupyterLab when the server imports it, and nothing of binderspawner, so
the hub imports the same file for its own pages (one wording on both sides).

Inside the server, JupyterLab's update check (``LabApp.check_for_updates_class``, whose answer
JupyterLab shows as a notification, and keeps in its notification list) is replaced by
:class:`CullNotice`, which answers with the stop times the spawner put in the environment. JupyterLab
runs that check only once the "Fetch official Jupyter news" setting has an answer, so the installed
settings override answers it ("Never"; a member may still turn news on). No request leaves the server.
"""

import json
import os
import shutil
import sys
import sysconfig
from datetime import datetime, timedelta, timezone

ENV_IDLE = "BINDER_CULL_IDLE_TIMEOUT"  # seconds without activity before the server is stopped; 0: never
ENV_MAX_AGE = "BINDER_CULL_MAX_AGE"  # seconds after the start when it is stopped anyway; 0: never
ENV_STARTED = "BINDER_SERVER_STARTED"  # when the hub started it (ISO 8601, UTC), as the culler counts
ENV_LINK = "BINDER_SESSION_LINK"  # "label|url" of the notification's button (the share page), optional

MODULE = "binderspawner_session"
SERVER_CONFIG = {"LabApp": {"check_for_updates_class": f"{MODULE}.CullNotice"}}
LAB_OVERRIDES = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": True}}
CONFIG_NAME = "binderspawner-session.json"


# --- the schedule and its words (pure) --------------------------------------------------------------

def parse_time(text):
    """An ISO 8601 time as an aware UTC datetime (naive counts as UTC), or None."""
    try:
        when = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def schedule(now, started, idle_timeout, max_age):
    """When a server is stopped (pure): ``idle_at`` if nobody uses it from ``now`` on, ``ends_at``
    at the latest (``started + max_age``); either is None when that rule is off."""
    idle_timeout, max_age = max(int(idle_timeout or 0), 0), max(int(max_age or 0), 0)
    if started is not None and started.tzinfo is None:
        started = started.replace(tzinfo=timezone.utc)
    return {
        "idle_timeout": idle_timeout,
        "idle_at": now + timedelta(seconds=idle_timeout) if idle_timeout else None,
        "max_age": max_age,
        "ends_at": started + timedelta(seconds=max_age) if max_age and started is not None else None,
    }


def duration(seconds):
    """'10 minutes', '1 minute', '2 h 5 min', '6 hours' (pure)."""
    minutes = max(int(round(seconds / 60)), 0)
    if minutes < 1:
        return "less than a minute"
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours, rest = divmod(minutes, 60)
    if not rest:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{hours} h {rest} min"


def clock(when):
    """'HH:MM UTC', with the date too when it is not today's (UTC)."""
    return when.astimezone(timezone.utc).strftime("%H:%M UTC")


def clock_with_day(when, now):
    text = clock(when)
    if when.astimezone(timezone.utc).date() != now.astimezone(timezone.utc).date():
        text = when.astimezone(timezone.utc).strftime("%Y-%m-%d ") + text
    return text


def session_notice(now, started, idle_timeout, max_age):
    """What the member reads inside the session (pure), or None when no rule stops the server."""
    plan = schedule(now, started, idle_timeout, max_age)
    parts = []
    if plan["idle_at"]:
        parts.append(f"after {duration(plan['idle_timeout'])} without activity")
    if plan["ends_at"]:
        left = (plan["ends_at"] - now).total_seconds()
        parts.append(f"at the latest at {clock_with_day(plan['ends_at'], now)} "
                     f"(in {duration(left)}; sessions last at most {duration(plan['max_age'])})")
    if not parts:
        return None
    return (f"This session is stopped {', and '.join(parts)}. Save your work, and download the "
            "notebooks you want to keep: the notebook toolbar's Download button works even after the "
            "connection is lost.")


def from_environment(environ):
    """(started, idle_timeout, max_age) the spawner put in the server's environment (pure)."""
    def seconds(name):
        try:
            return max(int(environ.get(name, "0") or 0), 0)
        except ValueError:
            return 0
    return parse_time(environ.get(ENV_STARTED, "")), seconds(ENV_IDLE), seconds(ENV_MAX_AGE)


def notification(environ, now):
    """JupyterLab's update-check answer (pure): None, a message, or (message, (label, url))."""
    started, idle_timeout, max_age = from_environment(environ)
    message = session_notice(now, started, idle_timeout, max_age)
    if message is None:
        return None
    label, sep, url = environ.get(ENV_LINK, "").partition("|")
    return (message, (label, url)) if sep and label and url.startswith("/") else message


# --- inside the server -----------------------------------------------------------------------------

try:
    from jupyterlab.handlers.announcements import CheckForUpdateABC
except ImportError:  # on the hub, or before JupyterLab is installed
    CheckForUpdateABC = None

if CheckForUpdateABC is not None:
    class CullNotice(CheckForUpdateABC):
        """LabApp.check_for_updates_class: when this session is stopped, instead of JupyterLab's
        release check (which would ask a package index on the internet)."""

        async def __call__(self):
            return notification(os.environ, datetime.now(timezone.utc))


# --- installing it into a server environment (run by the image build) ----------------------------

def install(prefix=sys.prefix):
    """Put this module and its settings into the Python environment at ``prefix`` (the one running
    this): the module in its site-packages, the LabApp setting in the environment's
    jupyter_lab_config.json (LabApp reads no .d directory; settings already there are kept), and
    the answer to JupyterLab's news question in its settings overrides."""
    purelib = sysconfig.get_path("purelib")
    shutil.copyfile(os.path.abspath(__file__), os.path.join(purelib, f"{MODULE}.py"))
    _merge_json(os.path.join(prefix, "etc", "jupyter", "jupyter_lab_config.json"), SERVER_CONFIG)
    _merge_json(os.path.join(prefix, "share", "jupyter", "lab", "settings", "overrides.d", CONFIG_NAME),
                LAB_OVERRIDES)


def _merge_json(path, content):
    """Write ``content``'s sections into the JSON object at ``path``, keeping its other keys."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        with open(path) as f:
            existing = json.load(f)
    except (OSError, ValueError):
        existing = {}
    if not isinstance(existing, dict):
        existing = {}
    for section, values in content.items():
        merged = existing.get(section) if isinstance(existing.get(section), dict) else {}
        existing[section] = {**merged, **values}
    with open(path, "w") as f:
        json.dump(existing, f, indent=1)


if __name__ == "__main__":
    if sys.argv[1:] != ["install"]:
        sys.exit(f"usage: {sys.executable} {sys.argv[0]} install")
    install()
