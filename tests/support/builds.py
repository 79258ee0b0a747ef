"""Running one build through a builder in a test: its (phase, message) events and its failure."""

from binderspawner.errors import BuildFailed


async def build_events(builder, request):
    """``builder.build(request)`` -> (events, the BuildFailed it raised or None)."""
    events = []
    try:
        await builder.build(request, lambda phase, message, *rest: events.append((phase, message)))
    except BuildFailed as error:
        return events, error
    return events, None


def local_builder(**settings):
    """A Repo2DockerBuilder as the hub configures it for the tests' git server on loopback, with
    ``settings`` as further Repo2DockerBuilder traits."""
    from traitlets.config import Config

    from binderspawner.builders import Repo2DockerBuilder

    config = Config()
    config.GitProvider.allowed_private_hosts = ["127.0.0.1"]
    for key, value in settings.items():
        setattr(config.Repo2DockerBuilder, key, value)
    return Repo2DockerBuilder(config=config)


def git_build_request(git_server, name, files, scratch, image_prefix):
    """A BuildRequest for a new repository ``name`` on ``git_server`` holding ``files``, built into
    ``<image_prefix>-<name>:<commit>`` with ``scratch`` as its TMPDIR."""
    from binderspawner.builders.base import BuildRequest
    from binderspawner.providers.base import RepoSource, ResolvedRepo

    sha = git_server.add_repo(name, files=files)
    url = git_server.url(name)
    source = RepoSource(provider="git", spec=url, fetch_url=url, slug=f"127.0.0.1/{name}", display_name=url)
    return BuildRequest(f"{image_prefix}-{name}:{sha}", ResolvedRepo(source, "main", sha, "branch main"),
                        {"binderspawner.commit": sha}, {"TMPDIR": str(scratch)})
