"""Dataverse datasets: ``dataverse/<doi>``, a DOI with a known prefix, or a dataset URL on one of
``installations``. The version is ``<dataset id>.v<major>.<minor>`` of the dataset's latest version
(``/api/datasets/:persistentId``). A DOI of an unknown prefix is looked up with the DOI resolver's
handle API and must point to one of ``installations``. The build fetches the dataset page with
repo2docker's Dataverse content provider (which itself downloads Dataverse's list of installations,
so it needs the internet).

Tests run against a local fixture server that follows the Dataverse native API's documented
responses (tests/test_providers_data.py); no Dataverse installation is reachable from the test machines.
"""

from urllib.parse import parse_qs, urlsplit

from traitlets import Dict, List, Unicode, default

from binderspawner.errors import LaunchError
from binderspawner.providers.api import base_url
from binderspawner.providers.records import RecordProvider, doi_of
from binderspawner.providers.specparse import after_prefix, invalid, path_on

HINT = ("Use dataverse/<DOI> (e.g. dataverse/10.7910/DVN/TJCLKP) or "
        "https://<installation>/dataset.xhtml?persistentId=doi:<DOI>.")


class DataverseProvider(RecordProvider):
    name = "dataverse"
    prefix = "dataverse"
    service = "Dataverse"
    content_provider = "Dataverse"
    content_providers = ("Dataverse",)

    installations = List(
        Unicode(),
        ["https://dataverse.harvard.edu"],
        help="Base URLs of the Dataverse installations users may launch datasets from.",
    ).tag(config=True)

    doi_installations = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        help="""DOI prefix -> installation base URL, so these DOIs need no DOI-resolver lookup and
        plain DOIs with these prefixes are recognised. Defaults to Harvard Dataverse's
        {'10.7910/DVN/': 'https://dataverse.harvard.edu'}.""",
    ).tag(config=True)

    @default("doi_installations")
    def _default_doi_installations(self):
        return {"10.7910/DVN/": "https://dataverse.harvard.edu"}

    example_doi = "10.7910/DVN/TJCLKP"

    @default("doi_prefixes")
    def _default_prefixes(self):
        return list(self.doi_installations)

    def bases(self):
        return [base_url(b, "DataverseProvider.installations") for b in self.installations]

    def parse(self, repo):
        rest = after_prefix(repo, self.prefix)
        installation = None
        if rest is not None:
            doi = doi_of(rest)
            if doi is None:
                raise invalid(repo, "what follows 'dataverse/' is not a DOI", HINT)
        elif doi_of(repo) is not None:
            doi = doi_of(repo)
            if self.known_doi(doi) is None:
                return None
        else:
            for base in self.bases():
                path = path_on(repo, base)
                if path is not None:
                    installation = base
                    break
            else:
                return None
            parts = urlsplit(path)
            ids = parse_qs(parts.query).get("persistentId", [])
            doi = doi_of(ids[0]) if parts.path in ("/dataset.xhtml", "/citation") and len(ids) == 1 else None
            if doi is None:
                raise invalid(repo, "it is not the address of a Dataverse dataset", HINT)
        for prefix, base in self.doi_installations.items():
            if installation is None and doi.lower().startswith(prefix.lower()):
                installation = base_url(base, "DataverseProvider.doi_installations")
        fetch = f"{installation}/dataset.xhtml?persistentId=doi:{doi}" if installation else f"doi:{doi}"
        return self.record(f"{self.prefix}/{doi}", fetch, f"dataverse/{doi}", f"Dataverse dataset {doi}")

    async def lookup(self, source, credentials):
        doi = source.spec.split("/", 1)[1]
        if source.fetch_url.startswith("doi:"):
            url = await self.doi_url(doi)
            installation = next((b for b in self.bases() if path_on(url, b) is not None), None)
            if installation is None:
                raise LaunchError(f"The DOI {doi} points to {urlsplit(url).hostname}, which is not a "
                                  "Dataverse installation this hub launches from. A hub admin can add it "
                                  "to c.DataverseProvider.installations.", field="repo", status=403)
        else:
            installation = source.fetch_url.split("/dataset.xhtml", 1)[0]
        data = await self.api_json(f"{installation}/api/datasets/:persistentId?persistentId=doi:{doi}",
                                   credentials=credentials, not_found=self.missing(source))
        dataset = data.get("data") if isinstance(data, dict) else None
        latest = (dataset or {}).get("latestVersion") or {}
        major, minor = latest.get("versionNumber"), latest.get("versionMinorNumber")
        if not isinstance((dataset or {}).get("id"), int) or not isinstance(major, int):
            raise LaunchError(f"{source.display_name} has no published version.", field="repo", status=404)
        version = f"{major}.{minor if isinstance(minor, int) else 0}"
        return (f"{dataset['id']}.v{version}", f"dataset version {version}",
                f"{installation}/dataset.xhtml?persistentId=doi:{doi}")
