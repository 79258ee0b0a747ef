"""Image references for built repositories (pure).

An image is named from the repository's stable slug and its immutable version, so the same commit
always maps to the same image and a new commit to a new one. The slug is escaped for Docker and a
short hash of the unescaped source keeps apart repositories whose names escape alike
(``org/my.repo`` and ``org/my-repo``).
"""

import hashlib
import re

from binderspawner.errors import LaunchError

# Docker's reference grammar (distribution/reference), restated for what we generate.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?/)"
REFERENCE = re.compile(rf"^{_HOST}?{_COMPONENT}(?:/{_COMPONENT})*:[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}$")
_PREFIX = re.compile(rf"^{_HOST}?(?:{_COMPONENT}/)*(?:[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*[._-]?)?$")

MAX_NAME_LENGTH = 255
SLUG_LENGTH = 60


def validate_prefix(prefix):
    """Admins set the prefix; say clearly when it cannot start a Docker image name."""
    if not _PREFIX.match(prefix) or len(prefix) > 120:
        raise ValueError(
            f"image_prefix {prefix!r} cannot start a Docker image name. Use lowercase letters, "
            "digits and . _ - with an optional registry and namespace, e.g. 'binder-' or "
            "'registry.example.org:5000/binder/'."
        )
    return prefix


def _escape(slug):
    escaped = re.sub(r"[^a-z0-9]+", "-", slug.lower()).strip("-")
    return escaped[:SLUG_LENGTH].strip("-") or "repo"


def image_reference(prefix, slug, version):
    """(prefix, provider slug, version) -> 'prefix<escaped-slug>-<hash8>:<tag>'."""
    digest = hashlib.sha256(slug.encode("utf-8")).hexdigest()[:8]
    name = f"{validate_prefix(prefix)}{_escape(slug)}-{digest}"
    tag = version if re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", version) else (
        hashlib.sha256(version.encode("utf-8")).hexdigest()
    )
    reference = f"{name}:{tag}"
    if len(name) > MAX_NAME_LENGTH or not REFERENCE.match(reference):
        raise LaunchError(f"Could not derive a valid image name from {slug!r}.")
    return reference


ENVIRONMENT_TAG_PREFIX = "env-"


def environment_reference(image, key):
    """The environment image for a launch ``image`` whose environment has ``key`` (a hex digest):
    the same repository name (so it goes to the same registry, under the same cleanup rules),
    tagged 'env-<key>', a tag no commit (hex) or ref produces."""
    name = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    if not re.fullmatch(r"[0-9a-f]{16,64}", key):
        raise ValueError(f"environment key {key!r} is not a hex digest")
    reference = f"{name}:{ENVIRONMENT_TAG_PREFIX}{key[:64]}"
    if not REFERENCE.match(reference):
        raise LaunchError(f"Could not derive a valid environment image name from {image!r}.")
    return reference
