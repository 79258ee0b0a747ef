"""Builds in build pods: one pod per image runs repo2docker and pushes to the registry.

The pod's name is a function of the image, so a second launch of the same commit, from this hub
process or from one restarted meanwhile, attaches to the running build and follows its log from the
beginning instead of starting another. Whether an image exists is asked of the registry (every node
pulls from it). The Kubernetes API is used through kubernetes_asyncio with kubespawner's shared
client and configuration, as the spawner does.
"""

import asyncio
import collections
import datetime
import json
import os
import time

import aiohttp
from kubernetes_asyncio.client.rest import ApiException
from kubespawner.clients import load_config, shared_client
from traitlets import Bool, Dict, Float, List, Unicode, default

from binderspawner.errors import BuildFailed, LaunchError
from binderspawner.providers.git import GitProvider
from binderspawner.builders.registry import DOCKER_HUB, RegistryClient, parse_image
from binderspawner.builders.base import LOG_TAIL, Repo2DockerBase, credential_variables, relay_log_line
from binderspawner.kubernetes import objects


class KubernetesBuilder(Repo2DockerBase):
    """repo2docker in a build pod, pushing to a registry. The repo2docker settings (buildpacks,
    base_image, server_requirements, content_providers, build_timeout, user_id) are the shared
    Repo2DockerBase's: set them as c.KubernetesBuilder.* (or c.Repo2DockerBase.* for both
    builders). The local engine's settings (push, check_registry) are not this builder's: build
    pods always push, and whether an image exists is asked of the registry."""

    namespace = Unicode(
        help="""Namespace build pods run in. Default: the namespace of the user pods
        (KubeSpawner.namespace), which z2jh sets to the release's namespace.""",
    ).tag(config=True)

    @default("namespace")
    def _default_namespace(self):
        parent_namespace = getattr(self.parent, "namespace", "")
        if parent_namespace:
            return parent_namespace
        path = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
        if os.path.exists(path):
            with open(path) as f:
                return f.read().strip()
        return os.environ.get("POD_NAMESPACE", "default")

    build_image = Unicode(
        "binderspawner-builder:latest",
        help="""Image the build pods run: repo2docker, git, the docker CLI with the buildx plugin,
        and this package (docker/builder/Dockerfile builds one). Push it to a registry your
        nodes can pull from and give its full name here.""",
    ).tag(config=True)

    build_image_pull_policy = Unicode(
        "IfNotPresent", help="imagePullPolicy of the build image."
    ).tag(config=True)

    build_resources = Dict(
        {"requests": {"cpu": "200m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}},
        help="""resources of the build container (requests/limits as in a pod spec). With the
        node's Docker socket the image build itself runs in that node's dockerd, outside these
        limits: size the build node pool instead.""",
    ).tag(config=True)

    build_node_selector = Dict(
        help="""nodeSelector for build pods, e.g. {'hub.jupyter.org/node-purpose': 'build'} to
        keep builds on a build node pool.""",
    ).tag(config=True)

    build_tolerations = List(
        Dict(),
        help="tolerations for build pods, e.g. for a tainted build node pool.",
    ).tag(config=True)

    docker_socket = Unicode(
        "/var/run/docker.sock",
        help="""The node's Docker socket, mounted into build pods when docker_host is empty. Gives
        builds root on the node: keep build pods on dedicated build nodes.""",
    ).tag(config=True)

    docker_host = Unicode(
        "",
        help="""DOCKER_HOST for build pods instead of the node's socket: a Docker-in-Docker (or
        other Docker API) service, e.g. 'tcp://binderspawner-dind.binder.svc:2375'.""",
    ).tag(config=True)

    push_secret = Unicode(
        "",
        help="""Name of a kubernetes.io/dockerconfigjson Secret in the build namespace with
        credentials that may push to the registry in image_prefix. Mounted as a file into build
        pods; '' for a registry that takes anonymous pushes.""",
    ).tag(config=True)

    build_service_account = Unicode(
        "",
        help="ServiceAccount for build pods; '' mounts no API token into them (they need none).",
    ).tag(config=True)

    build_image_pull_secrets = List(
        Unicode(), help="imagePullSecrets for pulling the build image."
    ).tag(config=True)

    pod_name_prefix = Unicode(
        "binder-build-", help="Prefix of build pod names (the rest is derived from the image)."
    ).tag(config=True)

    keep_failed_pods = Bool(
        False,
        help="""Leave failed build pods for `kubectl logs`; the next launch of the same commit
        deletes it and builds again. Off: failed pods are removed once their log is read.""",
    ).tag(config=True)

    cleanup_interval = Float(
        300,
        help="""Seconds between sweeps that delete finished build pods and build pods older than
        build_timeout plus a minute (stuck: unschedulable, image pull failures, hung).""",
    ).tag(config=True)

    poll_interval = Float(2, help="Seconds between pod status checks while a build starts.").tag(config=True)

    api_request_timeout = Float(30, help="Seconds a single Kubernetes API request may take.").tag(config=True)

    @default("repo2docker_command")
    def _default_command(self):
        return ["python3", "-m", "binderspawner.kubernetes.r2d"]

    _last_cleanup = {}  # namespace -> monotonic time of the last sweep, hub-wide

    # the Kubernetes API -------------------------------------------------------------------------

    @property
    def api(self):
        api = getattr(self.parent, "api", None)  # KubeSpawner's shared CoreV1Api, when there is one
        if api is None:
            load_config()
            api = shared_client("CoreV1Api")
        return api

    def _serialize(self, obj):
        return self.api.api_client.sanitize_for_serialization(obj)

    # the Builder interface ----------------------------------------------------------------------

    async def image_exists(self, image):
        if parse_image(image).registry == DOCKER_HUB and not image.startswith("docker.io/"):
            raise LaunchError(
                f"Images built on Kubernetes must go to a registry every node can pull from, but "
                f"{image!r} names none. Set c.BinderSpawner.image_prefix to e.g. "
                "'registry.example.org/binder/'.", status=500)
        return await RegistryClient(parent=self).manifest_exists(image)

    def command(self, request):
        """The build container's argv (pure): repo2docker building and pushing the image."""
        return [*self.repo2docker_command, "--push", *self.repo2docker_args(request)]

    def pod_environment(self, request):
        """The build container's environment (pure): repo2docker's settings with only the content
        provider ``request``'s source needs and the rules its clone obeys (the provider's
        allowed_private_hosts...), and git limited to the transports users launch from."""
        return {
            "BINDERSPAWNER_R2D_SETTINGS": json.dumps(self.r2d_settings(request)),
            "TRAITLETS_APPLICATION_RAISE_CONFIG_FILE_ERROR": "1",  # a broken config fails the build
            "GIT_ALLOW_PROTOCOL": ":".join(GitProvider(config=self.config).allowed_schemes),
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "PYTHONUNBUFFERED": "1",
        }

    def pod_manifest(self, request):
        labels, annotations = objects.split_metadata(request.labels)
        name = objects.build_pod_name(request.image, self.pod_name_prefix)
        return objects.build_pod_manifest(
            name=name,
            image=request.image,
            build_image=self.build_image,
            argv=self.command(request),
            env=self.pod_environment(request),
            labels=labels,
            annotations=annotations,
            resources=self.build_resources,
            node_selector=self.build_node_selector,
            tolerations=self.build_tolerations,
            docker_socket=self.docker_socket,
            docker_host=self.docker_host,
            push_secret=self.push_secret,
            deadline_seconds=self.build_timeout,
            service_account=self.build_service_account,
            image_pull_secrets=self.build_image_pull_secrets,
            image_pull_policy=self.build_image_pull_policy,
            credentials_secret=objects.build_secret_name(name) if request.credentials else None,
        )

    def secret_manifest(self, request):
        """The Secret with the clone's git credentials for ``request``'s build pod, or None for a
        build without credentials (pure)."""
        if request.credentials is None:
            return None
        labels, _ = objects.split_metadata(request.labels)
        pod_name = objects.build_pod_name(request.image, self.pod_name_prefix)
        return objects.build_credentials_secret(name=objects.build_secret_name(pod_name),
                                                env=credential_variables(request.credentials),
                                                labels=labels)

    async def build(self, request, emit):
        manifest = self.pod_manifest(request)
        secret = self.secret_manifest(request)
        name = manifest["metadata"]["name"]
        source = request.resolved.source
        what = f"{source.display_name} at {request.resolved.version[:12]}"
        self.log.info("Building image %s from %s in pod %s/%s", request.image, what, self.namespace, name)
        await self.sweep()
        try:
            await self._build(request, manifest, secret, what, emit)
        finally:
            # The token lives in the cluster only while a build may still need it.
            if secret is not None:
                await self._delete_secret(secret["metadata"]["name"])

    async def _build(self, request, manifest, secret, what, emit):
        name = manifest["metadata"]["name"]
        tail = collections.deque(maxlen=LOG_TAIL)
        try:
            phase = await asyncio.wait_for(self._run(manifest, secret, what, emit, tail),
                                           self.build_timeout)
        except asyncio.TimeoutError:
            await self._delete(name)
            raise BuildFailed(f"Building {what} took longer than {self.build_timeout:g} s. "
                              f"Last lines of the build log:\n{self._tail(tail)}") from None
        except BuildFailed:
            if not self.keep_failed_pods:
                await self._delete(name)
            raise
        if phase["phase"] == "Succeeded":
            await self._delete(name)
            emit("built", f"Built image {request.image}")
            return
        if not self.keep_failed_pods:
            await self._delete(name)
        raise BuildFailed(f"Building {what} failed ({phase['reason']}). Last lines of the build "
                          f"log:\n{self._tail(tail)}")

    @staticmethod
    def _tail(tail):
        return "\n".join(tail) or "(no output)"

    async def _run(self, manifest, secret, what, emit, tail):
        name = manifest["metadata"]["name"]
        await self._create_or_attach(manifest, secret, what, emit)
        await self._wait_until_started(name, emit)
        if secret is not None:  # the container's environment is fixed once it has started
            await self._delete_secret(secret["metadata"]["name"])
        await self._stream_log(name, emit, tail)
        return await self._wait_until_finished(name)

    async def _create_or_attach(self, manifest, secret, what, emit):
        name = manifest["metadata"]["name"]
        if secret is not None:
            await self._put_secret(secret, name)
        while True:
            try:
                await self.api.create_namespaced_pod(self.namespace, manifest,
                                                     _request_timeout=self.api_request_timeout)
                emit("fetching", f"Building {what} in pod {name}")
                return
            except ApiException as e:
                if e.status != 409:
                    raise self._api_error("create the build pod", e) from None
            existing = await self._read(name)
            if existing is None:
                continue  # deleted between our create and read: create again
            phase = existing["status"].get("phase")
            if phase in ("Pending", "Running"):
                emit("fetching", f"Attaching to the running build of {what} in pod {name}")
                return
            # A finished pod of an earlier build (kept after a failure, or not yet swept).
            await self._delete(name, wait=True)

    async def _read(self, name):
        try:
            pod = await self.api.read_namespaced_pod(name, self.namespace,
                                                     _request_timeout=self.api_request_timeout)
        except ApiException as e:
            if e.status == 404:
                return None
            raise self._api_error("read the build pod", e) from None
        return self._serialize(pod)

    async def _wait_until_started(self, name, emit):
        reported = None
        while True:
            pod = await self._read(name)
            if pod is None:
                raise BuildFailed(f"The build pod {name} disappeared before it started.")
            status = pod.get("status") or {}
            if status.get("phase") not in (None, "Pending"):
                return
            problem = objects.pod_problem(status)
            if problem:
                raise BuildFailed(f"The build pod {name} cannot start: {problem}. Check "
                                  "c.KubernetesBuilder.build_image and its pull secrets.")
            message = _pending_reason(status)
            if message != reported:
                reported = message
                emit("waiting", f"Build pod {name} is pending: {message}")
            await asyncio.sleep(self.poll_interval)

    async def _stream_log(self, name, emit, tail):
        response = await self.api.read_namespaced_pod_log(
            name, self.namespace, container=objects.BUILD_CONTAINER, follow=True,
            _preload_content=False,
            _request_timeout=aiohttp.ClientTimeout(sock_connect=self.api_request_timeout))
        try:
            if response.status != 200:
                body = (await response.read()).decode("utf-8", "replace")[:500]
                raise BuildFailed(f"Could not read the log of build pod {name}: HTTP "
                                  f"{response.status} {body}")
            async for raw in response.content:
                relay_log_line(raw, tail, emit)
        finally:
            response.release()

    async def _wait_until_finished(self, name):
        while True:
            pod = await self._read(name)
            if pod is None:
                return {"phase": "Failed", "reason": "the build pod was deleted"}
            status = pod.get("status") or {}
            phase = status.get("phase")
            if phase in ("Succeeded", "Failed"):
                return {"phase": phase, "reason": _failure_reason(status)}
            await asyncio.sleep(self.poll_interval)

    async def _put_secret(self, secret, pod_name):
        """Create the build's credential Secret before its pod. One already there is a leftover of
        an earlier build (replaced), unless that build's pod is still pending or running: then
        this launch attaches to it and leaves its Secret alone."""
        name = secret["metadata"]["name"]
        while True:
            try:
                await self.api.create_namespaced_secret(self.namespace, secret,
                                                        _request_timeout=self.api_request_timeout)
                return
            except ApiException as e:
                if e.status != 409:
                    raise self._api_error("create the build's credential Secret", e) from None
            existing = await self._read(pod_name)
            if existing is not None and (existing.get("status") or {}).get("phase") in ("Pending", "Running"):
                return
            try:
                await self.api.replace_namespaced_secret(name, self.namespace, secret,
                                                         _request_timeout=self.api_request_timeout)
                return
            except ApiException as e:
                if e.status != 404:  # 404: deleted meanwhile (a sweep): create it again
                    raise self._api_error("replace the build's credential Secret", e) from None

    async def _delete_secret(self, name):
        try:
            await self.api.delete_namespaced_secret(name, self.namespace,
                                                    _request_timeout=self.api_request_timeout)
        except ApiException as e:
            if e.status != 404:
                self.log.warning("Could not delete build credential Secret %s: %s", name, e.reason)

    async def _delete(self, name, wait=False):
        try:
            await self.api.delete_namespaced_pod(name, self.namespace, grace_period_seconds=0,
                                                 _request_timeout=self.api_request_timeout)
        except ApiException as e:
            if e.status != 404:
                self.log.warning("Could not delete build pod %s: %s", name, e.reason)
                return
        while wait and await self._read(name) is not None:
            await asyncio.sleep(self.poll_interval)

    async def sweep(self, force=False):
        """Delete finished and stuck build pods, and build credential Secrets as old as a stuck
        pod (left by a hub that stopped mid-build), at most every cleanup_interval seconds.
        Returns the names of the pods deleted."""
        now = time.monotonic()
        last = self._last_cleanup.get(self.namespace)
        if not force and last is not None and now - last < self.cleanup_interval:
            return []
        self._last_cleanup[self.namespace] = now
        max_age = self.build_timeout + 60
        await self._sweep_secrets(max_age)
        try:
            pods = await self.api.list_namespaced_pod(
                self.namespace, label_selector=f"app.kubernetes.io/component={objects.BUILD_COMPONENT}",
                _request_timeout=self.api_request_timeout)
        except ApiException as e:
            self.log.warning("Could not list build pods: %s", e.reason)
            return []
        doomed = objects.build_pods_to_delete(
            [(p.metadata.name, p.status.phase if p.status else None, p.metadata.creation_timestamp)
             for p in pods.items],
            datetime.datetime.now(datetime.timezone.utc), max_age)
        for name in doomed:
            self.log.info("Removing finished or stuck build pod %s", name)
            await self._delete(name)
        return doomed

    async def _sweep_secrets(self, max_age):
        selector = (f"app.kubernetes.io/component={objects.BUILD_COMPONENT},"
                    f"{objects.BUILD_SECRET_LABEL}={objects.BUILD_SECRET_KIND}")
        try:
            secrets = await self.api.list_namespaced_secret(
                self.namespace, label_selector=selector, _request_timeout=self.api_request_timeout)
        except ApiException as e:
            self.log.warning("Could not list build credential Secrets: %s", e.reason)
            return []
        doomed = objects.build_pods_to_delete(
            [(s.metadata.name, None, s.metadata.creation_timestamp) for s in secrets.items],
            datetime.datetime.now(datetime.timezone.utc), max_age)
        for name in doomed:
            self.log.info("Removing leftover build credential Secret %s", name)
            await self._delete_secret(name)
        return doomed

    def _api_error(self, action, error):
        hint = (" The hub's service account needs a Role allowing pods and pods/log (and secrets, "
                "for private repositories) in this namespace (see config/z2jh-rbac.yaml)."
                if error.status == 403 else "")
        return BuildFailed(f"Could not {action} in namespace {self.namespace}: HTTP {error.status} "
                           f"{error.reason}.{hint}")


def _pending_reason(status):
    for condition in status.get("conditions") or []:
        if condition.get("status") == "False" and condition.get("message"):
            return condition["message"]
    for state in status.get("containerStatuses") or []:
        waiting = (state.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            return waiting["reason"]
    return "waiting to be scheduled"


def _failure_reason(status):
    if status.get("reason") == "DeadlineExceeded":
        return "it ran past activeDeadlineSeconds"
    for state in status.get("containerStatuses") or []:
        terminated = (state.get("state") or {}).get("terminated") or {}
        if terminated:
            reason = terminated.get("reason") or "Error"
            return f"{reason}, exit code {terminated.get('exitCode')}"
    return status.get("reason") or status.get("message") or "the build pod failed"
