"""HydroShare resources: ``hydroshare/<resource id>``, a HydroShare DOI (``10.4211/hs.<id>``) or a
resource URL. The version is ``<id>.v<epoch of the last modification>`` from the resource's science
metadata (``/hsapi/resource/<id>/scimeta/elements``), as BinderHub and repo2docker do. HydroShare
serves only a resource's current files: a change between resolving and building is not caught.

Tests run against a local fixture server that follows HydroShare's documented REST API responses
(tests/test_providers_data.py); hydroshare.org is not reachable from the test machines.
"""

import datetime
import re

from traitlets import default

from binderspawner.errors import LaunchError
from binderspawner.providers.base import LinkGrammar
from binderspawner.providers.records import RecordProvider, doi_of
from binderspawner.providers.specparse import after_prefix, invalid, path_on

HINT = "Use hydroshare/<32-character resource id> or https://www.hydroshare.org/resource/<id>/."
RESOURCE_PART = r"[0-9a-f]{32}"
RESOURCE = re.compile(f"^{RESOURCE_PART}$")


def modified_epoch(meta):
    """The 'modified' date of scimeta/elements as integer epoch seconds (pure); None if absent."""
    for item in (meta or {}).get("dates") or []:
        if isinstance(item, dict) and item.get(
                "type") == "modified" and isinstance(item.get("start_date"), str):
            text = item["start_date"].split(".")[0].removesuffix("Z")
            try:
                stamp = datetime.datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")
            except ValueError:
                return None
            return int(stamp.replace(tzinfo=datetime.timezone.utc).timestamp())
    return None


class HydroshareProvider(RecordProvider):
    name = "hydroshare"
    prefix = "hydroshare"
    service = "HydroShare"
    content_provider = "Hydroshare"
    content_providers = ("Hydroshare",)

    @default("html_base_url")
    def _default_html(self):
        return "https://www.hydroshare.org"

    @default("api_base_url")
    def _default_api(self):
        return f"{self.html_base_url}/hsapi"

    @default("doi_prefixes")
    def _default_prefixes(self):
        return ["10.4211/hs."]

    def link_grammar(self):
        return LinkGrammar(self.prefix, "<resource id>", f"{self.prefix}/b8f6eae9d89241cf8b5904033460af61",
                           rf"^{self.prefix}/{RESOURCE_PART}/?$", self.service, {"resource id": 32})

    def parse_link(self, spec):
        if not RESOURCE.match(spec):
            raise self.link_error("the resource id must be 32 hexadecimal digits")
        return spec, f"{self.prefix}/{spec}", None

    def parse(self, repo):
        rest = after_prefix(repo, self.prefix)
        if rest is not None:
            resource = rest.rstrip("/")
        elif doi_of(repo) is not None:
            resource = self.known_doi(doi_of(repo))
            if resource is None:
                return None
        else:
            path = path_on(repo, self.html_base_url)
            if path is None:
                return None
            found = re.fullmatch(r"/resource/([^/?]+)/?", path)
            if not found:
                raise invalid(repo, "it is not the address of a HydroShare resource", HINT)
            resource = found.group(1)
        if not RESOURCE.match(resource):
            raise invalid(repo, f"{resource!r} is not a HydroShare resource id", HINT)
        host = self.host_of(self.html_base_url)
        return self.record(f"{self.prefix}/{resource}", f"{self.html_base_url}/resource/{resource}",
                           f"{host}/resource/{resource}", f"HydroShare resource {resource}")

    async def lookup(self, source, credentials):
        resource = source.spec.split("/", 1)[1]
        meta = await self.api_json(f"{self.api_base_url}/resource/{resource}/scimeta/elements",
                                   credentials=credentials, not_found=self.missing(source))
        epoch = modified_epoch(meta if isinstance(meta, dict) else {})
        if epoch is None:
            raise LaunchError(f"HydroShare gave no modification date for {source.display_name}.",
                              field="repo", status=502)
        return f"{resource}.v{epoch}", f"resource modified {epoch}", source.fetch_url
