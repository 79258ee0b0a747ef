"""Data-repository providers: Zenodo, Figshare, HydroShare, Dataverse, CKAN (+ the DOI helper), and
how the builder's repo2docker content providers follow from the configured providers.

None of these services can be reached from the test machines: the tests run against
tests/support/apifixtures.py, a local tornado server on 127.0.0.1 answering like each service's
documented API (Zenodo REST records incl. the concept-record redirect, Figshare API v2 articles and
versions, HydroShare scimeta/elements, the Dataverse native API, the doi.org handle API, CKAN's
package_show), so the providers' real HTTP client code runs.
"""

import pytest

from binderspawner.builders import Repo2DockerBuilder
from binderspawner.errors import BuildFailed, LaunchError
from binderspawner.providers import (CKANProvider, DataverseProvider, FigshareProvider, GitProvider,
                                     HydroshareProvider, ZenodoProvider, detect)
from binderspawner.providers.records import doi_of
from binderspawner.spawner import BinderSpawner
from tests.support.apifixtures import fresh_provider_caches

RESOURCE = "b8f6eae9d89241cf8b5904033460af61"
LOCAL = ["127.0.0.1"]


@pytest.fixture(autouse=True)
def fresh(api):
    api.state.__init__()
    fresh_provider_caches()


def providers(api):
    return {
        "zenodo": ZenodoProvider(api_base_url=api.url("/zenodo/api"), allowed_private_hosts=LOCAL),
        "figshare": FigshareProvider(api_base_url=api.url("/figshare/v2"), allowed_private_hosts=LOCAL),
        "hydroshare": HydroshareProvider(api_base_url=api.url("/hydroshare/hsapi"), allowed_private_hosts=LOCAL),
        "dataverse": DataverseProvider(installations=[api.url("/dataverse")],
                                       doi_installations={"10.7910/DVN/": api.url("/dataverse")},
                                       doi_resolver_url=api.url("/doi"), allowed_private_hosts=LOCAL),
        "ckan": CKANProvider(hosts=["127.0.0.1"], allowed_private_hosts=LOCAL),
    }


@pytest.mark.parametrize("text, doi", [
    ("10.5281/zenodo.3242074", "10.5281/zenodo.3242074"),
    ("doi:10.7910/DVN/TJCLKP", "10.7910/DVN/TJCLKP"),
    ("https://doi.org/10.6084/m9.figshare.9782777.v1", "10.6084/m9.figshare.9782777.v1"),
    ("https://example.org/10.1/x", None), ("10.1/x", None), ("gh/org/repo", None),
])
def test_doi_of(text, doi):
    assert doi_of(text) == doi


@pytest.mark.parametrize("repo, spec", [
    ("zenodo/10.5281/zenodo.3242074", "zenodo/10.5281/zenodo.3242074"),
    ("10.5281/zenodo.3242074", "zenodo/10.5281/zenodo.3242074"),
    ("https://doi.org/10.5281/zenodo.3242074", "zenodo/10.5281/zenodo.3242074"),
    ("https://zenodo.org/records/3242074", "zenodo/10.5281/zenodo.3242074"),
    ("figshare/10.6084/m9.figshare.9782777.v1", "figshare/10.6084/m9.figshare.9782777.v1"),
    ("https://figshare.com/articles/code/binder-examples/9782777/2", "figshare/10.6084/m9.figshare.9782777.v2"),
    (f"hydroshare/{RESOURCE}", f"hydroshare/{RESOURCE}"),
    (f"https://www.hydroshare.org/resource/{RESOURCE}/", f"hydroshare/{RESOURCE}"),
    (f"10.4211/hs.{RESOURCE}", f"hydroshare/{RESOURCE}"),
    ("dataverse/10.7910/DVN/TJCLKP", "dataverse/10.7910/DVN/TJCLKP"),
    ("doi:10.7910/DVN/TJCLKP", "dataverse/10.7910/DVN/TJCLKP"),
    ("dataverse/10.1234/OTHER", "dataverse/10.1234/OTHER"),
    ("ckan/http%3A%2F%2F127.0.0.1%2Fdataset%2Fsample", "ckan/http%3A%2F%2F127.0.0.1%2Fdataset%2Fsample"),
    ("http://127.0.0.1/dataset/sample?activity_id=act1",
     "ckan/http%3A%2F%2F127.0.0.1%2Fdataset%2Fsample%2Fhistory%2Fact1"),
])
def test_detect_and_round_trip(api, repo, spec):
    all_providers = [*providers(api).values(), GitProvider()]
    provider, source = detect(repo, all_providers)
    assert source.spec == spec and not source.has_refs
    assert detect(spec, all_providers)[1] == source


@pytest.mark.parametrize("repo, part", [
    ("zenodo/10.1234/other", "not a Zenodo DOI"),
    ("zenodo/12345", "not a DOI"),
    ("https://zenodo.org/communities/x", "not the address of a Zenodo record"),
    ("figshare/10.6084/m9.figshare.abc", "does not name a Figshare article"),
    ("hydroshare/xyz", "not a HydroShare resource id"),
    ("dataverse/nope", "not a DOI"),
    ("ckan/https://site/dataset/x", "URL-escaped"),
    ("ckan/ftp%3A%2F%2Fsite%2Fdataset%2Fx", "not an http(s) URL"),
    ("ckan/https%3A%2F%2Fsite%2Fgroup%2Fx", "not the address of a CKAN dataset"),
    ("https://doi.org/10.9999/unknown", "not from a data repository this hub launches from"),
])
def test_bad_input_names_the_part(api, repo, part):
    with pytest.raises(LaunchError) as info:
        detect(repo, [*providers(api).values(), GitProvider()])
    assert part in str(info.value) and info.value.field == "repo"


