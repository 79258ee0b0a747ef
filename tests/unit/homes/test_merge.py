"""The per-file three-way decision (a table of every case), and merge.py on real directories."""

import json
import os
import subprocess
import sys

import pytest

from binderspawner.homes import merge
from binderspawner.homes.merge import BESIDE, DELETE, KEEP, KEEP_DELETED_UPSTREAM, TAKE, decide

# base (last merged commit), ours (the member's home), theirs (the new commit); None: no such file
CASES = [
    ("x", "x", "x", KEEP),  # untouched everywhere
    ("x", "x", "y", TAKE),  # only the commit changed it
    ("x", "y", "x", KEEP),  # only the member changed it
    ("x", "y", "y", KEEP),  # both changed it the same way
    ("x", "y", "z", BESIDE),  # both changed it differently: conflict
    ("x", "x", None, DELETE),  # the commit removed a file the member never changed
    ("x", "y", None, KEEP_DELETED_UPSTREAM),  # the commit removed a file the member changed: conflict
    ("x", None, "x", KEEP),  # the member removed it; the commit did not change it
    ("x", None, "y", BESIDE),  # the member removed it; the commit changed it: conflict, not resurrected
    ("x", None, None, KEEP),  # removed on both sides
    (None, None, "y", TAKE),  # a new file of the commit
    (None, "y", "y", KEEP),  # the member made the same file
    (None, "y", "z", BESIDE),  # the member's own file has the name of a new one: conflict
    (None, "y", None, KEEP),  # the member's own file
    (None, None, None, KEEP),
]


@pytest.mark.parametrize("base, ours, theirs, action", CASES)
def test_decide(base, ours, theirs, action):
    assert decide(base, ours, theirs) == action


def test_the_member_s_changed_file_is_never_replaced_or_removed():
    for base in ("x", None):
        for theirs in ("x", "z", None):
            action = decide(base, "y", theirs)
            assert action in (KEEP, BESIDE, KEEP_DELETED_UPSTREAM), (base, theirs, action)


@pytest.mark.parametrize("path, beside", [
    ("index.ipynb", "index.abc1234.ipynb"),
    ("a/b/data.tar.gz", "a/b/data.tar.abc1234.gz"),
    (".bashrc", ".bashrc.abc1234"),
    ("Makefile", "Makefile.abc1234"),
])
def test_beside_names(path, beside):
    assert merge.beside_name(path, "abc1234") == beside


def write(root, files):
    for path, content in files.items():
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(content)


def read(root, path):
    try:
        with open(os.path.join(root, path)) as f:
            return f.read()
    except FileNotFoundError:
        return None


def test_merge_on_directories(tmp_path):
    """A home filled from commit 1 and edited, then merged with commit 2 (as the helper does)."""
    first, second, home = tmp_path / "c1", tmp_path / "c2", tmp_path / "home"
    write(first, {"nb.ipynb": "v1", "notes.txt": "v1", "gone.txt": "v1", "edited-gone.txt": "v1",
                  "sub/keep.txt": "v1"})
    write(home, {"nb.ipynb": "v1", "notes.txt": "v1", "gone.txt": "v1", "edited-gone.txt": "v1",
                 "sub/keep.txt": "v1"})
    assert merge.merge(str(home), str(home), "1" * 40)["initial"]  # a new home records its base
    write(home, {"nb.ipynb": "mine", "edited-gone.txt": "mine", "mywork.txt": "mine", "new.txt": "my own"})
    write(second, {"nb.ipynb": "v2", "notes.txt": "v2", "sub/keep.txt": "v1", "new.txt": "theirs",
                   "added/deep.txt": "v2"})
    summary = merge.merge(str(home), str(second), "2" * 40)
    assert read(home, "nb.ipynb") == "mine" and read(home, "nb.2222222.ipynb") == "v2"
    assert read(home, "notes.txt") == "v2" and read(home, "added/deep.txt") == "v2"
    assert read(home, "gone.txt") is None and read(home, "edited-gone.txt") == "mine"
    assert read(home, "mywork.txt") == "mine"
    assert read(home, "new.txt") == "my own" and read(home, "new.2222222.txt") == "theirs"
    note = read(home, "BINDER-MERGE-2222222.md")
    assert "nb.2222222.ipynb" in note and "edited-gone.txt" in note and "new.2222222.txt" in note
    assert {c["path"] for c in summary["conflicts"]} == {"nb.ipynb", "edited-gone.txt", "new.txt"}
    assert (summary["taken"], summary["deleted"]) == (2, 1)
    # the same commit again does nothing
    assert merge.merge(str(home), str(second), "2" * 40) == {
        "commit": "2" * 40, "base": "2" * 40, "taken": 0, "deleted": 0, "conflicts": [], "skipped": [],
        "unchanged": True}


