"""Turning (repository, version) into an image."""

from binderspawner.builders.base import Builder, BuildRequest
from binderspawner.builders.queue import Build, BuildEvent, BuildQueue
from binderspawner.builders.repo2docker import Repo2DockerBuilder

__all__ = ["Build", "BuildEvent", "BuildQueue", "BuildRequest", "Builder", "Repo2DockerBuilder"]
