"""Kubernetes manifests for Binder launches, as plain dicts (pure: no API calls).

Like kubespawner's objects.py: every object the Kubernetes backend creates is a function of its
settings, so it can be checked against the official schemas and expected manifests without a cluster.
"""

import hashlib
import re
from typing import Optional

from binderspawner.policy import egress
from binderspawner.policy.resources import kubespawner_traits

BUILD_COMPONENT = "binderspawner-build"
BUILD_CONTAINER = "build"
BUILD_SECRET_LABEL = "binderspawner.build-secret"  # marks the per-build git credential Secrets
BUILD_SECRET_KIND = "git"
SERVER_LABEL = "binderspawner.pod"
DOCKER_CONFIG_DIR = "/etc/binderspawner/docker"

_LABEL_VALUE = re.compile(r"^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_DNS_LABEL_CHARS = re.compile(r"[^a-z0-9-]+")


def is_label_value(value):
    return isinstance(value, str) and bool(_LABEL_VALUE.match(value))


def is_label_key(key):
    prefix, _, name = key.rpartition("/")
    return bool(_LABEL_NAME.match(name)) and len(prefix) <= 253


def split_metadata(values):
    """Launch labels -> (labels, annotations): every value goes into annotations (no length or
    charset limit there); those that are also valid label values (at most 63 characters of
    [A-Za-z0-9._-], like a commit sha) go into labels too, so they can be selected on."""
    annotations = {key: str(value) for key, value in values.items()}
    labels = {key: value for key, value in annotations.items()
              if is_label_key(key) and is_label_value(value)}
    return labels, annotations


def build_pod_name(image, prefix="binder-build-"):
    """One name per image (pure), so every launch of one commit, from any hub process, meets the
    same build pod. A DNS label: at most 63 characters of [a-z0-9-]."""
    digest = hashlib.sha256(image.encode("utf-8")).hexdigest()[:16]
    repository = image.rsplit(":", 1)[0].rsplit("/", 1)[-1]
    readable = _DNS_LABEL_CHARS.sub("-", repository.lower()).strip("-")
    room = 63 - len(prefix) - len(digest) - 1
    readable = readable[:max(room, 0)].strip("-")
    return f"{prefix}{readable}-{digest}" if readable else f"{prefix}{digest}"


def build_secret_name(pod_name, suffix="-git"):
    """The name of a build pod's credential Secret (pure): the pod's name plus ``suffix``, kept a
    DNS label (at most 63 characters) with a hash of the pod's name when it must be shortened."""
    name = f"{pod_name}{suffix}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(pod_name.encode("utf-8")).hexdigest()[:8]
    head = pod_name[:63 - len(suffix) - len(digest) - 1].rstrip("-")
    return f"{head}-{digest}{suffix}"


def build_credentials_secret(*, name, env, labels=None):
    """An Opaque Secret holding the clone's credential variables (the member's token, which the
    build's checked clone offers to the repository's URL only; builders/checkedfetch.py), so the
    build pod gets it through ``envFrom`` and the token is never part of
    the pod's spec, labels or annotations. Labelled like build pods plus BUILD_SECRET_LABEL, so the
    sweep can find leftovers."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "labels": {**(labels or {}), "app.kubernetes.io/component": BUILD_COMPONENT,
                       BUILD_SECRET_LABEL: BUILD_SECRET_KIND},
        },
        "stringData": {str(key): str(value) for key, value in env.items()},
    }


def build_pod_manifest(*, name, image, build_image, argv, env, labels=None, annotations=None,
                       resources=None, node_selector=None, tolerations=None, docker_socket="",
                       docker_host="", push_secret="", deadline_seconds=None, service_account="",
                       image_pull_secrets=(), image_pull_policy="IfNotPresent", credentials_secret=None):
    """The pod that runs repo2docker for one image.

    It talks to a Docker engine either through the node's socket (``docker_socket``, a hostPath
    mount) or through a Docker/BuildKit service (``docker_host``, e.g. tcp://dind:2375). Push
    credentials come from a dockerconfigjson Secret mounted as a file (never an env variable).
    ``credentials_secret`` names a Secret (build_credentials_secret) whose keys become the build
    container's environment: only its name is in the pod. ``activeDeadlineSeconds`` makes
    Kubernetes stop a stuck build even if the hub is gone.
    """
    env = dict(env)
    volumes, mounts = [], []
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    elif docker_socket:
        volumes.append({"name": "docker-socket", "hostPath": {"path": docker_socket, "type": "Socket"}})
        mounts.append({"name": "docker-socket", "mountPath": "/var/run/docker.sock"})
    if push_secret:
        env["DOCKER_CONFIG"] = DOCKER_CONFIG_DIR
        volumes.append({"name": "push-credentials", "secret": {
            "secretName": push_secret, "items": [{"key": ".dockerconfigjson", "path": "config.json"}]}})
        mounts.append({"name": "push-credentials", "mountPath": DOCKER_CONFIG_DIR, "readOnly": True})
    container = {
        "name": BUILD_CONTAINER,
        "image": build_image,
        "imagePullPolicy": image_pull_policy,
        "args": list(argv),
        "env": [{"name": key, "value": value} for key, value in sorted(env.items())],
        "resources": resources or {},
        "volumeMounts": mounts,
    }
    if credentials_secret:
        container["envFrom"] = [{"secretRef": {"name": credentials_secret}}]
    spec = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": bool(service_account),
        "containers": [container],
        "volumes": volumes,
    }
    if service_account:
        spec["serviceAccountName"] = service_account
    if deadline_seconds:
        spec["activeDeadlineSeconds"] = int(deadline_seconds)
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if tolerations:
        spec["tolerations"] = [dict(t) for t in tolerations]
    if image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": s} for s in image_pull_secrets]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {**(labels or {}), "app.kubernetes.io/component": BUILD_COMPONENT},
            "annotations": {**(annotations or {}), "binderspawner.image": image},
        },
        "spec": spec,
    }


def server_network_policy(rules, *, name, server_label, hub_labels, hub_port):
    """The egress NetworkPolicy of one user server: binderspawner.policy.egress's rendering of the
    admin's rules (c.EgressPolicy), selecting only that server's pod (pure)."""
    return egress.network_policy(
        rules, name=name, pod_selector={"matchLabels": {SERVER_LABEL: server_label}},
        hub_selector={"matchLabels": dict(hub_labels)}, hub_port=int(hub_port))


def build_pods_to_delete(pods, now, max_age):
    """Which build pods to remove (pure): finished ones, and those older than ``max_age`` seconds
    (stuck: unschedulable, an image that cannot be pulled, a hung build).

    ``pods`` is an iterable of (name, phase, created: datetime or None); ``now`` a datetime.
    Build Secrets (no phase: None) go by age only.
    """
    doomed = []
    for name, phase, created in pods:
        age: Optional[float] = (now - created).total_seconds() if created else None
        if phase in ("Succeeded", "Failed") or (age is not None and age > max_age):
            doomed.append(name)
    return doomed


def pod_problem(pod_status):
    """A message for a pod that cannot start (pure), or None while it may still start.

    ``pod_status`` is the pod's status as a dict (the API's JSON form)."""
    for state in (pod_status.get("containerStatuses") or []):
        waiting = (state.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                                     "CreateContainerConfigError", "CreateContainerError"):
            return f"{waiting['reason']}: {waiting.get('message', '').strip()}".rstrip(": ")
    return None


def resource_traits(resources, extra_resource_limits=None):
    """KubeSpawner trait values that make a user pod's requests and limits the launch's
    ``resources`` (pure): cpu/mem limits and guarantees, and a disk limit as an
    ephemeral-storage limit on top of the admin's extra_resource_limits (e.g. GPUs)."""
    traits = kubespawner_traits(resources)
    traits["extra_resource_limits"] = {**(extra_resource_limits or {}), **traits["extra_resource_limits"]}
    return traits


