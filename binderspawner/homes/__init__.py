"""Persistent homes: a member's work on one repository survives culling, hub restarts and new commits.

One volume (Docker) or PersistentVolumeClaim (Kubernetes) per hub, member and repository (its one
identity, whatever the ref), mounted over the image's home, where repo2docker puts the repository.
A new home starts as a copy of the image's home; when a later launch runs a newer commit, the
commit's files are merged in at start (merge.py: per file, three-way, the member's files never
overwritten, conflicts written beside and listed). This module holds the settings and the pure
decisions (names, labels, the budget, expiry); dockerhost/homes.py and kubernetes/ do the I/O.
"""

import hashlib
import json
import re
from dataclasses import dataclass

from traitlets import Bool, Float, Unicode, validate
from traitlets.config import Configurable

from binderspawner import messages
from binderspawner.homes import merge
from binderspawner.services.imagecache import parse_size

LABEL = "binderspawner.home"  # "1" on every home volume / PVC
LABEL_USER = "binderspawner.home.user"
LABEL_REPO = "binderspawner.home.repo"
LABEL_KEY = "binderspawner.home.key"  # hash of hub, user and repository: short, always a valid label
LABEL_GENERATION = "binderspawner.home.generation"


class PersistentHome(Configurable):
    """Settings of persistent homes (``c.PersistentHome.*``), read by both backends and the
    cleanup service."""

    enabled = Bool(False, help="""Give each member one persistent home per repository: their edits to
        the repository's files and every file they add under the home survive culling, hub restarts
        and new commits (merged in at start; conflicts are kept beside, never overwritten). Docker:
        named volumes; Kubernetes: one PVC each (kubespawner's storage settings). Off: every
        server starts from the image, as on mybinder.org.""").tag(config=True)

    size_limit = Unicode("", help="""Most a home may hold ('10G'), where the storage can enforce it.
        Docker: passed to the volume driver as `size_option`; the local driver enforces it only on
        xfs mounted with pquota, and elsewhere new homes are refused with a message naming this
        setting (never made without the limit). Kubernetes: the PVC's storage request (whether it
        is a hard limit depends on the storage class). Empty: no limit (Kubernetes: 10Gi request).""",
                         ).tag(config=True)

    @validate("size_limit")
    def _valid_size(self, proposal):
        if proposal.value:
            parse_size(proposal.value)  # ValueError names the value at config load
        return proposal.value

    volume_driver = Unicode("local", help="Docker volume driver for new homes.").tag(config=True)
    size_option = Unicode("size", help="""Name of the volume driver's size option that size_limit is
        passed as ('size' for Docker's local driver).""").tag(config=True)

    total_budget = Unicode("", help="""Disk all homes together may use ('500G'). When the cleanup
        service last measured them at or above it, launches that would make a new home are refused
        with a message (members keep using the homes they have: nobody's work is removed to make
        room). Needs the cleanup service (it measures; cleanup.configure(c) called after
        c.PersistentHome.enabled). Empty: no budget.""").tag(config=True)

    @validate("total_budget")
    def _valid_budget(self, proposal):
        if proposal.value:
            parse_size(proposal.value)
        return proposal.value

    expire_days = Float(30, help="""The cleanup service removes homes unused for this many days (no
        launch or stop in that time, no container using them), oldest first. Homes set aside by
        'start fresh' expire the same way. 0: homes never expire. Read by
        binderspawner.services.cleanup.configure(c): set it (and enabled) before that call.""").tag(config=True)

    mount_path = Unicode("", help="""Where the home is mounted in the server. Empty: the image's
        $HOME (Docker; /home/jovyan in repo2docker images, which is also $REPO_DIR) or /home/jovyan
        (Kubernetes).""").tag(config=True)

    merge_timeout = Float(300, help="""Seconds the merge of a new commit into a home may take at start;
        after it the server starts with the home as it is, and the member is told.""").tag(config=True)

    volume_prefix = Unicode("binder-home-", help="Prefix of home volume / PVC names.").tag(config=True)


@dataclass(frozen=True)
class Home:
    """One member's home for one repository (pure data)."""

    name: str  # the volume or PVC name
    user: str
    repository: str  # the repository's one identity (Source.repository)
    generation: int
    labels: dict


def home_key(hub_id, user, repository):
    """A short hash naming the (hub, member, repository) triple (pure)."""
    return hashlib.sha256("\0".join((hub_id, user, repository)).encode()).hexdigest()[:16]


def home_for(prefix, hub_id, user, repository, generation=0, hub_label="binderspawner.hub"):
    """The Home of ``user`` for ``repository`` (pure). The name is a valid Docker volume name and a
    DNS label (Kubernetes), readable (user) and unique (hash of hub, user and repository)."""
    key = home_key(hub_id, user, repository)
    readable = re.sub(r"[^a-z0-9]+", "-", user.lower()).strip("-")[:20] or "user"
    name = f"{prefix}{readable}-{key}-{generation}"[:63].rstrip("-")
    labels = {LABEL: "1", hub_label: hub_id, LABEL_USER: user, LABEL_REPO: repository,
              LABEL_KEY: key, LABEL_GENERATION: str(generation)}
    return Home(name, user, repository, generation, labels)