async def resolve(api, repo, ref=None):
    provider, source = detect(repo, list(providers(api).values()))
    return await provider.resolve(source, ref)


async def test_zenodo_concept_record_resolves_to_newest_version(api):
    api.state.zenodo.update({"100": "102", "102": "102"})
    resolved = await resolve(api, "zenodo/10.5281/zenodo.100")
    assert resolved.version == "102" and "newest version of 100" in resolved.resolved_from
    assert resolved.source.fetch_url == "https://zenodo.org/record/102"  # what repo2docker's Zenodo reads
    assert resolved.source.content_provider == "Zenodo"
    with pytest.raises(LaunchError) as info:
        await resolve(api, "zenodo/10.5281/zenodo.999")
    assert info.value.status_code == 404


async def test_figshare_versions(api):
    api.state.figshare["9782777"] = 3
    latest = await resolve(api, "figshare/10.6084/m9.figshare.9782777")
    assert latest.version == "9782777.v3"
    assert latest.source.fetch_url == "https://figshare.com/articles/_/9782777/3"
    assert (await resolve(api, "figshare/10.6084/m9.figshare.9782777.v2")).version == "9782777.v2"
    with pytest.raises(LaunchError):
        await resolve(api, "figshare/10.6084/m9.figshare.9782777.v9")


async def test_hydroshare_version_is_the_modification_time(api):
    api.state.hydroshare[RESOURCE] = "2019-09-24T17:08:40.553226Z"
    resolved = await resolve(api, f"hydroshare/{RESOURCE}")
    assert resolved.version == f"{RESOURCE}.v1569344920"


async def test_dataverse_known_prefix_and_doi_resolver(api):
    api.state.dataverse["10.7910/DVN/TJCLKP"] = (3323458, 2, 1)
    resolved = await resolve(api, "dataverse/10.7910/DVN/TJCLKP")
    assert resolved.version == "3323458.v2.1"
    assert resolved.source.fetch_url == api.url(
        "/dataverse/dataset.xhtml?persistentId=doi:10.7910/DVN/TJCLKP")
    assert api.calls("/doi") == []  # a known prefix needs no DOI lookup
    api.state.dataverse["10.1234/OTHER"] = (7, 1, 0)
    api.state.dois["10.1234/OTHER"] = api.url("/dataverse/citation?persistentId=doi:10.1234/OTHER")
    assert (await resolve(api, "dataverse/10.1234/OTHER")).version == "7.v1.0"
    api.state.dois["10.1234/ELSEWHERE"] = "https://elsewhere.example/dataset.xhtml?persistentId=doi:10.1234/ELSEWHERE"
    with pytest.raises(LaunchError) as info:
        await resolve(api, "dataverse/10.1234/ELSEWHERE")
    assert "DataverseProvider.installations" in str(info.value)


async def test_ckan_modified_time_and_activity(api):
    api.state.ckan["sample"] = "2024-01-02T03:04:05.678901"
    url = api.url("/ckan/dataset/sample").replace("/", "%2F").replace(":", "%3A")
    resolved = await resolve(api, f"ckan/{url}")
    assert resolved.version == "sample.v1704164645"
    assert (await resolve(api, api.url("/ckan/dataset/sample/history/act-1"))).version == "sample.aact-1"
    with pytest.raises(LaunchError):
        await resolve(api, api.url("/ckan/dataset/missing"))


async def test_a_ref_for_a_record_is_refused(api):
    api.state.zenodo["100"] = "100"
    with pytest.raises(LaunchError) as info:
        await resolve(api, "zenodo/10.5281/zenodo.100", "main")
    assert info.value.field == "ref" and "leave 'ref' empty" in str(info.value)


async def test_ckan_site_on_a_private_address_is_refused(api):
    provider = CKANProvider(hosts=["127.0.0.1"])
    source = provider.parse("ckan/" + api.url("/ckan/dataset/sample").replace("/", "%2F").replace(":", "%3A"))
    with pytest.raises(LaunchError) as info:
        await provider.resolve(source, None)
    assert info.value.status_code == 403 and "CKANProvider.allowed_private_hosts" in str(info.value)
    assert api.calls("/ckan") == []


# the builder follows the providers ---------------------------------------------------------------------


def test_content_providers_follow_the_configured_providers(api):
    spawner = BinderSpawner()
    builder = Repo2DockerBuilder(parent=spawner)
    assert builder.content_providers == ["Git", "Zenodo", "Figshare", "Hydroshare", "Dataverse", "CKAN"]
    assert Repo2DockerBuilder(parent=BinderSpawner(
        provider_classes=[GitProvider])).content_providers == ["Git"]
    zenodo = providers(api)["zenodo"].parse("zenodo/10.5281/zenodo.1")
    assert builder.content_providers_for(zenodo) == ["Zenodo"]  # one per build: Git would take anything
    with pytest.raises(BuildFailed) as info:
        Repo2DockerBuilder(content_providers=["Git"]).content_providers_for(zenodo)
    assert "Repo2DockerBuilder.content_providers" in str(info.value)
