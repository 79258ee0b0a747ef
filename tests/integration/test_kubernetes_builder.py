"""KubernetesBuilder's control flow: create the build pod, attach to a running one, stream its log,
tell success from failure, clean up; for a private repository, the member's token in a short-lived
Secret the pod reads, never in the pod itself.

No Kubernetes API server can run on this machine, so these tests run against recorded Kubernetes API
responses (Pod, PodList and Status objects, a followed pods/log stream) served by a local HTTP server
on 127.0.0.1 that the test session starts (tests/support/kubeapi.py); kubernetes_asyncio is pointed at
it with a kubeconfig, through kubespawner's own configuration loading and shared client.
"""

import base64
import datetime
import json
import logging
import time

import pytest

from binderspawner.builders.repo2docker import credential_variables
from binderspawner.builders import BuildRequest
from binderspawner.errors import BuildFailed
from binderspawner.kubernetes import KubernetesBuilder, objects
from binderspawner.providers import RepoSource, ResolvedRepo, TokenCredentials
from tests.support.kubeapi import FakePod, pending, running, stored_secret, terminated, waiting

SHA = "0123456789abcdef0123456789abcdef01234567"
URL = "https://git.example.org/lab/analysis.git"
IMAGE = f"registry.example.org:5000/binder/git-example-org-lab-analysis-1a2b3c4d:{SHA}"


def request(image=IMAGE):
    source = RepoSource(provider="git", spec=URL, fetch_url=URL, slug="git.example.org/lab/analysis",
                        display_name=URL)
    return BuildRequest(image, ResolvedRepo(source, "main", SHA, "branch main"),
                        {"binderspawner.repo": URL, "binderspawner.commit": SHA})


def r2d_log(*messages, phase="building"):
    return [json.dumps({"phase": phase, "message": m + "\n"}) for m in messages]


@pytest.fixture
def api(kube_api):
    kube_api.reset()
    KubernetesBuilder._last_cleanup.clear()
    yield kube_api
    kube_api.reset()


@pytest.fixture
def builder(api):
    return KubernetesBuilder(namespace="binder", poll_interval=0.01, build_timeout=30)


def pod_name(image=IMAGE):
    return objects.build_pod_name(image)


async def run(builder, req=None):
    events = []
    await builder.build(req or request(), lambda phase, message, fraction=None: events.append((phase, message)))
    return events


async def test_build_creates_the_pod_streams_the_log_and_removes_the_pod(api, builder):
    api.script[pod_name()] = (
        [pending(), pending(), waiting("ContainerCreating"), running(), running(), terminated(0)],
        r2d_log("Picked Git content provider.", phase="fetching")
        + r2d_log("#5 [2/4] RUN pip install -r requirements.txt", "Successfully pushed image"),
    )
    events = await run(builder)
    messages = [m for _, m in events]
    assert f"Building {URL} at {SHA[:12]} in pod {pod_name()}" in messages
    assert any("pending: 0/3 nodes are available: 3 Insufficient cpu." in m for m in messages)
    assert any("pending: ContainerCreating" in m for m in messages)
    assert ("fetching", "Picked Git content provider.") in events
    assert ("building", "#5 [2/4] RUN pip install -r requirements.txt") in events
    assert events[-1] == ("built", f"Built image {IMAGE}")
    created = api.calls("POST")
    assert created == ["/api/v1/namespaces/binder/pods"]
    log_calls = api.calls("GET")
    assert any(p.startswith(f"/api/v1/namespaces/binder/pods/{pod_name()}/log?") and "follow=true" in p.lower()
               and "container=build" in p for p in log_calls), log_calls
    assert api.calls("DELETE") == [f"/api/v1/namespaces/binder/pods/{pod_name()}?gracePeriodSeconds=0"]
    assert pod_name() not in api.pods