def budget_refusal(budget, measured_bytes):
    """Why no new home may be made now (None: it may), given the admin's total_budget and the
    bytes all homes used at the cleanup service's last pass (None: never measured). Pure."""
    if not budget:
        return None
    if measured_bytes is None:
        return messages.HOME_BUDGET_UNMEASURED
    if measured_bytes >= parse_size(budget):
        return messages.HOME_BUDGET_FULL.format(used=measured_bytes / 1024**3, budget=budget)
    return None


@dataclass(frozen=True)
class StoredHome:
    """A home as the cleanup service sees it (pure data)."""

    name: str
    last_used: float  # seconds since the epoch (its creation time if never recorded)
    in_use: bool  # a container (running or not) mounts it
    size: int = -1  # bytes, -1 where not measurable


def plan_expiry(homes, now, expire_days):
    """Homes to remove: unused for ``expire_days`` and mounted by no container, oldest first (pure)."""
    if not expire_days or expire_days <= 0:
        return []
    limit = expire_days * 86400
    return sorted((h for h in homes if not h.in_use and now - h.last_used >= limit),
                  key=lambda h: h.last_used)


HELPER_LOG_BYTES = "1m"  # the merge helper's log is kept to this (Docker's json-file max-size)
HELPER_LOG_LINES = 200  # the lines of it the hub reads: the summary is the last


def helper_summary(output):
    """The merge summary from the helper's output (pure). The helper runs the launch image's
    python3, which the repository may have replaced: anything but a summary of the expected shape
    is a failed merge, never trusted further."""
    for line in reversed(output.splitlines()):
        if line.startswith(merge.MARKER):
            try:
                summary = json.loads(line[len(merge.MARKER):])
            except ValueError:
                break
            return summary if _summary_shape(summary) else {"error": messages.HOME_MERGE_UNREADABLE}
    tail = output.strip().splitlines()[-1:] or ["no output"]
    return {"error": f"the merge helper ended without a result ({tail[0][:200]}); does the image have python3?"}


def _summary_shape(summary):
    texts = (str, type(None))
    return (isinstance(summary, dict)
            and all(isinstance(summary.get(k, 0), int) for k in ("taken", "deleted"))
            and all(isinstance(summary.get(k), texts) for k in ("error", "note", "commit", "base"))
            and isinstance(summary.get("conflicts", []), list) and isinstance(summary.get("skipped", []), list)
            and all(isinstance(c, dict) and isinstance(c.get("path"), str) and isinstance(c.get("beside"), texts)
                    for c in summary.get("conflicts", []))
            and all(isinstance(s, str) for s in summary.get("skipped", [])))


def merge_message(summary, commit):
    """One progress-page line from the merge script's summary (pure)."""
    if summary is None:
        return messages.HOME_MERGE_FAILED.format(commit=commit[:12], reason="it gave no result")
    if summary.get("error"):
        return messages.HOME_MERGE_FAILED.format(commit=commit[:12], reason=str(summary["error"])[:300])
    if summary.get("unchanged") or summary.get("initial"):
        return None
    conflicts = summary.get("conflicts") or []
    text = messages.HOME_MERGED.format(commit=commit[:12], taken=summary.get("taken", 0),
                                       deleted=summary.get("deleted", 0))
    if conflicts:
        listed = ", ".join(
            f"{c.get('path')} (new version: {c['beside']})" if c.get("beside") else f"{c.get('path')}"
            for c in conflicts[:10])
        more = f" and {len(conflicts) - 10} more" if len(conflicts) > 10 else ""
        text += " " + messages.HOME_CONFLICTS.format(count=len(conflicts), files=listed + more,
                                                     note=summary.get("note", ""))
    skipped = summary.get("skipped") or []
    if skipped:
        text += " " + messages.HOME_SKIPPED.format(files=", ".join(map(str, skipped[:10])))
    return text


def touch(lifecycle_dir, name, log):
    """Note that the home ``name`` was used now (a server on it stops): expiry counts from here."""
    from binderspawner.homes.records import HomeRecords

    try:
        HomeRecords(lifecycle_dir).touch(name)
    except Exception:  # noqa: BLE001 - bookkeeping must not fail a stop
        log.exception("Could not record the use of home %s", name)


def form_field(spawner):
    """The spawn form's 'start fresh' checkbox (HTML), or '' when homes are off."""
    settings = PersistentHome(config=spawner.config) if hasattr(spawner, "config") else None
    if settings is None or not settings.enabled:
        return ""
    # as HOME_FRESH says after the launch: the old home expires like any unused one
    kept = (f"kept untouched, and removed after {settings.expire_days:g} days unused" if settings.expire_days > 0
            else "kept untouched")
    return ('<div class="form-check mb-2"><input class="form-check-input" type="checkbox" id="binder-home-fresh" '
            'name="home" value="fresh"><label class="form-check-label" for="binder-home-fresh">'
            f'Start with a fresh home: your saved work on this repository is set aside ({kept}) and the '
            'server starts from the repository as it is.</label></div>')


from binderspawner.homes import records  # noqa: E402,F401 - registers the hook that marks shared homes
