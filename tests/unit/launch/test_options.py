"""Launch options as users send them: binderspawner/launch/options.py (pure, no I/O)."""

import subprocess
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from binderspawner.errors import LaunchError
from binderspawner.launch.options import (
    KNOWN_OPTIONS,
    MAX_REF_LENGTH,
    MAX_REPO_LENGTH,
    MAX_URLPATH_LENGTH,
    LaunchRequest,
    normalize_urlpath,
    parse_launch_options,
    validate_ref,
)

REPO = "https://example.org/org/repo.git"
SHELL_META = ";|&$`()<>"
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def launch_error(call, *args):
    with pytest.raises(LaunchError) as info:
        call(*args)
    return info.value


# valid input ------------------------------------------------------------------------------------


def test_repo_only_means_default_branch_and_default_page():
    assert parse_launch_options({"repo": REPO}) == LaunchRequest(repo=REPO, ref=None, urlpath="")


def test_all_options():
    request = parse_launch_options({"repo": REPO, "ref": "v1.2.3", "urlpath": "lab/tree/index.ipynb"})
    assert request == LaunchRequest(repo=REPO, ref="v1.2.3", urlpath="lab/tree/index.ipynb")


def test_surrounding_whitespace_is_stripped():
    request = parse_launch_options({"repo": f"  {REPO}\n", "ref": " main ", "urlpath": " lab "})
    assert request == LaunchRequest(repo=REPO, ref="main", urlpath="lab")


@pytest.mark.parametrize("empty", [None, "", "   "])
def test_empty_ref_and_urlpath_mean_the_defaults(empty):
    request = parse_launch_options({"repo": REPO, "ref": empty, "urlpath": empty})
    assert request.ref is None
    assert request.urlpath == ""


def test_values_at_the_length_limits_are_accepted():
    repo = "https://example.org/" + "a" * (MAX_REPO_LENGTH - len("https://example.org/"))
    ref = "r" * MAX_REF_LENGTH
    urlpath = "p" * MAX_URLPATH_LENGTH
    request = parse_launch_options({"repo": repo, "ref": ref, "urlpath": urlpath})
    assert (request.repo, request.ref, request.urlpath) == (repo, ref, urlpath)


@pytest.mark.parametrize("ref", [
    "main", "feature/new-plot", "release_2024", "v1.0", "v1.0+build.5", "user@host-branch",
    "a" * 7, "0123456789abcdef0123456789abcdef01234567", "HEAD", "3.x",
])
def test_valid_refs_are_returned_unchanged(ref):
    assert validate_ref(ref) == ref
    assert parse_launch_options({"repo": REPO, "ref": ref}).ref == ref


def test_no_ref_is_none():
    assert validate_ref(None) is None


@pytest.mark.parametrize("urlpath, expected", [
    ("lab/tree/index.ipynb", "lab/tree/index.ipynb"),
    ("/lab/tree/index.ipynb", "lab/tree/index.ipynb"),
    ("///tree", "tree"),
    ("voila/render/app.ipynb?voila-theme=dark", "voila/render/app.ipynb?voila-theme=dark"),
    ("lab/tree/my%20notebook.ipynb", "lab/tree/my%20notebook.ipynb"),
    ("lab/tree/notes..ipynb", "lab/tree/notes..ipynb"),
    ("lab/tree/.hidden/x.ipynb", "lab/tree/.hidden/x.ipynb"),
    ("rstudio/", "rstudio/"),
    ("", ""),
    (None, ""),
])
def test_valid_urlpaths(urlpath, expected):
    assert normalize_urlpath(urlpath) == expected


# bad options ------------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [None, "https://example.org/r.git", ["repo", REPO], 42,
                                     (("repo", REPO),)])
def test_options_must_be_an_object(options):
    error = launch_error(parse_launch_options, options)
    assert "JSON object" in str(error)
    assert error.status_code == 400