async def test_the_pod_runs_repo2docker_with_push_and_the_builders_settings(api, builder):
    await run(builder)
    (_, path), = [r for r in api.requests if r[0] == "POST"]
    # the manifest the API received is the pure function's output
    assert builder.pod_manifest(request())["spec"]["containers"][0]["args"] == [
        "python3", "-m", "binderspawner.kubernetes.r2d", "--push", "--no-run", "--json-logs",
        "--user-id", "1000", "--user-name", "jovyan", "--image-name", IMAGE, "--ref", SHA,
        "--label", f"binderspawner.commit={SHA}", "--label", f"binderspawner.repo={URL}", URL]


async def test_a_second_launch_attaches_to_the_running_build(api, builder):
    manifest = builder.pod_manifest(request())
    api.pods[pod_name()] = FakePod(manifest, [running(), running(), terminated(0)],
                                   r2d_log("Step from the first launch's build"))
    events = await run(builder)
    messages = [m for _, m in events]
    assert f"Attaching to the running build of {URL} at {SHA[:12]} in pod {pod_name()}" in messages
    assert "Step from the first launch's build" in messages
    assert events[-1][0] == "built"
    assert api.calls("POST") == ["/api/v1/namespaces/binder/pods"], "exactly one create, refused with 409"
    assert len(api.pods) == 0


async def test_a_finished_pod_from_an_earlier_failure_is_replaced(api, builder):
    KubernetesBuilder._last_cleanup["binder"] = time.monotonic()  # no sweep: meet the old pod
    api.pods[pod_name()] = FakePod(builder.pod_manifest(request()), [terminated(1)], [])
    api.script[pod_name()] = ([running(), terminated(0)], r2d_log("fresh build"))
    events = await run(builder)
    assert "fresh build" in [m for _, m in events]
    assert len(api.calls("POST")) == 2  # refused (409), then created after the old pod was deleted
    assert events[-1][0] == "built"


async def test_a_failed_build_raises_with_the_log_tail_and_removes_the_pod(api, builder):
    api.script[pod_name()] = ([running(), terminated(1)],
                              r2d_log("Collecting nosuchpackage", "ERROR: No matching distribution found"))
    with pytest.raises(BuildFailed) as failed:
        await run(builder)
    message = failed.value.message
    assert "failed (Error, exit code 1)" in message
    assert message.endswith("Collecting nosuchpackage\nERROR: No matching distribution found")
    assert pod_name() not in api.pods


async def test_keep_failed_pods_leaves_the_pod_for_kubectl_logs(api):
    builder = KubernetesBuilder(namespace="binder", poll_interval=0.01, keep_failed_pods=True)
    api.script[pod_name()] = ([running(), terminated(137, "OOMKilled")], r2d_log("building"))
    with pytest.raises(BuildFailed, match=r"OOMKilled, exit code 137"):
        await run(builder)
    assert pod_name() in api.pods


async def test_a_build_image_that_cannot_be_pulled_fails_fast_with_a_hint(api, builder):
    api.script[pod_name()] = ([waiting("ErrImagePull", 'pull access denied for "binderspawner-builder"')], [])
    with pytest.raises(BuildFailed) as failed:
        await run(builder)
    assert "cannot start: ErrImagePull" in failed.value.message
    assert "c.KubernetesBuilder.build_image" in failed.value.message
    assert pod_name() not in api.pods


async def test_missing_rbac_is_explained(api, builder):
    api.create_error = (403, "Forbidden")
    with pytest.raises(BuildFailed) as failed:
        await run(builder)
    assert "HTTP 403" in failed.value.message
    assert "Role allowing pods and pods/log" in failed.value.message


async def test_sweep_removes_finished_and_stuck_build_pods_only(api, builder):
    def add(name, status, age, component=objects.BUILD_COMPONENT):
        manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": name, "labels": {"app.kubernetes.io/component": component}},
            "spec": {"containers": [{"name": "build", "image": "b"}]}}
        api.pods[name] = FakePod(manifest, [status], [], age=age)

    add("done", terminated(0), 10)
    add("failed", terminated(1), 10)
    add("stuck", pending(), 3600)  # older than build_timeout + 60
    add("young", running(), 5)
    add("someone-elses", terminated(0), 10, component="singleuser-server")
    removed = await builder.sweep(force=True)
    assert sorted(removed) == ["done", "failed", "stuck"]
    assert sorted(api.pods) == ["someone-elses", "young"]
    assert await builder.sweep() == [], "sweeps are rate-limited to cleanup_interval"


