"""Zenodo (and other Invenio) records: ``zenodo/<doi>``, a Zenodo DOI, or a record URL.

The version is the record id: every Zenodo version is its own record, and a concept record (the
DOI of "all versions") answers with its newest version. The build fetches
``<html_base_url>/record/<id>`` with repo2docker's Zenodo content provider.

Tests run against a local fixture server that follows Zenodo's documented REST API responses
(tests/test_providers_data.py); zenodo.org is not reachable from the test machines.
"""

import re

from traitlets import default

from binderspawner.providers.records import RecordProvider, doi_of
from binderspawner.providers.specparse import after_prefix, invalid, path_on

HINT = "Use zenodo/<DOI> (e.g. zenodo/10.5281/zenodo.3242074) or https://zenodo.org/records/<id>."


class ZenodoProvider(RecordProvider):
    name = "zenodo"
    prefix = "zenodo"
    service = "Zenodo"
    content_provider = "Zenodo"
    content_providers = ("Zenodo",)

    @default("html_base_url")
    def _default_html(self):
        return "https://zenodo.org"

    @default("api_base_url")
    def _default_api(self):
        return f"{self.html_base_url}/api"

    @default("doi_prefixes")
    def _default_prefixes(self):
        return ["10.5281/zenodo."]

    def parse(self, repo):
        rest = after_prefix(repo, self.prefix)
        text = rest if rest is not None else repo
        doi = doi_of(text)
        if doi is not None:
            record_id = self.known_doi(doi)
            if record_id is None:
                if rest is None:
                    return None  # someone else's DOI
                raise invalid(repo, f"{doi} is not a Zenodo DOI (it must start with "
                                    f"{' or '.join(self.doi_prefixes)})", HINT)
        elif rest is not None:
            raise invalid(repo, "what follows 'zenodo/' is not a DOI", HINT)
        else:
            path = path_on(repo, self.html_base_url)
            if path is None:
                return None
            found = re.fullmatch(r"/records?/(\d+)/?", path)
            if not found:
                raise invalid(repo, "it is not the address of a Zenodo record", HINT)
            record_id = found.group(1)
        if not record_id.isdigit():
            raise invalid(repo, f"the record number {record_id!r} is not a number", HINT)
        host = self.host_of(self.html_base_url)
        return self.record(f"{self.prefix}/{self.doi_prefixes[0]}{record_id}",
                           f"{self.html_base_url}/record/{record_id}", f"{host}/record/{record_id}",
                           f"Zenodo record {record_id}", f"{self.html_base_url}/records/{record_id}")

    async def lookup(self, source, credentials):
        record_id = source.fetch_url.rsplit("/", 1)[1]
        data = await self.api_json(f"{self.api_base_url}/records/{record_id}", credentials=credentials,
                                   not_found=self.missing(source))
        latest = str(data.get("id", "")) if isinstance(data, dict) else ""
        if not latest.isdigit():
            raise self.missing(source)
        what = f"record {latest}" + (f" (newest version of {record_id})" if latest != record_id else "")
        return latest, what, f"{self.html_base_url}/record/{latest}"
