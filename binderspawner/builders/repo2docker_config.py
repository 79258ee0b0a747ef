# repo2docker configuration used for every build binderspawner starts (loaded with --config).
# The builder passes its settings as JSON in BINDERSPAWNER_R2D_SETTINGS, so no code is generated.
import json
import os

import docker.utils.build
import repo2docker.buildpacks.base
from repo2docker import contentproviders
from repo2docker.buildpacks import DockerBuildPack, LegacyBinderDockerBuildPack

from binderspawner.builders.buildpacks.venv import make_venv_buildpack
from binderspawner.builders import ignorefiles
from binderspawner.builders.checkedfetch import CheckedGit, checked_provider
from binderspawner.builders.imagefence import fenced_dockerfile_buildpack
from binderspawner.builders.lfs import with_lfs

# .dockerignore/.containerignore are the repository's: the build context is made with patterns
# matched in linear time (builders/ignorefiles.py), the same answers as docker-py's backtracking
# regex, which one 40-byte line keeps busy for hours (repo2docker's context and docker-py's tar).
docker.utils.build.exclude_paths = ignorefiles.exclude_paths
repo2docker.buildpacks.base.exclude_paths = ignorefiles.exclude_paths

settings = json.loads(os.environ["BINDERSPAWNER_R2D_SETTINGS"])
c = get_config()  # noqa: F821 (provided by traitlets when repo2docker loads this file)

# Git: binderspawner's checked clone (builders/checkedfetch.py) instead of repo2docker's own, then
# its Git LFS files (builders/lfs.py); used where the hub does not clone (Kubernetes build pods).
# Data records: downloads through the same address check as the hub's own requests.
# Local: the hub's own checked clone (builders/checkout.py).
c.Repo2Docker.content_providers = [
    with_lfs(CheckedGit) if name == "Git"
    else checked_provider(getattr(contentproviders, name), settings.get("git_rules"))
    for name in settings["content_providers"]]
# The environment the hub decided from its checked clone (builders/environment.py); its base image
# (the one with the Python it chose) wins over the builder's default.
environment = settings.get("environment") or None
base_image = (environment or {}).get("base_image") or settings.get("base_image")
if base_image:
    c.Repo2Docker.base_image = base_image
if settings["buildpacks"] == "venv":
    if (environment or {}).get("conda_payload"):  # a conda environment the hub fetched (builders/conda.py)
        from binderspawner.builders.buildpacks.conda import make_conda_buildpack as make_buildpack
    else:
        make_buildpack = make_venv_buildpack
    venv = make_buildpack(settings["server_requirements"], settings["extra_ca_bundle"], environment)
    fenced = fenced_dockerfile_buildpack(DockerBuildPack, settings)
    c.Repo2Docker.buildpacks = [LegacyBinderDockerBuildPack, fenced, venv]
    c.Repo2Docker.default_buildpack = venv
else:  # repo2docker's own buildpacks, with the same check on Dockerfile repositories
    from repo2docker.app import Repo2Docker

    c.Repo2Docker.buildpacks = [fenced_dockerfile_buildpack(DockerBuildPack, settings) if b is DockerBuildPack
                                else b for b in Repo2Docker.class_traits()["buildpacks"].default()]