def test_pods_to_delete_is_a_pure_decision():
    now = datetime.datetime(2026, 1, 1, 12, tzinfo=datetime.timezone.utc)
    minutes = lambda m: now - datetime.timedelta(minutes=m)  # noqa: E731
    pods = [("a", "Succeeded", minutes(1)), ("b", "Running", minutes(10)), ("c", "Pending", minutes(40)),
            ("d", "Failed", None), ("e", "Running", None)]
    assert objects.build_pods_to_delete(pods, now, 30 * 60) == ["a", "c", "d"]


async def test_a_build_past_its_timeout_is_stopped(api):
    builder = KubernetesBuilder(namespace="binder", poll_interval=0.05, build_timeout=0.5)
    api.script[pod_name()] = ([pending()], [])
    with pytest.raises(BuildFailed, match="took longer than 0.5 s"):
        await run(builder)
    assert pod_name() not in api.pods


# a private repository: the member's token reaches the pod through a Secret ------------------------

TOKEN = "glpat-member-token-0123456789"
SECRETS = "/api/v1/namespaces/binder/secrets"
PODS = "/api/v1/namespaces/binder/pods"


def private_request(token=TOKEN):
    base = request()
    return BuildRequest(base.image, base.resolved, base.labels,
                        credentials=TokenCredentials(token=token, username="oauth2"))


def secret_name():
    return objects.build_secret_name(pod_name())


def token_forms(token=TOKEN):
    basic = base64.b64encode(f"oauth2:{token}".encode()).decode()
    return [token, basic]


def body(api, method, path):
    (found,) = [b for m, p, b in api.bodies if m == method and p == path]
    return found


@pytest.fixture
def logged(builder, caplog):
    """The builder's log, captured (it logs to its parent's logger, here one that propagates)."""
    builder.log = logging.getLogger("test.kubernetes.builder")
    caplog.set_level(logging.DEBUG, logger="test.kubernetes.builder")
    return caplog


async def test_a_private_build_gets_the_token_from_a_secret_created_before_its_pod(api, builder, logged):
    api.script[pod_name()] = ([running(), running(), terminated(0)], r2d_log("Cloning", "pushed"))
    events = await run(builder, private_request())
    assert events[-1][0] == "built"
    creates = api.calls("POST")
    assert creates == [SECRETS, PODS], "the Secret exists before the pod that reads it"
    secret = body(api, "POST", SECRETS)
    assert secret["metadata"]["name"] == secret_name() and secret["type"] == "Opaque"
    assert secret["stringData"] == credential_variables(private_request().credentials)
    assert secret["metadata"]["labels"][objects.BUILD_SECRET_LABEL] == "git"
    pod = body(api, "POST", PODS)
    assert pod["spec"]["containers"][0]["envFrom"] == [{"secretRef": {"name": secret_name()}}]
    pod_text = json.dumps(pod)
    visible = json.dumps(events) + logged.text
    assert "Building image" in visible, "the builder's log was captured"
    for form in token_forms():
        assert form not in pod_text and form not in visible
    # deleted once the container started (its environment is fixed then), before the log is read
    order = [(m, p.split("?")[0]) for m, p in api.requests]
    assert order.index(("DELETE", f"{SECRETS}/{secret_name()}")) < order.index(
        ("GET", f"{PODS}/{pod_name()}/log"))
    assert api.secrets == {} and api.pods == {}


