"""The builder interface: does an image exist, and build it."""

from dataclasses import dataclass, field

from traitlets.config import LoggingConfigurable

from binderspawner.providers import ResolvedRepo


@dataclass(frozen=True)
class BuildRequest:
    image: str
    resolved: ResolvedRepo
    labels: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)  # extra environment for the build process (hub marker, TMPDIR)
    # The launching member's TokenCredentials for a private repository's clone, or None. Only the
    # clone sees it (git's environment); never a label, a build argument or a log line.
    credentials: object = field(default=None, repr=False)


class Builder(LoggingConfigurable):
    """Turns (repository, version) into an image the backend can run."""

    async def image_exists(self, image):
        raise NotImplementedError

    async def build(self, request, emit):
        """Build ``request.image``; report progress with ``emit(phase, message)``.

        Raise BuildFailed with a message for the user when the build fails.
        """
        raise NotImplementedError
