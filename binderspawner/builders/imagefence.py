"""Which images a repository's Dockerfile may build on (pure), so a build cannot read another
launch's image of this hub (names are predictable) through the engine's local image store.

Every image a Dockerfile names is found here: ``FROM``, ``COPY --from=``, ``RUN --mount=...from=``.
A name built from an ARG or ENV (``$``) and a ``# syntax=`` frontend are refused outright: they
cannot be checked before the build. The remaining names are stages of the same Dockerfile (fine) or
images; the caller refuses images of this hub other than its allowed bases (see
repo2docker_config.py, which asks the engine for each image's labels).
"""

import csv
import re

DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9_-]*)\s*=\s*(.*?)\s*$")
_FROM_FLAG = re.compile(r"(?:^|\s)--from=(\S+)")
_MOUNT = re.compile(r"(?:^|\s)--mount=(\S+)")


class DockerfileRefused(ValueError):
    """The Dockerfile names something a build on this hub may not use; the message says what."""


def instructions(text):
    """[(instruction upper-cased, arguments)] with continuation lines joined (pure). Parser
    directives are returned as ('#DIRECTIVE', 'name=value')."""
    lines = text.splitlines()
    escape = "\\"
    result = []
    directives_done = False
    pending = ""
    for line in lines:
        stripped = line.strip()
        if not directives_done:
            found = DIRECTIVE.match(stripped)
            if found:
                name, value = found.group(1).lower(), found.group(2)
                result.append(("#DIRECTIVE", f"{name}={value}"))
                if name == "escape" and value in ("\\", "`"):
                    escape = value
                continue
            directives_done = True
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):  # comments inside a continued instruction
            continue
        if stripped.endswith(escape):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        if full:
            word, _, rest = full.partition(" ")
            result.append((word.upper(), rest.strip()))
    if pending.strip():
        word, _, rest = pending.strip().partition(" ")
        result.append((word.upper(), rest.strip()))
    return result


def referenced_images(text):
    """The image names a Dockerfile builds on or copies from, without its own stages (pure);
    DockerfileRefused for what cannot be checked before building."""
    stages, images = set(), []
    index = 0

    def named(ref, where):
        if "$" in ref:
            raise DockerfileRefused(f"{where} names an image through a variable ({ref!r}); this hub "
                                    "builds only from image names written out in the Dockerfile.")
        if ref.lower() in stages or (ref.isdigit() and int(ref) < index):
            return
        images.append(ref)

    for word, args in instructions(text):
        if word == "#DIRECTIVE":
            name = args.split("=", 1)[0]
            if name == "syntax":
                raise DockerfileRefused(f"the '# {args}' line asks for another Dockerfile frontend, "
                                        "which this hub does not run; remove it.")
            continue
        if word == "FROM":
            parts = [p for p in args.split() if not p.startswith("--")]
            if not parts:
                raise DockerfileRefused("a FROM line names no image.")
            named(parts[0], "a FROM line")
            if len(parts) >= 3 and parts[1].lower() == "as":
                stages.add(parts[2].lower())
            index += 1
        elif word in ("COPY", "ADD"):
            for ref in _FROM_FLAG.findall(args):
                named(ref.strip("'\""), f"{word} --from")
        elif word in ("RUN", "ONBUILD"):
            for mount in _MOUNT.findall(args):
                # BuildKit reads the options as one CSV record: a field may be quoted ("from=x")
                for option in next(csv.reader([mount.strip("'")]), []):
                    key, _, value = option.strip().strip("'\"").partition("=")
                    if key.strip().lower() == "from":
                        named(value.strip("'\""), "RUN --mount from=")
            if word == "ONBUILD":
                inner, _, rest = args.partition(" ")
                if inner.upper() in ("COPY", "ADD"):
                    for ref in _FROM_FLAG.findall(rest):
                        named(ref.strip("'\""), "ONBUILD COPY --from")
    return images


def check_images(images, labels_of, hub_id, allowed, label="binderspawner.hub"):
    """Refuse (DockerfileRefused) any image built by this hub, or by any binderspawner hub sharing
    the engine (by its label), that is not in ``allowed`` (pure given ``labels_of(name) -> dict |
    None``; None: no such local image)."""
    for ref in images:
        if ref in allowed:
            continue
        labels = labels_of(ref)
        if labels is not None and labels.get(label):
            raise DockerfileRefused(f"the Dockerfile builds on {ref!r}, an image this hub built for "
                                    "another launch; a build may use only public images and the "
                                    "hub's base image.")


def fenced_dockerfile_buildpack(base, settings):
    """repo2docker's Dockerfile buildpack (``base``), checking the repository's Dockerfile before
    building: no image of this hub (``settings['hub_id']``) other than ``settings['base_image']``."""
    import docker

    hub_id, allowed = settings.get("hub_id") or "", {settings.get("base_image") or ""} - {""}

    def labels_of(ref):
        try:
            image = docker.from_env(version="auto").api.inspect_image(ref)
        except docker.errors.NotFound:
            return None
        return (image.get("Config") or {}).get("Labels") or {}

    class FencedDockerBuildPack(base):
        def build(self, *args, **kwargs):
            with open(self.binder_path(self.dockerfile), encoding="utf-8", errors="replace") as f:
                text = f.read()
            try:
                check_images(referenced_images(text), labels_of, hub_id, allowed)
            except DockerfileRefused as e:
                raise RuntimeError(f"This hub does not build this Dockerfile: {e}") from None
            yield from super().build(*args, **kwargs)

    FencedDockerBuildPack.__name__ = base.__name__
    return FencedDockerBuildPack