async def test_a_failed_private_build_deletes_its_secret(api, builder):
    api.script[pod_name()] = ([running(), terminated(1)], r2d_log("fatal: could not read from remote"))
    with pytest.raises(BuildFailed) as failed:
        await run(builder, private_request())
    assert all(form not in failed.value.message for form in token_forms())
    assert api.calls("POST") == [SECRETS, PODS]
    assert f"{SECRETS}/{secret_name()}" in api.calls("DELETE")
    assert api.secrets == {}


async def test_a_private_build_that_never_starts_deletes_its_secret(api, builder):
    api.script[pod_name()] = ([waiting("CreateContainerConfigError", 'secret "x" not found')], [])
    with pytest.raises(BuildFailed, match="cannot start"):
        await run(builder, private_request())
    assert api.secrets == {} and api.pods == {}


async def test_a_timed_out_private_build_deletes_its_secret(api):
    builder = KubernetesBuilder(namespace="binder", poll_interval=0.05, build_timeout=0.5)
    api.script[pod_name()] = ([pending()], [])
    with pytest.raises(BuildFailed, match="took longer than 0.5 s"):
        await run(builder, private_request())
    assert api.secrets == {} and api.pods == {}


async def test_a_public_build_creates_no_secret(api, builder):
    await run(builder)
    assert api.calls("POST") == [PODS]
    assert not [p for m, p in api.requests if p.startswith(SECRETS) and m != "GET"]
    assert "envFrom" not in body(api, "POST", PODS)["spec"]["containers"][0]


async def test_a_leftover_secret_is_replaced(api, builder):
    KubernetesBuilder._last_cleanup["binder"] = time.monotonic()  # no sweep: meet the leftover
    stale = builder.secret_manifest(private_request("an-earlier-members-token"))
    api.secrets[secret_name()] = stored_secret(stale)
    await run(builder, private_request())
    assert api.calls("POST") == [SECRETS, PODS]  # the Secret refused (409) and replaced, then the pod
    assert api.calls("PUT") == [f"{SECRETS}/{secret_name()}"]
    assert body(api, "PUT", f"{SECRETS}/{secret_name()}")["stringData"] == \
        credential_variables(private_request().credentials)
    assert api.secrets == {}


async def test_attaching_to_a_running_build_leaves_its_secret_alone(api, builder):
    first = private_request("the-first-members-token")
    api.secrets[secret_name()] = stored_secret(builder.secret_manifest(first))
    api.pods[pod_name()] = FakePod(builder.pod_manifest(first), [running(), running(), terminated(0)],
                                   r2d_log("the first launch's build"))
    events = await run(builder, private_request())
    assert any(m.startswith("Attaching to the running build") for _, m in events)
    assert api.calls("PUT") == [], "the running build's Secret is not replaced"
    assert api.calls("POST") == [SECRETS, PODS]  # both refused with 409
    assert api.secrets == {}, "deleting it once the build has started is harmless"


async def test_missing_secret_rbac_is_explained_before_any_pod(api, builder):
    api.secret_create_error = (403, "Forbidden")
    with pytest.raises(BuildFailed) as failed:
        await run(builder, private_request())
    assert "HTTP 403" in failed.value.message and "secrets" in failed.value.message
    assert api.calls("POST") == [SECRETS] and api.pods == {}


async def test_sweep_removes_leftover_build_secrets_only(api, builder):
    def add(name, age, labels):
        api.secrets[name] = stored_secret({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                                           "metadata": {"name": name, "labels": labels},
                                           "stringData": {"GIT_CONFIG_COUNT": "1"}}, age=age)

    build_labels = {"app.kubernetes.io/component": objects.BUILD_COMPONENT, objects.BUILD_SECRET_LABEL: "git"}
    add("binder-build-old-git", 3600, build_labels)
    add("binder-build-young-git", 5, build_labels)
    add("registry-push", 3600, {})
    add("component-only", 3600, {"app.kubernetes.io/component": objects.BUILD_COMPONENT})
    await builder.sweep(force=True)
    assert sorted(api.secrets) == ["binder-build-young-git", "component-only", "registry-push"]
    assert api.calls("DELETE") == [f"{SECRETS}/binder-build-old-git"]