# persistent homes (homes/): kubespawner's own storage settings, one PVC per member and repository

HOME_VOLUME = "binder-home"
HOME_MERGE_MOUNT = "/mnt/binder-home"


def _literal(value):
    """``value`` with kubespawner's template braces escaped: it expands {username} & co. in its
    storage and volume settings, and these values come from users and repositories."""
    if isinstance(value, str):
        return value.replace("{", "{{").replace("}", "}}")
    if isinstance(value, list):
        return [_literal(v) for v in value]
    if isinstance(value, dict):
        return {k: _literal(v) for k, v in value.items()}
    return value


def home_storage(home, mount_path, capacity, merge=None):
    """kubespawner trait values (pure) for a launch with ``home`` (homes.Home) mounted at
    ``mount_path``: its PVC (labels that are valid label values, the rest as annotations), the
    volume and mount, and, when ``merge`` = (image, commit, source) is given, an init container from
    the launch's image that merges the commit into the home (homes/merge.py, no service account
    token, no capabilities, none of the server's environment)."""
    labels, annotations = split_metadata(home.labels)
    traits = {
        "pvc_name": home.name,
        "storage_pvc_ensure": True,
        "storage_capacity": capacity,
        "storage_extra_labels": labels,
        "storage_extra_annotations": annotations,
        "volumes": [{"name": HOME_VOLUME, "persistentVolumeClaim": {"claimName": home.name}}],
        "volume_mounts": [{"name": HOME_VOLUME, "mountPath": mount_path}],
        "init_containers": [],
    }
    if merge is not None:
        image, commit, source = merge
        traits["init_containers"] = [{
            "name": "binder-home-merge",
            "image": image,
            "command": ["python3", "-I", "-c", source, "--ours", HOME_MERGE_MOUNT, "--theirs", mount_path,
                        "--commit", commit],
            "volumeMounts": [{"name": HOME_VOLUME, "mountPath": HOME_MERGE_MOUNT}],
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                "readOnlyRootFilesystem": True},
            "resources": {"limits": {"cpu": "1", "memory": "512Mi"},
                          "requests": {"cpu": "100m", "memory": "128Mi"}},
        }]
    return _literal(traits)
