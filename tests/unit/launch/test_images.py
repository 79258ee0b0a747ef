"""Image names from (prefix, slug, version): binderspawner/launch/images.py (pure)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binderspawner.errors import LaunchError
from binderspawner.launch.images import MAX_NAME_LENGTH, REFERENCE, image_reference, validate_prefix

SHA = "0123456789abcdef0123456789abcdef01234567"
SLUG = "git.example.org/org/repo"
FAST = settings(max_examples=200, deadline=None)


def split(reference):
    name, _, tag = reference.rpartition(":")
    return name, tag


def assert_valid(reference):
    assert REFERENCE.match(reference), reference
    name, tag = split(reference)
    assert len(name) <= MAX_NAME_LENGTH
    assert 1 <= len(tag) <= 128
    return name, tag


def test_reference_is_deterministic():
    assert image_reference("binder-", SLUG, SHA) == image_reference("binder-", SLUG, SHA)


def test_reference_shape():
    reference = image_reference("binder-", SLUG, SHA)
    name, tag = assert_valid(reference)
    assert tag == SHA
    assert name.startswith("binder-git-example-org-org-repo-")
    assert name == name.lower()


def test_new_version_new_tag_same_name():
    first = image_reference("binder-", SLUG, SHA)
    second = image_reference("binder-", SLUG, "f" * 40)
    assert split(first)[0] == split(second)[0]
    assert split(first)[1] != split(second)[1]


@pytest.mark.parametrize("a, b", [
    ("org/my.repo", "org/my-repo"),
    ("A/B", "a/b"),
    ("host/org/repo", "host/org_repo"),
    ("host/Org/Repo", "host/org/repo"),
    ("x" * 200 + "a", "x" * 200 + "b"),  # differ only after the escaped part is cut
])
def test_slugs_that_escape_alike_get_different_names(a, b):
    ref_a, ref_b = image_reference("binder-", a, SHA), image_reference("binder-", b, SHA)
    assert_valid(ref_a)
    assert_valid(ref_b)
    assert split(ref_a)[0] != split(ref_b)[0]


@pytest.mark.parametrize("slug", ["", "---", "///", "ÄÖÜ", "日本語/リポ", "..", "_"])
def test_slugs_with_nothing_usable_still_name_an_image(slug):
    assert_valid(image_reference("binder-", slug, SHA))


def test_long_slug_is_cut_but_valid():
    reference = image_reference("binder-", "host/" + "a" * 1000, SHA)
    name, _ = assert_valid(reference)
    assert len(name) < 100


@pytest.mark.parametrize("version", ["v1.0", "ABC_def-1.2", "a" * 128, SHA])
def test_versions_that_are_valid_tags_are_used_as_they_are(version):
    assert split(image_reference("binder-", SLUG, version))[1] == version


@pytest.mark.parametrize("version", ["-v1", ".hidden", "a" * 129, "10.5281/zenodo.123", "v1 beta", "ünï",
                                     ""])
def test_other_versions_become_a_stable_valid_tag(version):
    reference = image_reference("binder-", SLUG, version)
    _, tag = assert_valid(reference)
    assert tag != version
    assert reference == image_reference("binder-", SLUG, version)
    assert tag != split(image_reference("binder-", SLUG, version + "x"))[1]


@pytest.mark.parametrize("prefix", [
    "", "binder-", "binder_", "binder.", "binder", "binder/", "lab/binder-",
    "registry.example.org:5000/binder/", "localhost:5000/", "127.0.0.1:5000/lab/", "Registry.Example.org/x/",
])
def test_good_prefixes(prefix):
    assert validate_prefix(prefix) == prefix
    reference = image_reference(prefix, SLUG, SHA)
    assert reference.startswith(prefix)
    assert_valid(reference)


def test_registry_with_port_prefix():
    reference = image_reference("registry.example.org:5000/binder/", SLUG, SHA)
    assert reference.startswith("registry.example.org:5000/binder/git-example-org-org-repo-")
    assert reference.endswith(f":{SHA}")
    assert_valid(reference)


@pytest.mark.parametrize("prefix", [
    "Binder-", "binder--", "-binder", "binder:", "binder prefix", "registry:5000", "reg istry/",
    "binder//", "/binder", "binder-/", "a" * 121, "bínder-", "binder@", "https://registry/",
])
def test_bad_prefix_is_a_clear_value_error(prefix):
    with pytest.raises(ValueError) as info:
        validate_prefix(prefix)
    message = str(info.value)
    assert repr(prefix) in message
    assert "cannot start a Docker image name" in message
    assert "registry.example.org:5000/binder/" in message  # an example of what works
    with pytest.raises(ValueError):
        image_reference(prefix, SLUG, SHA)


def test_reference_grammar_rejects_what_docker_rejects():
    # REFERENCE is the oracle of the property tests below; make sure it can say no.
    for bad in ["upper/Case:tag", "name", "name:", "name:-tag", "na--me_:t", "a//b:t", "a:" + "t" * 129,
                "-a:t", "a/:t"]:
        assert not REFERENCE.match(bad), bad
    for good in ["a:t", "a_b:t", "a__b:t", "a---b:t", "host:5000/a/b:t", "a.b/c:T_1.0-x"]:
        assert REFERENCE.match(good), good


prefixes = st.sampled_from(["", "binder-", "binder.", "binder_", "lab/", "registry.example.org:5000/binder/",
                            "localhost:5000/b-"])


@FAST
@given(prefixes, st.text(min_size=1), st.text())
def test_any_slug_and_version_give_a_valid_reference(prefix, slug, version):
    reference = image_reference(prefix, slug, version)
    assert reference.startswith(prefix)
    assert_valid(reference)
    assert reference == image_reference(prefix, slug, version)


@FAST
@given(st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=30))
def test_different_slugs_different_names(a, b):
    if a == b:
        return
    assert split(image_reference("binder-", a, SHA))[0] != split(image_reference("binder-", b, SHA))[0]


@FAST
@given(st.text(alphabet="abcAZ09.-_:/@ ", max_size=30))
def test_validate_prefix_accepts_only_what_makes_valid_references(prefix):
    try:
        validate_prefix(prefix)
    except ValueError:
        return
    assert_valid(image_reference(prefix, SLUG, SHA))


def test_never_a_launch_error_for_sensible_input():
    # LaunchError is the user-facing failure; for slugs that providers produce it must not happen.
    for slug in ["github.com/jupyterhub/binderhub", "127.0.0.1:9418/requirements", "[::1]/x",
                 "zenodo/10.5281/1"]:
        try:
            assert_valid(image_reference("binder-", slug, SHA))
        except LaunchError as e:  # pragma: no cover - reported as the failure
            pytest.fail(f"{slug!r}: {e}")
