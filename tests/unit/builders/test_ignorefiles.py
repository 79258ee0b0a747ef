""".dockerignore patterns matched in linear time (builders/ignorefiles.py), exactly as docker-py
means them, so a repository's ignore file cannot stall the hub (the content layer matches it on
the hub's event loop)."""

import os
import re
import subprocess
import sys

import pytest
from docker.utils import build as docker_build
from docker.utils import fnmatch as docker_fnmatch
from hypothesis import given, settings
from hypothesis import strategies as st

from binderspawner.builders import ignorefiles

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

patterns = st.text(alphabet="aB/*?.[]!^-\\\n", max_size=10)
names = st.text(alphabet="ab/.-\n[", max_size=10)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # docker-py's regex for '[[' and the like
@settings(max_examples=3000, deadline=None)
@given(patterns, names)
def test_patterns_mean_what_they_mean_to_docker_py(pattern, name):
    try:
        expected = docker_fnmatch.fnmatch(name, pattern)
    except re.error:
        with pytest.raises(re.error):
            ignorefiles.glob_match(pattern, name)
        return
    assert ignorefiles.glob_match(pattern, name) == expected


@pytest.mark.parametrize("pattern, name, expected", [
    ("**/*.pyc", "a/b/c.pyc", True), ("**/*.pyc", "c.pyc", True), ("*.pyc", "a/c.pyc", False),
    ("data/**/*.csv", "data/x/y/z.csv", True), ("data/**", "data/x/y", True), ("[!a]x", "bx", True),
    ("[!a]x", "ax", False), ("?", "/", False), ("a*", "A/B", False), ("NoteBooks", "notebooks", True),
])
def test_common_patterns(pattern, name, expected):
    assert ignorefiles.glob_match(pattern, name) is expected


def _archive_names_within(seconds, root):
    """The names in contentlayer.content_archive(root), made in a child process that is killed
    when it has not answered after ``seconds``: a backtracking regex holds the GIL (as it held the
    hub's event loop) for hours here, and this matcher answers at once."""
    code = ("import sys, io, tarfile; from binderspawner.builders import contentlayer as c; "
            "data = c.content_archive(sys.argv[1], c.ignore_patterns(sys.argv[1], ''), 1000); "
            "print('\\n'.join(sorted(tarfile.open(fileobj=io.BytesIO(data)).getnames())))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
    try:
        done = subprocess.run([sys.executable, "-c", code, root], capture_output=True, text=True, env=env,
                              timeout=seconds, check=True)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the content layer was still matching .dockerignore after {seconds} s")
    return set(done.stdout.split("\n")) - {""}


def test_a_hostile_ignore_file_does_not_stall_the_content_layer(tmp_path):
    """A 40-byte .dockerignore line and one long file name: docker-py's regex backtracks for hours
    (38 s at 12 stars and 40 a's, about ten times more per further star); here the answer is
    the same as docker-py's for the other files and comes at once."""
    hostile = "a*" * 20 + "b"
    (tmp_path / ("a" * 120)).write_text("x")
    (tmp_path / "ab").write_text("x")
    (tmp_path / "notes.ipynb").write_text("{}")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "keep.txt").write_text("x")
    (tmp_path / ".dockerignore").write_text(hostile + "\nsub\n!sub/keep.txt\n")
    assert _archive_names_within(120, str(tmp_path)) == {
        "a" * 120, "ab", "notes.ipynb", os.path.join("sub", "keep.txt"), ".dockerignore"}
    small = ["ab*", "sub", "!sub/keep.txt"]  # docker-py agrees where it answers quickly
    assert ignorefiles.exclude_paths(str(tmp_path), list(small)) == docker_build.exclude_paths(str(tmp_path), small)
