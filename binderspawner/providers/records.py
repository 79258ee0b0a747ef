"""What the data-repository providers share: DOIs, and resolving a record to a version.

A data source has versions, not branches: ``ref`` must be empty. Resolving asks the repository's API
for the record's current version (Zenodo record id, Figshare article version, HydroShare/CKAN
modification time, Dataverse dataset version); the image is named from it and the build fetches that
record through repo2docker's content provider for the source (``content_provider``).
"""

import re
from urllib.parse import unquote
from dataclasses import replace

from traitlets import List, Unicode, validate

from binderspawner.errors import LaunchError
from binderspawner.providers.api import ApiProvider, Unreachable, base_url
from binderspawner.providers.base import LinkGrammar, RepoSource, ResolvedRepo

DOI_PART = r"10\.[0-9]{4,9}/[-._;()/:A-Za-z0-9]{1,300}"
DOI = re.compile(f"^{DOI_PART}$")
_DOI_PREFIXES = ("doi:", "https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "http://dx.doi.org/")


def doi_of(text):
    """The bare DOI in 'doi:10.x/y', 'https://doi.org/10.x/y' or '10.x/y' (pure); None if none."""
    for prefix in _DOI_PREFIXES:
        if text.lower().startswith(prefix):
            text = text[len(prefix):]
            break
    return text if DOI.match(text) else None


class RecordProvider(ApiProvider):
    """Base of the data-repository providers."""

    content_provider = "Git"  # repo2docker's content provider for this source (set by subclasses)
    case_insensitive = True  # DOIs and record ids ignore case: one identity per record

    doi_prefixes = List(Unicode(), help="DOI prefixes of this repository's records.").tag(config=True)

    doi_resolver_url = Unicode(
        "https://doi.org",
        help="DOI resolver whose handle API (<url>/api/handles/<doi>) turns a DOI into a record URL.",
    ).tag(config=True)

    @validate("doi_resolver_url")
    def _valid_resolver(self, proposal):
        return base_url(proposal.value, f"{type(self).__name__}.doi_resolver_url")

    def record(self, spec, fetch_url, slug, display_name, repo_url=""):
        return RepoSource(provider=self.name, spec=spec, fetch_url=fetch_url, slug=slug,
                          display_name=display_name, repo_url=repo_url or fetch_url, has_refs=False,
                          content_provider=self.content_provider,
                          identity=spec.lower() if self.case_insensitive else spec)

    def known_doi(self, doi):
        """The part of ``doi`` after one of doi_prefixes, or None."""
        for prefix in self.doi_prefixes:
            if doi.lower().startswith(prefix.lower()):
                return doi[len(prefix):]
        return None

    # launch links (pure): '<prefix>/<DOI>'; HydroShare and CKAN have their own ------------------------

    example_doi = "10.5281/zenodo.3242074"

    def link_grammar(self):
        return LinkGrammar(self.prefix, "<DOI>", f"{self.prefix}/{self.example_doi}",
                           rf"^{self.prefix}/{DOI_PART}$", self.service, {"doi": 320})

    def parse_link(self, spec):
        doi = unquote(spec)
        if not DOI.match(doi) or "/../" in doi + "/" or "//" in doi:
            raise self.link_error(f"it is not a DOI such as {self.example_doi}")
        return doi, f"{self.prefix}/{doi}", None

    async def doi_url(self, doi):
        """Where the DOI points, through the resolver's handle API (no redirects followed)."""
        data = await self.api_json(f"{self.doi_resolver_url}/api/handles/{doi}", not_found=LaunchError(
            f"The DOI {doi} is not registered. Check it.", field="repo", status=404))
        for value in data.get("values") or []:
            if isinstance(value, dict) and value.get("type") == "URL":
                url = (value.get("data") or {}).get("value")
                if isinstance(url, str):
                    return url
        raise LaunchError(f"The DOI {doi} does not point to a web address.", field="repo", status=404)

    async def resolve(self, source, ref, *, credentials=None):
        source.with_ref(ref)  # a ref for a record is an error that names the field
        try:
            version, description, fetch_url = await self.cached(
                (source.spec, credentials and credentials.cache_key), lambda: self.lookup(source, credentials))
        except Unreachable:
            raise LaunchError(f"Could not reach {self.service} to look up {source.display_name}. Try "
                              "again later.", field="repo", status=502) from None
        return ResolvedRepo(replace(source, fetch_url=fetch_url), None, version, description)

    async def lookup(self, source, credentials):
        """(version, description, fetch_url) of the record's current version."""
        raise NotImplementedError

    def missing(self, source):
        return LaunchError(f"{source.display_name} was not found on {self.service}. Check the DOI or "
                           "address.", field="repo", status=404)
