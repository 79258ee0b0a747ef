"""Push deliveries as GitHub, GitLab and Gitea send them, for tests and benchmarks.

The payloads follow each forge's documented push event (GitHub's "push" webhook payload, GitLab's
"Push Hook"/"Tag Push Hook", Gitea's "push" event with its documented example), trimmed to the
fields a receiver reads plus a few around them; the headers are the documented ones (event,
delivery id, signature). None of the forges can be reached from here: these are fixtures that
follow the documentation, not recordings of real deliveries.
"""

import hashlib
import hmac
import json
import uuid

ZERO = "0" * 40


def github_push(clone_url, full_name, ref, after, before=ZERO, private=False):
    return {
        "ref": ref, "before": before, "after": after, "base_ref": None,
        "created": before == ZERO, "deleted": after == ZERO, "forced": False,
        "compare": f"{clone_url}/compare/{before[:12]}...{after[:12]}",
        "commits": [] if after == ZERO else [{"id": after, "distinct": True, "message": "update",
                                              "added": [], "removed": [], "modified": ["index.ipynb"]}],
        "head_commit": None if after == ZERO else {"id": after, "message": "update"},
        "repository": {"id": 1, "name": full_name.rsplit("/", 1)[-1], "full_name": full_name,
                       "private": private, "html_url": clone_url.removesuffix(".git"),
                       "clone_url": clone_url, "default_branch": "main"},
        "pusher": {"name": "octocat", "email": "octocat@example.invalid"},
        "sender": {"login": "octocat", "id": 1},
    }


def gitlab_push(git_http_url, path, ref, after, before=ZERO, visibility_level=20):
    tag = ref.startswith("refs/tags/")
    return {
        "object_kind": "tag_push" if tag else "push", "event_name": "tag_push" if tag else "push",
        "before": before, "after": after, "ref": ref, "ref_protected": False,
        "checkout_sha": None if after == ZERO else after, "user_id": 4, "user_name": "John Smith",
        "user_username": "jsmith", "project_id": 15,
        "project": {"id": 15, "name": path.rsplit("/", 1)[-1], "web_url": git_http_url.removesuffix(".git"),
                    "git_http_url": git_http_url, "namespace": path.split("/")[0],
                    "visibility_level": visibility_level, "path_with_namespace": path,
                    "default_branch": "main"},
        "commits": [] if after == ZERO else [{"id": after, "message": "update", "added": [],
                                              "modified": ["index.ipynb"], "removed": []}],
        "total_commits_count": 0 if after == ZERO else 1,
        "repository": {"name": path.rsplit("/", 1)[-1], "git_http_url": git_http_url,
                       "visibility_level": visibility_level},
    }


def gitea_push(clone_url, full_name, ref, after, before=ZERO, private=False):
    return {
        "ref": ref, "before": before, "after": after,
        "compare_url": f"{clone_url}/compare/{before}...{after}",
        "commits": [] if after == ZERO else [{"id": after, "message": "update", "url": clone_url}],
        "repository": {"id": 140, "owner": {"id": 1, "login": full_name.split("/")[0]},
                       "name": full_name.rsplit("/", 1)[-1], "full_name": full_name, "private": private,
                       "html_url": clone_url.removesuffix(".git"), "clone_url": clone_url,
                       "default_branch": "main"},
        "pusher": {"id": 1, "login": "gitea"}, "sender": {"id": 1, "login": "gitea"},
    }


def delivery(forge, payload, secret, event=None, delivery_id=None):
    """(body bytes, headers) of one delivery, signed as ``forge`` signs (secret None: unsigned)."""
    body = json.dumps(payload).encode()
    delivery_id = delivery_id or str(uuid.uuid4())
    headers = {"Content-Type": "application/json"}
    if forge == "github":
        headers.update({"X-GitHub-Event": event or "push", "X-GitHub-Delivery": delivery_id})
        if secret is not None:
            headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    elif forge == "gitlab":
        tag = payload.get("object_kind") == "tag_push"
        headers.update({"X-Gitlab-Event": event or ("Tag Push Hook" if tag else "Push Hook"),
                        "X-Gitlab-Event-UUID": delivery_id})
        if secret is not None:
            headers["X-Gitlab-Token"] = secret
    else:
        headers.update({"X-Gitea-Event": event or "push", "X-Gitea-Delivery": delivery_id,
                        "X-GitHub-Event": event or "push", "X-GitHub-Delivery": delivery_id})
        if secret is not None:
            headers["X-Gitea-Signature"] = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, headers


def push_payload(forge, url, name, ref, after, **kwargs):
    return {"github": github_push, "gitlab": gitlab_push, "gitea": gitea_push}[forge](url, name, ref, after, **kwargs)
