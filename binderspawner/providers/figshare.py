"""Figshare articles: ``figshare/<doi>``, a Figshare DOI (``10.6084/m9.figshare.<id>[.v<n>]``) or an
article URL. The version is ``<id>.v<n>``: the one the DOI names, or the newest. The build fetches
``<html_base_url>/articles/_/<id>/<n>`` with repo2docker's Figshare content provider.

Tests run against a local fixture server that follows Figshare's documented API v2 responses
(tests/test_providers_data.py); figshare.com is not reachable from the test machines.
"""

import re

from traitlets import default

from binderspawner.providers.records import RecordProvider, doi_of
from binderspawner.providers.specparse import after_prefix, invalid, path_on

HINT = ("Use figshare/<DOI> (e.g. figshare/10.6084/m9.figshare.9782777.v1) or "
        "https://figshare.com/articles/<type>/<title>/<id>[/<version>].")


class FigshareProvider(RecordProvider):
    name = "figshare"
    prefix = "figshare"
    service = "Figshare"
    content_provider = "Figshare"
    content_providers = ("Figshare",)

    @default("html_base_url")
    def _default_html(self):
        return "https://figshare.com"

    @default("api_base_url")
    def _default_api(self):
        return "https://api.figshare.com/v2"

    example_doi = "10.6084/m9.figshare.9782777.v1"

    @default("doi_prefixes")
    def _default_prefixes(self):
        return ["10.6084/m9.figshare."]

    def parse(self, repo):
        rest = after_prefix(repo, self.prefix)
        doi = doi_of(rest if rest is not None else repo)
        if doi is not None:
            tail = self.known_doi(doi)
            if tail is None:
                if rest is None:
                    return None
                raise invalid(repo, f"{doi} is not a Figshare DOI (it must start with "
                                    f"{' or '.join(self.doi_prefixes)})", HINT)
            found = re.fullmatch(r"(\d+)(?:\.v(\d+))?", tail)
            if not found:
                raise invalid(repo, f"{doi} does not name a Figshare article", HINT)
        elif rest is not None:
            raise invalid(repo, "what follows 'figshare/' is not a DOI", HINT)
        else:
            path = path_on(repo, self.html_base_url)
            if path is None:
                return None
            found = re.fullmatch(r"/articles/(?:[^/?]+/)?[^/?]+/(\d+)(?:/(\d+))?/?", path)
            if not found:
                raise invalid(repo, "it is not the address of a Figshare article", HINT)
        article, version = found.groups()
        doi = f"{self.doi_prefixes[0]}{article}" + (f".v{version}" if version else "")
        host = self.host_of(self.html_base_url)
        return self.record(f"{self.prefix}/{doi}", f"{self.html_base_url}/articles/_/{article}"
                           + (f"/{version}" if version else ""), f"{host}/articles/{article}",
                           f"Figshare article {article}" + (f" version {version}" if version else ""))

    async def lookup(self, source, credentials):
        article, _, version = source.fetch_url.split("/articles/_/", 1)[1].partition("/")
        url = f"{self.api_base_url}/articles/{article}" + (f"/versions/{version}" if version else "")
        data = await self.api_json(url, credentials=credentials, not_found=self.missing(source))
        number = data.get("version") if isinstance(data, dict) else None
        if not version:
            if not isinstance(number, int):
                raise self.missing(source)
            version = str(number)
        what = f"article {article} version {version}"
        return f"{article}.v{version}", what, f"{self.html_base_url}/articles/_/{article}/{version}"
