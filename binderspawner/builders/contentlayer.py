"""Environment images and the thin layer of a commit's files on top (the I/O around envkey.py).

For a commit whose environment has a key (builders/envkey.py), the environment image is built once
per key by repo2docker, from a copy of the checkout holding only the key's files (so nothing else of
the first commit can end up in it), and named ``<repository>:env-<key>`` (launch/images.py). Each
commit's launch image is then that image plus one layer holding the checkout in $REPO_DIR, owned by
the image's user (what repo2docker's ``COPY --chown`` makes), .dockerignore/.containerignore
applied as repo2docker applies them: a content-only commit costs a clone and a layer, not a
repo2docker run. Builds of one key are
de-duplicated like builds of one image; the launch build that asked first holds the queue slot.
"""

import asyncio
import hashlib
import io
import os
import re
import stat
import tarfile

import docker

from binderspawner import messages
from binderspawner.builders import checkout as checkouts
from binderspawner.builders import envkey
from binderspawner.builders.ignorefiles import exclude_paths
from binderspawner.builders.base import BuildRequest
from binderspawner.builders.queue import BuildQueue
from binderspawner.builders.registry import RegistryClient, parse_image
from binderspawner.errors import BuildFailed
from binderspawner.launch.images import environment_reference
from binderspawner.services.cleanup import LABEL_HUB

LABEL_ENVIRONMENT = "binderspawner.environment"  # the key, on environment and launch images
# Launch builds hold the hub queue's slots; this queue only makes one build per environment key.
ENVIRONMENT_BUILDS = BuildQueue(max_concurrent=1 << 30)
_REPO_DIR = re.compile(r"^/[A-Za-z0-9._/-]*$")
_ENV_LABELS = ("binderspawner.repo", "binderspawner.spec", "binderspawner.provider", LABEL_HUB)


def _buildpack_sources(here):
    """The hub's buildpacks and repo2docker config: a change in them changes what is built."""
    folder = os.path.join(here, "buildpacks")
    return [os.path.join(here, "repo2docker_config.py"),
            *sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".py"))]


def _read_inside(root, rel):
    """(bytes, executable) of a regular file inside ``root``, None when absent; never follows a
    link out of the checkout (checkout.read_repo_files has refused such links already)."""
    path = os.path.join(root, rel)
    if not os.path.lexists(path):
        return None
    real = os.path.realpath(path)
    if not real.startswith(os.path.realpath(root) + os.sep) or not os.path.isfile(real):
        return None
    fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        data = f.read(checkouts.MAX_FILE_BYTES + 1)
    if len(data) > checkouts.MAX_FILE_BYTES:  # read_repo_files refuses these before any build
        raise BuildFailed(messages.FILE_TOO_LARGE.format(file=rel, limit=checkouts.MAX_FILE_BYTES))
    return data, bool(mode & stat.S_IXUSR)


def file_entries(root, paths):
    """{path: envkey.file_entry or None (absent)} for the key's files in the checkout."""
    out = {}
    for rel in paths:
        found = _read_inside(root, rel)
        out[rel] = envkey.file_entry(*found) if found else None
    return out


def key_only_copy(root, paths, binder_dir, dest):
    """Copy the key's files (content and executable bit) from the checkout into ``dest``, and the
    binder directory, which repo2docker's buildpacks look in even when it holds none of them."""
    if binder_dir:
        os.makedirs(os.path.join(dest, binder_dir), exist_ok=True)
    for rel in paths:
        found = _read_inside(root, rel)
        if found is None:
            continue
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(found[0])
        os.chmod(target, 0o755 if found[1] else 0o644)


