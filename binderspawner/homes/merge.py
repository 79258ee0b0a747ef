"""Merging a member's persistent home with a new commit's files, at server start.

Runs inside a short helper container (Docker) or init container (Kubernetes) made from the launch's
own image, with the image's ``python3 -I``, no network, no credentials and none of the member's
environment: the image's home holds the new commit's pristine files ("theirs"), the member's volume
is mounted elsewhere ("ours"), and the volume records the files of the commit it was last merged
with ("base", ``.binder-home/base.json``: path -> content hash). Standard library only, and no
import of binderspawner: the hub hands this file's source to ``python3 -c``.

Every file is decided on its own (``decide``, pure: a table of cases in the unit tests); the
member's files are never overwritten or removed unless they are exactly the base version. A file
both sides changed stays the member's, and the new version is written beside it as
``name.<short-sha>.ext`` and listed in a note file ``BINDER-MERGE-<short-sha>.md``.
The last line on stdout is ``binder-home-merge: {json summary}`` for the hub's progress page.
"""

import hashlib
import json
import os
import stat
import sys

STATE_DIR = ".binder-home"
BASE_FILE = STATE_DIR + "/base.json"
NOTE = "BINDER-MERGE-{short}.md"
MARKER = "binder-home-merge: "

# decisions -----------------------------------------------------------------------------------------
KEEP = "keep"  # nothing to do (unchanged, the member's own change, or the member's deletion)
TAKE = "take"  # the new version replaces a file the member never changed (or adds a new one)
DELETE = "delete"  # the commit removed a file the member never changed
BESIDE = "beside"  # conflict: the member's file stays, the new version goes beside it
KEEP_DELETED_UPSTREAM = "keep-deleted-upstream"  # conflict: the commit removed a file the member changed


def decide(base, ours, theirs):
    """The action for one path (pure). Each argument is the file's content hash in the last merged
    commit, in the member's home and in the new commit, or None where the file does not exist."""
    if ours == theirs:
        return KEEP  # the same on both sides (or gone on both)
    if ours == base:
        return DELETE if theirs is None else TAKE  # the member left it as it was
    if theirs == base:
        return KEEP  # only the member changed it (or removed it)
    # both changed it, differently
    if theirs is None:
        return KEEP_DELETED_UPSTREAM
    return BESIDE  # also: the member removed it and the commit changed it; a new file of the same name


def beside_name(path, short):
    """Where the new version of a conflicting ``path`` goes (pure): 'a/b.ipynb' -> 'a/b.<short>.ipynb'."""
    folder, name = os.path.split(path)
    stem, ext = os.path.splitext(name)  # '.bashrc' has no extension
    return os.path.join(folder, f"{stem}.{short}{ext}")


def plan(base, ours, theirs):
    """{path: action} for every path in the base or the new commit (pure; dicts path -> hash)."""
    return {path: decide(base.get(path), ours.get(path), theirs.get(path))
            for path in sorted(set(base) | set(theirs))}


def note_text(commit, conflicts):
    """The note file listing the conflicts of one merge (pure)."""
    lines = [f"# Your home and commit {commit[:12]}", "",
             "These files changed both in your home and in the repository's new commit. Your",
             "version was kept; nothing of yours was overwritten.", ""]
    for path, action, beside in conflicts:
        if action == BESIDE and beside:
            lines.append(f"- `{path}`: kept yours; the commit's version is `{beside}`")
        elif action == BESIDE:
            lines.append(f"- `{path}`: kept yours; the commit's version could not be written beside it")
        else:
            lines.append(f"- `{path}`: kept yours; the commit removed this file")
    lines += ["", "Compare and merge them yourself, then delete this note."]
    return "\n".join(lines) + "\n"


# I/O -----------------------------------------------------------------------------------------------

