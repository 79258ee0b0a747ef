"""Opt-in live tests against the real services (marked ``live``): run them on a machine with internet
access with BINDERSPAWNER_LIVE_TESTS=1. Off by default and in CI, where only 127.0.0.1 may be reached.
The records are those BinderHub's and repo2docker's own tests use."""

import json
import os
import urllib.request

import pytest

from binderspawner.providers import DEFAULT_PROVIDERS, detect
from binderspawner.launch.speccontrol import effective_ref
from tests.support.apifixtures import fresh_provider_caches

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(os.environ.get("BINDERSPAWNER_LIVE_TESTS") != "1",
                       reason="live test: set BINDERSPAWNER_LIVE_TESTS=1 on a machine with internet access"),
]


@pytest.mark.parametrize("repo", [
    "gh/binder-examples/requirements/HEAD",
    "https://github.com/binder-examples/requirements/tree/master",
    "gl/gitlab-org%2Fgitlab-test/master",
    "zenodo/10.5281/zenodo.3242074",
    "figshare/10.6084/m9.figshare.9782777.v1",
    "hydroshare/b8f6eae9d89241cf8b5904033460af61",
    "dataverse/10.7910/DVN/TJCLKP",
    "ckan/https%3A%2F%2Fdemo.ckan.org%2Fdataset%2Fsample-dataset-1",
    "https://github.com/binder-examples/requirements.git",
])
async def test_live_resolve(repo):
    fresh_provider_caches()
    provider, source = detect(repo, [cls() for cls in DEFAULT_PROVIDERS])
    resolved = await provider.resolve(source, effective_ref(source, None))
    assert resolved.version


async def test_live_gist():
    fresh_provider_caches()
    with urllib.request.urlopen("https://api.github.com/gists/public?per_page=1", timeout=30) as r:
        gist = json.load(r)[0]
    provider, source = detect(f"gist/{gist['owner']['login']}/{gist['id']}",
                              [cls() for cls in DEFAULT_PROVIDERS])
    assert len((await provider.resolve(source, None)).version) == 40
