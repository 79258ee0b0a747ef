"""Webhook signatures and push payloads of GitHub, GitLab and Gitea (prebuild/forges.py).

Payloads and headers follow the forges' documented push events (tests/support/forgehooks.py);
they are fixtures, not recorded deliveries."""

import json

import pytest
from tornado.httputil import HTTPHeaders

from binderspawner.prebuild import forges
from tests.support.forgehooks import ZERO, delivery, push_payload

SECRET = "s3cret-value"
SHA = "bffeb74224043ba2feb48d137756c8a9331c449a"
OTHER = "28e1879d029cb852e4844d9c718537df08844e03"
URLS = {"github": "https://github.com/octo-org/hello.git", "gitlab": "https://gitlab.example.com/grp/sub/proj.git",
        "gitea": "https://gitea.example.org/lab/course.git"}


def signed(forge, payload=None, secret=SECRET, **kwargs):
    payload = payload or push_payload(forge, URLS[forge], "lab/x", "refs/heads/main", SHA)
    body, headers = delivery(forge, payload, secret, **kwargs)
    return body, HTTPHeaders(headers)


@pytest.mark.parametrize("forge", forges.FORGES)
def test_a_good_signature_holds(forge):
    body, headers = signed(forge)
    assert forges.signature_refusal(forge, SECRET, headers, body) is None


@pytest.mark.parametrize("forge", forges.FORGES)
def test_a_missing_signature_is_refused_naming_the_header(forge):
    body, headers = signed(forge, secret=None)
    refusal = forges.signature_refusal(forge, SECRET, headers, body)
    assert refusal == f"the delivery has no {forges.SIGNATURE_HEADERS[forge]} header"


@pytest.mark.parametrize("forge", forges.FORGES)
def test_another_secret_is_refused(forge):
    body, headers = signed(forge, secret="someone-else")
    assert "does not match" in forges.signature_refusal(forge, SECRET, headers, body)


@pytest.mark.parametrize("forge", ["github", "gitea"])
def test_a_signature_replayed_onto_another_body_is_refused(forge):
    body, headers = signed(forge)
    other_body, _ = signed(forge, push_payload(forge, URLS[forge], "lab/x", "refs/heads/main", OTHER))
    assert forges.signature_refusal(forge, SECRET, headers, other_body) is not None
    assert forges.signature_refusal(forge, SECRET, headers, body + b" ") is not None


def test_gitlab_token_does_not_sign_the_body():
    """GitLab documents X-Gitlab-Token as the secret itself: any body with it passes. Repeats are
    caught by delivery id and commit (runner), not by the signature."""
    body, headers = signed("gitlab")
    assert forges.signature_refusal("gitlab", SECRET, headers, b'{"other": 1}') is None


@pytest.mark.parametrize("forge", forges.FORGES)
def test_the_same_delivery_replayed_verifies_and_keeps_its_delivery_id(forge):
    body, headers = signed(forge, delivery_id="d-1")
    assert forges.signature_refusal(forge, SECRET, headers, body) is None
    assert forges.delivery_id(forge, headers) == "d-1"


def test_signature_header_case_and_prefix():
    body, headers = signed("github")
    headers["X-Hub-Signature-256"] = headers["X-Hub-Signature-256"].upper().replace("SHA256=", "sha256=")
    assert forges.signature_refusal("github", SECRET, headers, body) is None
    bare = HTTPHeaders({"X-Hub-Signature-256": forges.hmac_sha256(SECRET, body)})  # no 'sha256='
    assert forges.signature_refusal("github", SECRET, bare, body) is not None


@pytest.mark.parametrize("forge", forges.FORGES)
def test_branch_push_maps_to_the_clone_url_and_after(forge):
    payload = push_payload(forge, URLS[forge], "lab/x", "refs/heads/main", SHA, before=OTHER)
    push = forges.read_push(forge, payload)
    assert (push.repo_url, push.ref, push.commit, push.branch, push.tag) == (URLS[forge], "refs/heads/main", SHA,
                                                                             "main", None)
    assert not push.deleted and not push.private


@pytest.mark.parametrize("forge", forges.FORGES)
def test_deleted_branch_has_no_commit(forge):
    push = forges.read_push(forge, push_payload(forge, URLS[forge], "lab/x", "refs/heads/old", ZERO, before=SHA))
    assert push.deleted and push.commit == ""


