"""A build may use no image of this hub but its base: every way a Dockerfile names an image."""

import pytest

from binderspawner.builders.imagefence import DockerfileRefused, check_images, referenced_images

HUB = "hub-123"
LOCAL = {"binder-abc:1": {"binderspawner.hub": HUB}, "binderspawner-base:bookworm": {},
         "other-hub:1": {"binderspawner.hub": "hub-999"}, "sha256:feed": {"binderspawner.hub": HUB}}


def verdict(dockerfile):
    check_images(referenced_images(dockerfile), LOCAL.get, HUB, {"binderspawner-base:bookworm"})


@pytest.mark.parametrize("dockerfile", [
    "FROM binder-abc:1\n",
    "from   binder-abc:1 AS x\n",
    "FROM --platform=linux/amd64 binder-abc:1\n",
    "FROM \\\n  binder-abc:1\n",
    "FROM sha256:feed\n",
    "FROM other-hub:1\n",  # another hub's launches on the same engine are as private
    "FROM binderspawner-base:bookworm\nCOPY --from=binder-abc:1 /home /x\n",
    "FROM binderspawner-base:bookworm\nRUN --mount=type=bind,from=binder-abc:1,target=/m cat /m/x\n",
    "FROM binderspawner-base:bookworm\nRUN --mount=from=binder-abc:1,target=/m true\n",
    "FROM binderspawner-base:bookworm\nONBUILD COPY --from=binder-abc:1 /a /b\n",
    "# escape=`\nFROM binderspawner-base:bookworm\nCOPY `\n  --from=binder-abc:1 /a /b\n",
])
def test_this_hubs_images_are_refused(dockerfile):
    with pytest.raises(DockerfileRefused, match="binder-abc:1|sha256:feed|other-hub:1"):
        verdict(dockerfile)


@pytest.mark.parametrize("dockerfile, words", [
    ("ARG IMG=binder-abc:1\nFROM $IMG\n", "variable"),
    ("ARG T=1\nFROM binder-abc:${T}\n", "variable"),
    ("FROM binderspawner-base:bookworm\nARG S=binder-abc:1\nCOPY --from=${S} /a /b\n", "variable"),
    ("# syntax=docker/dockerfile:1\nFROM binderspawner-base:bookworm\n", "frontend"),
    ("#syntax = evil/frontend\nFROM binderspawner-base:bookworm\n", "frontend"),
    ("# SYNTAX=evil/frontend\nFROM binderspawner-base:bookworm\n", "frontend"),
])
def test_what_cannot_be_checked_is_refused(dockerfile, words):
    with pytest.raises(DockerfileRefused, match=words):
        verdict(dockerfile)


@pytest.mark.parametrize("dockerfile", [
    "FROM binderspawner-base:bookworm\nRUN true\n",
    "FROM binderspawner-base:bookworm AS build\nRUN true\nFROM build\nCOPY --from=build /a /b\n",
    "FROM binderspawner-base:bookworm\nFROM binderspawner-base:bookworm\nCOPY --from=0 /a /b\n",
    "FROM python:3.11-slim\n",  # not this hub's: an ordinary (pulled) image
    "# a comment\nFROM binderspawner-base:bookworm\n# syntax=late is just a comment\n",
    "FROM binderspawner-base:bookworm\nRUN echo FROM binder-abc:1\n",
])
def test_ordinary_dockerfiles_build(dockerfile):
    verdict(dockerfile)