def test_unknown_option_is_named():
    error = launch_error(parse_launch_options, {"repo": REPO, "image": "evil/image:latest"})
    assert error.field == "image"
    assert "'image'" in str(error)
    for known in KNOWN_OPTIONS:
        assert known in str(error)


def test_several_unknown_options_are_all_named():
    error = launch_error(parse_launch_options, {"repo": REPO, "image": "x", "cmd": "sh", "env": "A=1"})
    for name in ("image", "cmd", "env"):
        assert repr(name) in str(error)
    assert error.field in ("image", "cmd", "env")


def test_mixed_type_keys_are_a_launch_error():
    # BUG (spec.py, parse_launch_options): sorted() over keys of different types raises TypeError.
    error = launch_error(parse_launch_options, {"repo": REPO, 1: "x", "image": "y"})
    assert "Unknown server option" in str(error)


@pytest.mark.parametrize("options", [{}, {"repo": None}, {"repo": ""}, {"repo": "   "}, {"ref": "main"}])
def test_missing_repo(options):
    error = launch_error(parse_launch_options, options)
    assert error.field == "repo"
    assert "No repository given" in str(error)


@pytest.mark.parametrize("key", KNOWN_OPTIONS)
@pytest.mark.parametrize("value, type_name", [(1, "int"), (["a"], "list"), ({"a": 1}, "dict"),
                                              (True, "bool"), (b"main", "bytes")])
def test_non_string_values(key, value, type_name):
    options = {"repo": REPO, key: value}
    error = launch_error(parse_launch_options, options)
    assert error.field == key
    assert f"'{key}' must be a string" in str(error)
    assert type_name in str(error)


@pytest.mark.parametrize("key, limit", [("repo", MAX_REPO_LENGTH), ("ref", MAX_REF_LENGTH),
                                        ("urlpath", MAX_URLPATH_LENGTH)])
def test_too_long_values(key, limit):
    options = {"repo": REPO, key: "a" * (limit + 1)}
    error = launch_error(parse_launch_options, options)
    assert error.field == key
    assert f"{limit + 1} characters long" in str(error)
    assert f"at most {limit}" in str(error)


@pytest.mark.parametrize("repo", ["https://example.org/a b.git", "https://example.org/a\tb.git",
                                  "https://example.org/a\x00b.git", "https://example.org/a\x7fb.git"])
def test_repo_with_spaces_or_control_characters(repo):
    error = launch_error(parse_launch_options, {"repo": repo})
    assert error.field == "repo"
    assert "spaces or control characters" in str(error)


# refs: exactly what git accepts --------------------------------------------------------------


def git_accepts(ref):
    """git's own verdict on ``ref`` as a branch name (the oracle for validate_ref)."""
    if "\x00" in ref or ref.startswith("-") or ref == "@":
        return False  # cannot be an argument / '--branch' refuses / git's '@' alias for HEAD
    result = subprocess.run(["git", "check-ref-format", f"refs/heads/{ref}"], capture_output=True)
    return result.returncode == 0


@pytest.mark.parametrize("ref", ["issue#7147", "a,b", "wow!", "x=y", "café", "ветка", "分支/功能",
                                 "$(id)", "main;x", "a|b", "it's", 'say"hi"', "{x}", "100%", "v1.0",
                                 "feature/foo-bar_baz+1", "HEAD", "a@b", "@x", "0123abc"])
def test_refs_git_accepts_are_accepted_as_given(ref):
    assert git_accepts(ref) or ref == "HEAD"
    assert validate_ref(ref) == ref
    assert parse_launch_options({"repo": REPO, "ref": ref}).ref == ref