@pytest.mark.parametrize("forge", forges.FORGES)
def test_tag_push(forge):
    push = forges.read_push(forge, push_payload(forge, URLS[forge], "lab/x", "refs/tags/v1.0", SHA))
    assert push.tag == "v1.0" and push.branch is None and push.commit == SHA


def test_gitlab_tag_push_event_and_visibility():
    payload = push_payload("gitlab", URLS["gitlab"], "grp/sub/proj", "refs/tags/v2", SHA, visibility_level=0)
    _, headers = signed("gitlab", payload)
    assert forges.event_kind("gitlab", headers) == "push"  # 'Tag Push Hook'
    push = forges.read_push("gitlab", payload)
    assert push.private and push.name == "grp/sub/proj"
    internal = push_payload("gitlab", URLS["gitlab"], "grp/p", "refs/heads/main", SHA, visibility_level=10)
    assert forges.read_push("gitlab", internal).private


def test_older_gitlab_payload_with_repository_url():
    payload = push_payload("gitlab", URLS["gitlab"], "grp/p", "refs/heads/main", SHA)
    del payload["project"]
    assert forges.read_push("gitlab", payload).repo_url == URLS["gitlab"]


@pytest.mark.parametrize("forge", ["github", "gitea"])
def test_private_flag(forge):
    payload = push_payload(forge, URLS[forge], "lab/x", "refs/heads/main", SHA, private=True)
    assert forges.read_push(forge, payload).private


@pytest.mark.parametrize("change, field", [
    (lambda p: p.pop("ref"), "'ref'"),
    (lambda p: p.update(after="not-a-sha"), "'after'"),
    (lambda p: p.update(ref="refs/pull/1/head"), "'ref' is not a branch or tag"),
    # names git itself refuses (check-ref-format): they would reach the spec, logs and answers
    (lambda p: p.update(ref="refs/heads/main\nPrebuild: forged log line"), "'ref' is not a valid git ref name"),
    (lambda p: p.update(ref="refs/heads/a b"), "'ref' is not a valid git ref name"),
    (lambda p: p.update(ref="refs/tags/../../heads/x"), "'ref' is not a valid git ref name"),
    (lambda p: p.update(ref="refs/tags/v1\x7f"), "'ref' is not a valid git ref name"),
    (lambda p: p.update(ref="refs/heads/x.lock"), "'ref' is not a valid git ref name"),
    (lambda p: p.update(ref="refs/heads/.hidden"), "'ref' is not a valid git ref name"),
    (lambda p: p.update(ref="refs/heads/a@{1}"), "'ref' is not a valid git ref name"),
    (lambda p: p.update(ref="refs/heads/"), "'ref' is not a valid git ref name"),
    (lambda p: p["repository"].pop("clone_url"), "'repository.clone_url'"),
])
def test_malformed_payloads_name_the_field(change, field):
    payload = push_payload("github", URLS["github"], "lab/x", "refs/heads/main", SHA)
    change(payload)
    with pytest.raises(forges.PayloadError, match=field):
        forges.read_push("github", payload)


@pytest.mark.parametrize("ref", ["refs/heads/main", "refs/heads/feature/x-1_2.3", "refs/tags/v1.0.0",
                                 "refs/heads/ünïcode", "refs/heads/a.b/c"])
def test_ordinary_ref_names_are_read(ref):
    payload = push_payload("github", URLS["github"], "lab/x", ref, SHA)
    assert forges.read_push("github", payload).ref == ref


def test_bodies_that_are_not_json_objects():
    with pytest.raises(forges.PayloadError, match="not JSON"):
        forges.parse_json(b"payload=%7B%7D")  # GitHub's form-encoded content type
    with pytest.raises(forges.PayloadError, match="not a JSON object"):
        forges.parse_json(json.dumps([1]).encode())


def test_event_kinds():
    assert forges.event_kind("github", HTTPHeaders({"X-GitHub-Event": "ping"})) == "ping"
    assert forges.event_kind("github", HTTPHeaders({"X-GitHub-Event": "issues"})) == "issues"
    assert forges.event_kind("gitea", HTTPHeaders({"X-Gitea-Event": "push"})) == "push"
    assert forges.event_kind("gitlab", HTTPHeaders({"X-Gitlab-Event": "Merge Request Hook"})) == "Merge Request Hook"
    assert forges.event_kind("gitlab", HTTPHeaders({})) == ""
