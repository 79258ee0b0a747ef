"""Turning (repository, version) into an image."""

from .base import Builder, BuildRequest
from .queue import Build, BuildEvent, BuildQueue
from .repo2docker import Repo2DockerBuilder

__all__ = ["Build", "BuildEvent", "BuildQueue", "BuildRequest", "Builder", "Repo2DockerBuilder"]