def hub_settings(builder, environment, base_image_id):
    """Everything hub-side that changes an environment image (pure but for its arguments)."""
    settings = builder.environment_settings(environment)
    base = settings["base_image"] or builder.python_base_images[builder.default_python]
    here = os.path.dirname(os.path.abspath(__file__))
    sources = hashlib.sha256()
    for path in _buildpack_sources(here):
        with open(path, "rb") as f:
            sources.update(os.path.basename(path).encode() + b"\0" + f.read())
    ca = ""
    if builder.extra_ca_bundle:
        with open(builder.extra_ca_bundle, "rb") as f:
            ca = hashlib.sha256(f.read()).hexdigest()
    import repo2docker

    import binderspawner

    # every entry of the build's environment settings (other kinds add theirs there), as handed to
    # repo2docker, plus what the settings leave to the builder's defaults
    return {"environment_settings": settings,
            "base_image": base, "base_image_id": base_image_id, "index_urls": settings["index_urls"],
            "server_requirements": list(builder.server_requirements), "extra_ca_bundle": ca,
            "buildpacks": builder.buildpacks, "user": [builder.user_id, builder.user_name],
            "versions": [binderspawner.__version__, repo2docker.__version__, sources.hexdigest()]}


def check_repo_dir(environment_image, repo_dir):
    """$REPO_DIR of the environment image, where the files go: an absolute plain path."""
    if not _REPO_DIR.match(repo_dir) or ".." in repo_dir.split("/"):
        raise BuildFailed(f"The environment image {environment_image} has an unusable REPO_DIR {repo_dir!r}.")
    return repo_dir


def ignore_patterns(root, binder_dir):
    """.dockerignore/.containerignore lines, read where repo2docker reads them (binder dir)."""
    patterns = []
    for name in envkey.IGNORE_FILES:
        found = _read_inside(root, f"{binder_dir}/{name}" if binder_dir else name)
        if found:
            lines = [line.strip() for line in found[0].decode("utf-8", "replace").splitlines()]
            patterns += [line for line in lines if line and not line.startswith("#")]
    return patterns


def content_archive(root, patterns, user_id):
    """The checkout as a tar of paths relative to $REPO_DIR, every entry owned by the image's user
    (links stay links), without what .dockerignore/.containerignore exclude: what repo2docker's
    ``COPY --chown`` of the repository puts there. The patterns are the repository's: matched in
    linear time (builders/ignorefiles.py), never by a backtracking regex on the hub's event loop."""
    buffer = io.BytesIO()

    def owner(info):
        info.uname = info.gname = ""
        info.uid = info.gid = int(user_id)
        return info

    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for item in sorted(exclude_paths(root, patterns)):
            tar.add(os.path.join(root, item), item, recursive=False, filter=owner)
    return buffer.getvalue()


def repo_dir_of(attrs):
    for entry in (attrs.get("Config") or {}).get("Env") or []:
        name, _, value = entry.partition("=")
        if name == "REPO_DIR":
            return value
    raise BuildFailed("The environment image has no REPO_DIR; it was not built by repo2docker.")


