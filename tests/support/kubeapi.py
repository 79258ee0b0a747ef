"""A stand-in for the Kubernetes API server's pod and secret endpoints, on 127.0.0.1 (no cluster
can run here).

It answers with the documented JSON shapes of the core/v1 API (Pod objects, Status objects for
errors, PodList, a plain-text log stream for pods/log?follow=true), as recorded from a cluster:
each pod walks through a scripted list of statuses, one step per GET, and streams its scripted log.
Secrets follow the documented write semantics: ``stringData`` is merged into base64 ``data`` and
never returned; create answers 201 (409 AlreadyExists if present), replace (PUT) 200 (404 if absent),
delete a Status; list takes an equality-based ``labelSelector`` (``k=v,k2=v2``).
``kubeconfig()`` writes a kubeconfig that points kubernetes_asyncio at it.
"""

import asyncio
import base64
import copy
import datetime
import itertools
import json

from aiohttp import web

from .net import free_port


def status_error(code, reason, message):
    return web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "message": message, "reason": reason, "code": code}, status=code)


def timestamp(age_seconds=0):
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=age_seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def pending(reason="Unschedulable", message="0/3 nodes are available: 3 Insufficient cpu."):
    return {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                                                "reason": reason, "message": message}]}


def waiting(reason, message=""):
    return {"phase": "Pending", "containerStatuses": [{
        "name": "build", "ready": False, "restartCount": 0, "image": "builder", "imageID": "",
        "state": {"waiting": {"reason": reason, "message": message}}}]}


def running():
    return {"phase": "Running", "containerStatuses": [{
        "name": "build", "ready": True, "restartCount": 0, "image": "builder", "imageID": "",
        "state": {"running": {"startedAt": timestamp()}}}]}


def terminated(exit_code, reason=None):
    return {"phase": "Succeeded" if exit_code == 0 else "Failed", "containerStatuses": [{
        "name": "build", "ready": False, "restartCount": 0, "image": "builder", "imageID": "",
        "state": {"terminated": {"exitCode": exit_code, "reason": reason or (
            "Completed" if exit_code == 0 else "Error")}}}]}


class FakePod:
    def __init__(self, manifest, statuses, log_lines, age=0):
        self.manifest = copy.deepcopy(manifest)
        self.manifest.setdefault("metadata", {})["creationTimestamp"] = timestamp(age)
        self.manifest["metadata"]["uid"] = "uid-" + self.manifest["metadata"]["name"]
        self.statuses = list(statuses)
        self.step = 0
        self.log_lines = list(log_lines)

    def body(self, advance=True):
        status = self.statuses[min(self.step, len(self.statuses) - 1)]
        if advance:
            self.step += 1
        return {**self.manifest, "status": status}


def matches(selector, labels):
    """An equality-based label selector ('k=v,k2=v2'; '' selects everything)."""
    terms = [term.partition("=") for term in selector.split(",") if term]
    return all(labels.get(key) == value for key, _, value in terms)


def stored_secret(manifest, age=0, version=1):
    """A Secret as the API server stores and returns it: stringData folded into base64 data."""
    secret = copy.deepcopy(manifest)
    data = dict(secret.get("data") or {})
    for key, value in (secret.pop("stringData", None) or {}).items():
        data[key] = base64.b64encode(value.encode()).decode()
    secret["data"] = data
    metadata = secret.setdefault("metadata", {})
    metadata.setdefault("creationTimestamp", timestamp(age))
    metadata["uid"] = "uid-" + metadata["name"]
    metadata["resourceVersion"] = str(version)
    return secret