def file_hash(path):
    """'sha256:…' of a regular file, 'link:<target>' of a symlink, None for anything else or nothing."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISLNK(info.st_mode):
        return "link:" + os.readlink(path)
    if not stat.S_ISREG(info.st_mode):
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def scan(root, skip=(STATE_DIR,)):
    """{relative path: hash} of every file and link under ``root`` (links are not followed)."""
    found = {}
    for folder, dirs, files in os.walk(root):
        rel = os.path.relpath(folder, root)
        if rel == ".":
            dirs[:] = [d for d in dirs if d not in skip]
            rel = ""
        for name in files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            value = file_hash(os.path.join(folder, name))
            if value is not None:
                found[os.path.join(rel, name)] = value
    return found


def safe_parent(root, rel):
    """True when every folder on the way to ``rel`` under ``root`` is a real directory or missing
    (a link there could send a write elsewhere)."""
    path = root
    for part in rel.split(os.sep)[:-1]:
        path = os.path.join(path, part)
        try:
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                return False
        except FileNotFoundError:
            return True
    return True


def copy_into(src, dst):
    """Copy one file or link, atomically (a temporary name, then rename)."""
    os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    tmp = f"{dst}.binder-tmp-{os.getpid()}"
    if os.path.islink(src):
        os.symlink(os.readlink(src), tmp)
    else:
        with open(src, "rb") as f, open(tmp, "xb") as g:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                g.write(chunk)
        os.chmod(tmp, os.stat(src).st_mode & 0o777)
    os.replace(tmp, dst)


def read_base(ours_root):
    try:
        with open(os.path.join(ours_root, BASE_FILE)) as f:
            base = json.load(f)
        return str(base["commit"]), {str(k): str(v) for k, v in dict(base["files"]).items()}
    except (OSError, ValueError, KeyError, TypeError):
        return None, {}


def write_new(path, text):
    """Write ``text`` to a file that does not exist yet (never through a link, never over a file)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def write_note(ours_root, short, text):
    """The note under the first free name (``BINDER-MERGE-<short>.md``, then ``-2``, ...): a file or
    link of that name (the member's, or one a commit shipped) is never written over or through."""
    stem, ext = os.path.splitext(NOTE.format(short=short))
    for n in range(1, 100):
        name = f"{stem}{'' if n == 1 else f'-{n}'}{ext}"
        try:
            write_new(os.path.join(ours_root, name), text)
            return name
        except FileExistsError:
            continue
    return None


def write_base(ours_root, commit, files):
    """base.json in the home's bookkeeping folder; a link of that folder's name (a commit can ship
    one into a new home) is removed, not followed."""
    folder = os.path.join(ours_root, STATE_DIR)
    if os.path.islink(folder) or (os.path.lexists(folder) and not os.path.isdir(folder)):
        os.remove(folder)
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, "base.json.tmp")
    if os.path.lexists(tmp):
        os.remove(tmp)
    write_new(tmp, json.dumps({"commit": commit, "files": files}))
    os.replace(tmp, os.path.join(ours_root, BASE_FILE))


def merge(ours_root, theirs_root, commit):
    """Merge the new commit's files (``theirs_root``) into the home (``ours_root``); a summary."""
    base_commit, base = read_base(ours_root)
    summary = {"commit": commit, "base": base_commit, "taken": 0, "deleted": 0, "conflicts": [],
               "skipped": []}
    if base_commit == commit:
        summary["unchanged"] = True
        return summary
    theirs = scan(theirs_root)
    if os.path.realpath(ours_root) == os.path.realpath(theirs_root):
        write_base(ours_root, commit, theirs)  # a new home, just filled from the image
        summary["initial"] = True
        return summary
    ours = {p: file_hash(os.path.join(ours_root, p)) for p in set(base) | set(theirs)}
    ours = {p: h for p, h in ours.items() if h is not None}
    short = commit[:7]
    conflicts = []
    for path, action in plan(base, ours, theirs).items():
        try:
            conflict = _apply(ours_root, theirs_root, path, action, theirs.get(path), short, summary)
        except OSError as e:  # e.g. a folder where the commit has a file: left as it is, and said so
            summary["skipped"].append(f"{path} ({e.strerror or e})")
            continue
        if conflict:
            conflicts.append(conflict)
    if conflicts:
        note = write_note(ours_root, short, note_text(commit, conflicts))
        if note:
            summary["note"] = note
    summary["conflicts"] = [{"path": p, "action": a, "beside": b} for p, a, b in conflicts]
    write_base(ours_root, commit, theirs)
    return summary


def _apply(ours_root, theirs_root, path, action, their_hash, short, summary):
    """Carry out one decision; the conflict (path, action, beside) or None."""
    target = os.path.join(ours_root, path)
    if action in (TAKE, BESIDE, DELETE) and not safe_parent(ours_root, path):
        summary["skipped"].append(f"{path} (a folder on its way is a link)")
        return None
    if action == TAKE:
        copy_into(os.path.join(theirs_root, path), target)
        summary["taken"] += 1
    elif action == DELETE:
        os.remove(target)
        summary["deleted"] += 1
    elif action == BESIDE:
        beside = beside_name(path, short)
        if not os.path.lexists(os.path.join(ours_root, beside)):
            copy_into(os.path.join(theirs_root, path), os.path.join(ours_root, beside))
        elif file_hash(os.path.join(ours_root, beside)) != their_hash:
            beside = None  # a file of that name is the member's: not overwritten
        return (path, action, beside)
    elif action == KEEP_DELETED_UPSTREAM:
        return (path, action, None)
    return None


def main(argv):
    args = dict(zip(argv[0::2], argv[1::2]))
    try:
        summary = merge(args["--ours"], args["--theirs"], args["--commit"])
    except Exception as e:  # noqa: BLE001 - reported to the hub, which shows it; the home stays as it is
        summary = {"error": f"{type(e).__name__}: {e}"}
    print(MARKER + json.dumps(summary), flush=True)
    return 0


MERGE_SOURCE = None  # this file's source, as handed to 'python3 -c' (set below when imported)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
else:
    with open(__file__) as _f:
        MERGE_SOURCE = _f.read()