async def _thread(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def ensure_local(builder, image):
    """Whether ``image`` is on this engine, pulling it from its registry first when the builder
    checks the registry and the registry has it."""
    client = builder.docker_client()

    def local():
        try:
            client.images.get(image)
            return True
        except docker.errors.ImageNotFound:
            return False

    if await _thread(local):
        return True
    if not (builder.check_registry and await RegistryClient(parent=builder).manifest_exists(image)):
        return False
    creds = RegistryClient(parent=builder).credentials(parse_image(image).registry)
    auth = {"username": creds[0], "password": creds[1]} if creds else None
    repository, _, tag = image.rpartition(":")
    try:
        await _thread(lambda: client.images.pull(repository, tag, auth_config=auth))
    except docker.errors.APIError as e:
        builder.log.warning("Pulling the environment image %s failed: %s", image, e)
        return False
    return True


async def build_keyed(builder, request, emit, checkout, environment):
    """Build ``request.image`` as environment image + content layer; False (nothing done) when
    the environment is keyed by the whole repository, so the caller builds it with repo2docker."""
    reads = envkey.build_reads(environment, checkouts.read_repo_files(checkout))
    if reads.whole_repository:
        emit("fetching", messages.ENVKEY_WHOLE_REPOSITORY.format(reason=reads.whole_repository))
        return False
    settings = hub_settings(builder, environment, await _base_image_id(builder, environment))
    key = envkey.environment_key(environment, file_entries(checkout, reads.paths), settings)
    env_image = environment_reference(request.image, key)
    emit("fetching", messages.ENVKEY_IMAGE.format(image=env_image, files=", ".join(
        p for p in reads.paths if os.path.lexists(os.path.join(checkout, p))) or "none"))
    build = ENVIRONMENT_BUILDS.ensure(
        env_image, exists=lambda: ensure_local(builder, env_image),
        build=lambda env_emit: build_environment(builder, request, env_image, key, reads, checkout,
                                                 environment, env_emit))
    async for event in build.follow():
        # the environment's own "built"/"pushing" lines are steps of this launch's build
        phase = "building" if event.phase in ("built", "pushing") else event.phase
        emit(phase, event.message, event.fraction)
    built = await build.wait()
    emit("building", messages.ENVKEY_BUILT.format(image=env_image) if built
         else messages.ENVKEY_FOUND.format(image=env_image))
    await build_content_image(builder, request, env_image, key, checkout, environment, emit)
    return True


async def _base_image_id(builder, environment):
    base = builder.environment_settings(environment)["base_image"] or \
        builder.python_base_images[builder.default_python]
    try:
        return (await _thread(builder.docker_client().images.get, base)).id
    except docker.errors.ImageNotFound:
        return ""  # repo2docker says what is missing when it builds


async def build_environment(builder, request, env_image, key, reads, checkout, environment, emit):
    """repo2docker, on a copy of the checkout holding only the key's files."""
    only = checkouts.make_checkout_dir(request.env.get("TMPDIR"))
    try:
        key_only_copy(checkout, reads.paths, environment.binder_dir, only)
        labels = {k: v for k, v in request.labels.items() if k in _ENV_LABELS}
        labels.update({"binderspawner.image": env_image, LABEL_ENVIRONMENT: key})
        builder.log.info("Building environment image %s from %s at %s", env_image,
                         request.resolved.source.display_name, request.resolved.version)
        emit("building", messages.ENVKEY_BUILDING.format(image=env_image))
        await builder.run_repo2docker(BuildRequest(env_image, request.resolved, labels, request.env),
                                      emit, only, environment)
    finally:
        checkouts.remove_checkout(only)


async def build_content_image(builder, request, env_image, key, checkout, environment, emit):
    """``env_image`` + the checkout in $REPO_DIR as one layer: a container made from the
    environment image (never started, no network) receives the files and is committed with the
    launch's labels. Nothing of the repository runs, so no build fence is needed."""
    client = builder.docker_client().api
    try:
        attrs = await _thread(client.inspect_image, env_image)
    except docker.errors.ImageNotFound:
        raise BuildFailed(messages.ENVKEY_CONTENT_FAILED.format(
            image=request.image, error=f"the environment image {env_image} is not on this Docker engine")) from None
    repo_dir = check_repo_dir(env_image, repo_dir_of(attrs))
    archive = content_archive(checkout, ignore_patterns(checkout, environment.binder_dir), builder.user_id)
    labels = {**request.labels, LABEL_ENVIRONMENT: key, "repo2docker.ref": request.resolved.version}
    repository, _, tag = request.image.rpartition(":")
    emit("building", messages.ENVKEY_CONTENT.format(image=request.image))

    def run():
        container = client.create_container(env_image, network_disabled=True)["Id"]
        try:
            client.put_archive(container, repo_dir, archive)
            return client.commit(container, repository=repository, tag=tag, conf={"Labels": labels})
        finally:
            client.remove_container(container, force=True)

    try:
        await _thread(run)
    except docker.errors.APIError as e:
        raise BuildFailed(messages.ENVKEY_CONTENT_FAILED.format(image=request.image,
                                                                error=e.explanation or e)) from None
    if builder.push:
        await builder.push_image(request.image, emit)
    emit("built", f"Built image {request.image}")