class FakeKubeAPI:
    """Script: ``script[name] = (statuses, log_lines)`` decides how a pod created under that name
    behaves; ``pods`` holds existing pods, ``secrets`` existing Secrets (as stored: base64 data).
    ``requests`` records (method, path) of every request, ``bodies`` the JSON body of every
    request that had one, as (method, path, body)."""

    def __init__(self):
        self.port = free_port()
        self.pods = {}
        self.secrets = {}
        self.bodies = []
        self._versions = itertools.count(2)
        self.script = {}
        self.requests = []
        self.create_error = None  # (code, reason) to refuse creations with
        self.secret_create_error = None  # the same, for Secrets
        self._runner = None

    # server ----------------------------------------------------------------------------------

    async def start(self):
        app = web.Application()
        base = "/api/v1/namespaces/{namespace}/pods"
        app.router.add_post(base, self.create)
        app.router.add_get(base, self.list)
        app.router.add_get(base + "/{name}", self.read)
        app.router.add_delete(base + "/{name}", self.delete)
        app.router.add_get(base + "/{name}/log", self.log)
        secrets = "/api/v1/namespaces/{namespace}/secrets"
        app.router.add_post(secrets, self.create_secret)
        app.router.add_get(secrets, self.list_secrets)
        app.router.add_put(secrets + "/{name}", self.replace_secret)
        app.router.add_delete(secrets + "/{name}", self.delete_secret)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self):
        await self._runner.cleanup()

    def kubeconfig(self, path):
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{self.port}"}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake",
                                                      "namespace": "binder"}}],
        }
        with open(path, "w") as f:
            json.dump(config, f)
        return path

    def reset(self):
        self.pods.clear()
        self.secrets.clear()
        self.bodies.clear()
        self.script.clear()
        self.requests.clear()
        self.create_error = None
        self.secret_create_error = None

    def calls(self, method):
        return [path for m, path in self.requests if m == method]

    # handlers --------------------------------------------------------------------------------

    def _record(self, request):
        self.requests.append((request.method, request.path_qs))

    async def create(self, request):
        self._record(request)
        if self.create_error:
            code, reason = self.create_error
            return status_error(code, reason, 'pods is forbidden: User "system:serviceaccount:binder:hub" '
                                              'cannot create resource "pods"')
        manifest = await request.json()
        self.bodies.append((request.method, request.path, manifest))
        name = manifest["metadata"]["name"]
        if name in self.pods:
            return status_error(409, "AlreadyExists", f'pods "{name}" already exists')
        statuses, log_lines = self.script.get(name, ([running(), terminated(0)], []))
        manifest["metadata"]["namespace"] = request.match_info["namespace"]
        self.pods[name] = FakePod(manifest, statuses, log_lines)
        return web.json_response(self.pods[name].body(advance=False), status=201)

    async def read(self, request):
        self._record(request)
        pod = self.pods.get(request.match_info["name"])
        if pod is None:
            return status_error(404, "NotFound", f'pods "{request.match_info["name"]}" not found')
        return web.json_response(pod.body())

    async def list(self, request):
        self._record(request)
        selector = request.query.get("labelSelector", "")
        items = [p.body(advance=False) for p in self.pods.values()
                 if matches(selector, p.manifest["metadata"].get("labels", {}))]
        return web.json_response({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})

    async def delete(self, request):
        self._record(request)
        pod = self.pods.pop(request.match_info["name"], None)
        if pod is None:
            return status_error(404, "NotFound", f'pods "{request.match_info["name"]}" not found')
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Success",
                                  "metadata": {}})

    async def log(self, request):
        self._record(request)
        pod = self.pods.get(request.match_info["name"])
        if pod is None:
            return status_error(404, "NotFound", f'pods "{request.match_info["name"]}" not found')
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        for line in pod.log_lines:
            await response.write(line.encode() + b"\n")
            await asyncio.sleep(0)
        await response.write_eof()
        return response

    # secrets ---------------------------------------------------------------------------------

    async def create_secret(self, request):
        self._record(request)
        if self.secret_create_error:
            code, reason = self.secret_create_error
            return status_error(code, reason, 'secrets is forbidden: User "system:serviceaccount:binder:hub" '
                                              'cannot create resource "secrets"')
        manifest = await request.json()
        self.bodies.append((request.method, request.path, manifest))
        name = manifest["metadata"]["name"]
        if name in self.secrets:
            return status_error(409, "AlreadyExists", f'secrets "{name}" already exists')
        manifest["metadata"]["namespace"] = request.match_info["namespace"]
        self.secrets[name] = stored_secret(manifest, version=next(self._versions))
        return web.json_response(self.secrets[name], status=201)

    async def replace_secret(self, request):
        self._record(request)
        manifest = await request.json()
        self.bodies.append((request.method, request.path, manifest))
        name = request.match_info["name"]
        old = self.secrets.get(name)
        if old is None:
            return status_error(404, "NotFound", f'secrets "{name}" not found')
        manifest["metadata"]["namespace"] = request.match_info["namespace"]
        manifest["metadata"]["creationTimestamp"] = old["metadata"]["creationTimestamp"]
        self.secrets[name] = stored_secret(manifest, version=next(self._versions))
        return web.json_response(self.secrets[name])

    async def list_secrets(self, request):
        self._record(request)
        selector = request.query.get("labelSelector", "")
        items = [s for s in self.secrets.values() if matches(selector, s["metadata"].get("labels", {}))]
        return web.json_response({"kind": "SecretList", "apiVersion": "v1", "metadata": {},
                                  "items": items})

    async def delete_secret(self, request):
        self._record(request)
        if self.secrets.pop(request.match_info["name"], None) is None:
            return status_error(404, "NotFound", f'secrets "{request.match_info["name"]}" not found')
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Success",
                                  "metadata": {}})