def test_a_link_in_the_home_never_sends_a_write_elsewhere(tmp_path):
    theirs, home, outside = tmp_path / "theirs", tmp_path / "home", tmp_path / "outside"
    write(theirs, {"sub/file.txt": "theirs"})
    os.makedirs(home)
    os.makedirs(outside)
    os.symlink(outside, home / "sub")
    summary = merge.merge(str(home), str(theirs), "3" * 40)
    assert os.listdir(outside) == [] and summary["skipped"] == ["sub/file.txt (a folder on its way is a link)"]


def test_a_folder_where_the_commit_has_a_file_is_left_and_reported(tmp_path):
    theirs, home = tmp_path / "theirs", tmp_path / "home"
    write(theirs, {"thing": "a file"})
    write(home, {"thing/inside.txt": "mine"})
    summary = merge.merge(str(home), str(theirs), "4" * 40)
    assert read(home, "thing/inside.txt") == "mine" and summary["skipped"][0].startswith("thing")


def test_the_script_runs_alone_with_python_isolated(tmp_path):
    """As the helper runs it: its source through 'python3 -I -c', no binderspawner importable."""
    theirs, home = tmp_path / "theirs", tmp_path / "home"
    write(theirs, {"a.txt": "a"})
    os.makedirs(home)
    out = subprocess.run([sys.executable, "-I", "-c", open(merge.__file__).read(), "--ours", str(home),
                          "--theirs", str(theirs), "--commit", "5" * 40],
                         capture_output=True, text=True, check=True, cwd=tmp_path, env={}).stdout
    summary = json.loads(out.strip().splitlines()[-1][len(merge.MARKER):])
    assert summary["taken"] == 1 and read(home, "a.txt") == "a"
    assert json.load(open(home / ".binder-home" / "base.json"))["commit"] == "5" * 40


def _conflicting_home(tmp_path):
    """A home recorded at commit 1 whose nb.ipynb the member changed; commit 2 changes it too."""
    theirs, home = tmp_path / "theirs", tmp_path / "home"
    write(home, {"nb.ipynb": "v1"})
    assert merge.merge(str(home), str(home), "1" * 40)["initial"]
    write(home, {"nb.ipynb": "mine"})
    write(theirs, {"nb.ipynb": "v2"})
    return theirs, home


def test_the_note_never_overwrites_a_file_of_its_name(tmp_path):
    """The member's own file named like the note (e.g. the note of an earlier merge of this commit,
    annotated) stays; the new note gets the next free name."""
    theirs, home = _conflicting_home(tmp_path)
    write(home, {"BINDER-MERGE-2222222.md": "my comparison notes"})
    summary = merge.merge(str(home), str(theirs), "2" * 40)
    assert read(home, "BINDER-MERGE-2222222.md") == "my comparison notes"
    assert summary["note"] == "BINDER-MERGE-2222222-2.md" and "nb.2222222.ipynb" in read(home, summary["note"])


def test_the_note_is_never_written_through_a_link(tmp_path):
    """A link named like the note (a commit can ship one) does not send the note into the file it
    points at."""
    theirs, home = _conflicting_home(tmp_path)
    write(home, {"thesis.tex": "the member's thesis"})
    os.symlink("thesis.tex", home / "BINDER-MERGE-2222222.md")
    summary = merge.merge(str(home), str(theirs), "2" * 40)
    assert read(home, "thesis.tex") == "the member's thesis"
    assert summary["note"] == "BINDER-MERGE-2222222-2.md"


def test_the_bookkeeping_is_never_written_through_a_link(tmp_path):
    """A new home is a copy of the image's, so a commit can ship '.binder-home' or its temporary
    file as links: base.json is written into the home's own folder, not where they point."""
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    write(home, {"a.txt": "a", "data/results.csv": "the member's results"})
    os.makedirs(elsewhere)
    os.symlink(elsewhere, home / ".binder-home")
    assert merge.merge(str(home), str(home), "1" * 40)["initial"]
    assert os.listdir(elsewhere) == [] and not os.path.islink(home / ".binder-home")
    assert json.load(open(home / ".binder-home" / "base.json"))["commit"] == "1" * 40
    os.symlink("../data/results.csv", home / ".binder-home" / "base.json.tmp")
    merge.merge(str(home), str(home), "6" * 40)
    assert read(home, "data/results.csv") == "the member's results"
    assert json.load(open(home / ".binder-home" / "base.json"))["commit"] == "6" * 40