@pytest.mark.parametrize("ref, reason", [
    ("main rm", "a space"), ("main\tx", "a control character"), ("main\nx", "a control character"),
    ("main\x00x", "a control character"), ("a\\b", "'\\\\'"), ("a*b", "'*'"), ("a?b", "'?'"),
    ("a[b", "'['"), ("a~1", "'~'"), ("a^2", "'^'"), ("a:b", "':'"),
    ("-main", "starts with '-'"), ("--upload-pack=touch /tmp/x", "starts with '-'"), ("-", "starts with '-'"),
    ("main..other", "'..'"), ("a/../b", "'..'"), ("main@{1}", "'@{'"), ("@{-1}", "'@{'"), ("@", "'@'"),
    ("a//b", "'//'"), ("main/", "'/'"), ("/main", "'/'"), ("main.", "ends with '.'"),
    (".hidden", "starts with '.'"), ("a/.hidden", "starts with '.'"), ("main.lock", "'.lock'"),
    ("x.lock/y", "'.lock'"),
])
def test_refs_git_refuses_are_refused_with_its_reason(ref, reason):
    assert not git_accepts(ref)
    error = launch_error(validate_ref, ref)
    assert error.field == "ref"
    assert reason in str(error) and repr(ref) in str(error)
    assert "branch name, a tag or a commit sha" in str(error)
    error = launch_error(parse_launch_options, {"repo": REPO, "ref": ref.strip() or "x y"})
    assert error.field == "ref"


# bad urlpaths -----------------------------------------------------------------------------------


@pytest.mark.parametrize("urlpath", ["../hub/admin", "lab/../../hub/admin", "lab/tree/..", "./lab", "lab/./x",
                                     "lab/..?x=1"])
def test_urlpath_with_dot_segments(urlpath):
    error = launch_error(normalize_urlpath, urlpath)
    assert error.field == "urlpath"
    assert "'.' or '..' segments" in str(error)


@pytest.mark.parametrize("urlpath", ["%2e%2e/%2e%2e/hub/admin", "lab/%2E%2E/%2e%2E/hub/token",
                                     "lab/.%2e/.%2e/hub", "lab/%2e./x"])
def test_urlpath_with_percent_encoded_dot_segments(urlpath):
    # BUG (spec.py, normalize_urlpath): browsers treat '%2e%2e', '.%2e' and '%2e.' as '..' when they
    # resolve the redirect to default_url, so these leave the user's server just like '../'.
    error = launch_error(normalize_urlpath, urlpath)
    assert error.field == "urlpath"


@pytest.mark.parametrize("urlpath", ["..#", ".#top", "lab/..#x", "..?x#y"])
def test_urlpath_with_dot_segment_before_a_fragment(urlpath):
    # BUG (spec.py, normalize_urlpath): only the part before '?' is checked, so a '..' ending the
    # path right before a '#' fragment passes ('/user/alice/..#' resolves to '/user/').
    error = launch_error(normalize_urlpath, urlpath)
    assert error.field == "urlpath"


@pytest.mark.parametrize("urlpath", ["https://evil.example/x", "lab/https://evil.example", "javascript://x"])
def test_urlpath_that_is_a_url(urlpath):
    error = launch_error(normalize_urlpath, urlpath)
    assert error.field == "urlpath"
    assert "not a URL" in str(error)


@pytest.mark.parametrize("urlpath", ["lab\\tree", "\\\\evil.example\\share", "lab\ttree", "lab\x00",
                                     "lab\r\nSet-Cookie: x=y", "lab\x7f", "lab/%0d%0aSet-Cookie:x",
                                     "lab/%00"])
def test_urlpath_with_backslash_or_control_characters(urlpath):
    error = launch_error(normalize_urlpath, urlpath)
    assert error.field == "urlpath"
    assert "control characters" in str(error) or "backslash" in str(error)


