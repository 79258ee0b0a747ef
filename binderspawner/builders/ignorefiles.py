""".dockerignore/.containerignore patterns matched in linear time, as docker-py means them (pure).

docker-py's matcher (``docker.utils.build.exclude_paths``, which repo2docker uses for the build
context) turns each pattern into a backtracking regular expression: a 25-byte line such as
``a*a*a*a*a*a*a*a*a*a*a*a*b`` takes 38 s for one file named with 40 a's, and about ten times longer
with each further ``*``. What the hub itself matches (the content layer, on the hub's event loop) is
matched here instead: the same translation of each pattern (``*`` any run without ``/``, ``?`` one
character but ``/``, ``[...]`` a class, ``**`` any run of folders, case-insensitive), run as a set
of pattern positions over the path, so the time is at most the path's length times the pattern's.
docker-py's walk and its rules for exclusions and parent folders are used as they are.
"""

import re
import warnings

from docker.utils.build import Pattern, PatternMatcher, normalize_slashes

# pattern items: (kind, value); kinds: 'char', 'one' (?), 'class' ([...]), 'star' (*, no '/'),
# 'folders' (**/ in the middle: nothing, or anything ending in '/'), 'rest' (** at the end)


def parse(pattern):
    """A pattern as docker-py's fnmatch.translate reads it, as a list of items (pure)."""
    items, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                items.append(("rest", None) if i >= n else ("folders", None))
            else:
                items.append(("star", None))
        elif c == "?":
            items.append(("one", None))
        elif c == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                items.append(("char", "["))
            else:
                stuff = pattern[i:j].replace("\\", "\\\\")
                i = j + 1
                if stuff[0] == "!":
                    stuff = "^" + stuff[1:]
                elif stuff[0] == "^":
                    stuff = "\\" + stuff
                with warnings.catch_warnings():  # '[[' and '[--' warn of future meanings, as in docker-py
                    warnings.simplefilter("ignore", FutureWarning)
                    items.append(("class", re.compile(f"[{stuff}]")))  # one character: no backtracking
        else:
            items.append(("char", c))
    return items


def _closure(states, items):
    """Add the states reachable without reading: past a '*', '**/' or trailing '**'."""
    todo = list(states)
    while todo:
        state = todo.pop()
        if isinstance(state, int) and state < len(items) and items[state][0] in ("star", "folders", "rest"):
            if state + 1 not in states:
                states.add(state + 1)
                todo.append(state + 1)
    return states


def _step(states, items, ch):
    out = set()
    for state in states:
        if isinstance(state, tuple):  # inside '**/': any character (as regex '.'), '/' may end it
            if ch != "\n":
                out.add(state)
                if ch == "/":
                    out.add(state[1] + 1)
            continue
        if state >= len(items):
            continue
        kind, value = items[state]
        if kind == "char" and ch == value or kind == "one" and ch != "/" or \
                kind == "class" and value.match(ch):
            out.add(state + 1)
        elif kind == "star" and ch != "/" or kind == "rest" and ch != "\n":
            out.add(state)
        elif kind == "folders" and ch != "\n":
            out.add(("in", state))
            if ch == "/":
                out.add(state + 1)
    return _closure(out, items)


def glob_match(pattern, name):
    """Whether ``name`` matches ``pattern`` as docker-py's fnmatch says, in linear time."""
    items = parse(pattern.lower())
    name = name.lower()
    states = _closure({0}, items)
    for position, ch in enumerate(name):
        if position == len(name) - 1 and ch == "\n" and len(items) in states:
            return True  # regex '$' also matches before a final newline
        states = _step(states, items, ch)
        if not states:
            return False
    return len(items) in states


class LinearPattern(Pattern):
    def match(self, filepath):
        return glob_match(self.cleaned_pattern, normalize_slashes(filepath))


class LinearPatternMatcher(PatternMatcher):
    """docker-py's PatternMatcher (its walk, exclusions and parent-folder rule) with each pattern
    matched by glob_match."""

    def __init__(self, patterns):
        super().__init__(patterns)
        self.patterns = [LinearPattern(("!" if p.exclusion else "") + p.cleaned_pattern) for p in self.patterns]


def exclude_paths(root, patterns, dockerfile=None):
    """The paths under ``root`` that ``patterns`` leave in, as docker-py's exclude_paths says
    (its signature: repo2docker_config.py puts this one in its place in the build process)."""
    return set(LinearPatternMatcher([*patterns, f"!{dockerfile or 'Dockerfile'}"]).walk(root))
