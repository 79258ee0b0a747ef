"""Push events from GitHub, GitLab and Gitea: their signatures and payloads (pure).

Each forge signs its webhook deliveries its documented way:
- GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the secret>``;
- Gitea: ``X-Gitea-Signature: <hex HMAC-SHA256 of the raw body>`` (the same HMAC without prefix);
- GitLab: ``X-Gitlab-Token: <the secret itself>`` (no HMAC: GitLab sends the token as is).
Every comparison is constant-time (hmac.compare_digest). A signature proves who sent the body, not
when: a replayed delivery verifies, so deliveries are also told apart by their delivery id
(``X-GitHub-Delivery``, ``X-Gitea-Delivery``, ``X-Gitlab-Event-UUID``) and by the commit they name.

``read_push`` turns a verified push payload into a ``Push``: the repository's clone URL, the ref,
the pushed commit (``after``), whether the push deleted the ref or pushed a tag, and whether the
forge calls the repository private. Field names follow the forges' documented push payloads.
"""

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Optional

from binderspawner import messages

FORGES = ("github", "gitlab", "gitea")
ZERO_SHA = re.compile(r"^0+$")
FULL_SHA = re.compile(r"^[0-9a-f]{40}$|^[0-9a-f]{64}$")
# What git check-ref-format refuses: control characters, space ~ ^ : ? * [ \, '..', '@{', '//',
# a component starting with '.' or ending in '.lock', a trailing '/' or '.'.
_BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|/\.|\.lock(/|$)|[/.]$")

# The header naming each forge's event, and the values that are push events.
EVENT_HEADERS = {"github": "X-GitHub-Event", "gitlab": "X-Gitlab-Event", "gitea": "X-Gitea-Event"}
PUSH_EVENTS = {"github": {"push"}, "gitlab": {"Push Hook", "Tag Push Hook"}, "gitea": {"push"}}
PING_EVENTS = {"github": {"ping"}, "gitlab": set(), "gitea": set()}
DELIVERY_HEADERS = {"github": "X-GitHub-Delivery", "gitlab": "X-Gitlab-Event-UUID", "gitea": "X-Gitea-Delivery"}
SIGNATURE_HEADERS = {"github": "X-Hub-Signature-256", "gitlab": "X-Gitlab-Token", "gitea": "X-Gitea-Signature"}


class PayloadError(ValueError):
    """A delivery that is not a push this hub can read; the message names the field."""


def hmac_sha256(secret, body):
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def signature_refusal(forge, secret, headers, body):
    """Why this delivery's signature does not hold (None: it does). ``headers`` is a mapping with
    case-insensitive lookup (tornado's HTTPHeaders); ``body`` the raw bytes as received."""
    header = SIGNATURE_HEADERS[forge]
    given = headers.get(header)
    if not given:
        return messages.PREBUILD_NO_SIGNATURE.format(header=header)
    if forge == "gitlab":
        ok = hmac.compare_digest(given.encode("utf-8"), secret.encode("utf-8"))
    else:
        expected = hmac_sha256(secret, body)
        if forge == "github":
            expected = "sha256=" + expected
        ok = hmac.compare_digest(given.strip().lower().encode("utf-8"), expected.encode("utf-8"))
    return None if ok else messages.PREBUILD_BAD_SIGNATURE.format(header=header, forge=forge)


@dataclass(frozen=True)
class Push:
    forge: str
    repo_url: str  # what the forge says the repository is cloned from
    name: str  # the forge's name for it: 'org/repo', 'group/sub/project'
    ref: str  # 'refs/heads/main', 'refs/tags/v1'
    commit: str  # the pushed commit ('after'); '' when the push deleted the ref
    private: bool = False

    @property
    def deleted(self):
        return not self.commit

    @property
    def tag(self):
        """The tag name of a tag push, else None."""
        return self.ref[len("refs/tags/"):] if self.ref.startswith("refs/tags/") else None

    @property
    def branch(self):
        """The branch name of a branch push, else None."""
        return self.ref[len("refs/heads/"):] if self.ref.startswith("refs/heads/") else None


def parse_json(body):
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as e:
        raise PayloadError(f"the body is not JSON ({e}); set the webhook's content type to "
                           "application/json") from None
    if not isinstance(payload, dict):
        raise PayloadError("the body is not a JSON object")
    return payload


def _text(payload, *path):
    value = payload
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if not isinstance(value, str) or not value:
        raise PayloadError(f"the payload has no '{'.'.join(path)}'")
    return value


def read_push(forge, payload):
    """The Push a verified push payload describes, or PayloadError naming the missing field."""
    ref = _text(payload, "ref")
    after = _text(payload, "after").lower()
    if forge == "gitlab":
        project = payload.get("project") if isinstance(payload.get("project"), dict) else {}
        # 'project.git_http_url' (current) or 'repository.git_http_url' (older GitLab)
        url = project.get("git_http_url") or (payload.get("repository") or {}).get("git_http_url")
        if not isinstance(url, str) or not url:
            raise PayloadError("the payload has no 'project.git_http_url'")
        name = project.get("path_with_namespace") or url
        private = project.get("visibility_level", 20) != 20  # 0 private, 10 internal, 20 public
    else:
        url = _text(payload, "repository", "clone_url")
        name = (payload.get("repository") or {}).get("full_name") or url
        private = bool((payload.get("repository") or {}).get("private"))
    deleted = bool(ZERO_SHA.match(after)) or payload.get("deleted") is True
    if not deleted and not FULL_SHA.match(after):
        raise PayloadError(f"'after' is not a commit sha: {after[:80]!r}")
    if not ref.startswith(("refs/heads/", "refs/tags/")):
        raise PayloadError(f"'ref' is not a branch or tag: {ref[:200]!r}")
    if _BAD_REF.search(ref) or len(ref) > 1024:
        raise PayloadError(f"'ref' is not a valid git ref name: {ref[:200]!r}")
    return Push(forge=forge, repo_url=url, name=str(name), ref=ref, commit="" if deleted else after,
                private=private)


def event_kind(forge, headers):
    """'push', 'ping', or the (other) event's name as the forge sent it ('' when none)."""
    event = headers.get(EVENT_HEADERS[forge]) or ""
    if event in PUSH_EVENTS[forge]:
        return "push"
    if event in PING_EVENTS[forge]:
        return "ping"
    return event


def delivery_id(forge, headers) -> Optional[str]:
    value = headers.get(DELIVERY_HEADERS[forge])
    return value[:200] if value else None