@pytest.mark.parametrize("urlpath, expected", [
    ("lab/tree/Tutorials/Signals - Sampling.ipynb", "lab/tree/Tutorials/Signals%20-%20Sampling.ipynb"),
    ("lab/tree/Tutorials/Signals%20-%20Sampling.ipynb", "lab/tree/Tutorials/Signals%20-%20Sampling.ipynb"),
    ("lab/tree/Données/é.ipynb", "lab/tree/Donn%C3%A9es/%C3%A9.ipynb"),
    ("lab/tree/100%.ipynb", "lab/tree/100%25.ipynb"),
    ("lab/<script>", "lab/%3Cscript%3E"), ('lab/"x"', "lab/%22x%22"), ("lab/a|b", "lab/a%7Cb"),
])
def test_urlpath_with_spaces_and_non_ascii_is_percent_encoded(urlpath, expected):
    assert normalize_urlpath(urlpath) == expected
    assert parse_launch_options({"repo": REPO, "urlpath": urlpath}).urlpath == expected


@pytest.mark.parametrize("urlpath", ["%2F%2Fevil.example/x", "lab/https%3A%2F%2Fevil.example"])
def test_urlpath_escaped_to_look_like_a_url(urlpath):
    error = launch_error(normalize_urlpath, urlpath)
    assert "not a URL" in str(error)


def test_bad_urlpath_through_launch_options():
    error = launch_error(parse_launch_options, {"repo": REPO, "urlpath": "../../hub/admin"})
    assert error.field == "urlpath"
    assert "../../hub/admin" in str(error)


# properties -------------------------------------------------------------------------------------

values = st.one_of(st.none(), st.text(), st.text(alphabet="-./@{}:;|&$`()<> \\%2e", max_size=20),
                   st.integers(), st.booleans(), st.lists(st.text(), max_size=2), st.binary(max_size=5))
string_keys = st.one_of(st.sampled_from(KNOWN_OPTIONS), st.text(max_size=8))


def _check_outcome(options):
    try:
        request = parse_launch_options(options)
    except LaunchError as error:
        assert str(error)
        assert error.field is None or error.field in options or error.field in KNOWN_OPTIONS
        return
    assert isinstance(request, LaunchRequest)
    assert request.repo and request.repo == request.repo.strip()


@FAST
@given(st.dictionaries(string_keys, values, max_size=4))
@example({"repo": REPO, "ref": "-x"})
def test_any_string_keyed_options_parse_or_raise_launch_error(options):
    _check_outcome(options)


@FAST
@given(st.one_of(st.dictionaries(st.one_of(string_keys, st.integers(), st.none()), values, max_size=4),
                 st.text(), st.integers(), st.none(), st.lists(st.text(), max_size=3)))
@example({0: None, "": None})
def test_any_options_parse_or_raise_launch_error(options):
    _check_outcome(options)


ref_text = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40),
    st.text(alphabet="abc019_-./+@{}#,!=é" + SHELL_META + " \t\\'\"*?[~^:", max_size=20),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ref_text)
@example("-x")
@example("a/.b")
@example("x.lock")
@example("issue#7147")
def test_refs_are_accepted_exactly_when_git_accepts_them(ref):
    try:
        accepted = validate_ref(ref)
    except LaunchError as error:
        assert error.field == "ref"
        assert ref == "HEAD" or not git_accepts(ref)
        return
    assert accepted == ref
    assert ref == "HEAD" or git_accepts(ref), f"git refuses {ref!r}"
    assert not accepted.startswith("-")


@FAST
@given(st.one_of(st.text(max_size=40), st.text(alphabet="ab/.?#%2eE:\\ \x00", max_size=20)))
@example("lab/tree/index.ipynb")
@example("..#")
@example("%2e%2e/hub")
def test_accepted_urlpaths_stay_inside_the_server(urlpath):
    try:
        path = normalize_urlpath(urlpath)
    except LaunchError as error:
        assert error.field == "urlpath"
        return
    assert not path.startswith("/")
    assert "://" not in unquote(path) and "\\" not in path and not unquote(path).startswith("/")
    assert path.isascii() and not any(ord(c) <= 0x20 or ord(c) == 0x7F for c in path)
    segments = [unquote(s) for s in path.split("?")[0].split("#")[0].split("/")]
    assert ".." not in segments and "." not in segments
