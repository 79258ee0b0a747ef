# repo2docker configuration used for every build binderspawner starts (loaded with --config).
# The builder passes its settings as JSON in BINDERSPAWNER_R2D_SETTINGS, so no code is generated.
import json
import os

from repo2docker import contentproviders
from repo2docker.buildpacks import DockerBuildPack, LegacyBinderDockerBuildPack

from binderspawner.builders.buildpacks.venv import make_venv_buildpack

settings = json.loads(os.environ["BINDERSPAWNER_R2D_SETTINGS"])
c = get_config()  # noqa: F821 (provided by traitlets when repo2docker loads this file)

c.Repo2Docker.content_providers = [getattr(contentproviders, name) for name in settings["content_providers"]]
if settings["base_image"]:
    c.Repo2Docker.base_image = settings["base_image"]
if settings["buildpacks"] == "venv":
    venv = make_venv_buildpack(settings["server_requirements"], settings["extra_ca_bundle"])
    c.Repo2Docker.buildpacks = [LegacyBinderDockerBuildPack, DockerBuildPack, venv]
    c.Repo2Docker.default_buildpack = venv
# Git LFS files are downloaded right after the clone (builders/lfs.py), or the build log says why not.
from binderspawner.builders.lfs import with_lfs  # noqa: E402

c.Repo2Docker.content_providers = [with_lfs(cp) if cp is contentproviders.Git else cp
                                   for cp in c.Repo2Docker.content_providers]
