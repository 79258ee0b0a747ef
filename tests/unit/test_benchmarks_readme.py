"""benchmarks/README.md names each benchmark's real flags: every option shown on a
`python benchmarks/bench_*.py ...` line is one its argparse accepts, with the default it shows, and
the benchmarks of this session's features are described there."""

import os
import re

import pytest

from tests.support import ROOT

with open(os.path.join(ROOT, "benchmarks", "README.md")) as f:
    README = f.read()
USAGE = re.findall(r"python benchmarks/(bench_\w+\.py)((?:[^`\n]|\n(?!\n))*)", README)


def accepted_flags(script):
    """The options the script's argparse declares (read from its source: importing a benchmark
    pulls in Docker and the hub)."""
    with open(os.path.join(ROOT, "benchmarks", script)) as f:
        calls = re.findall(r"add_argument\(([^)]*)", f.read())
    return {flag for call in calls for flag in re.findall(r"[\"'](--?[a-z][\w-]*)[\"']", call)}


@pytest.mark.parametrize("script,usage", USAGE, ids=[u[0] for u in USAGE])
def test_documented_flags_exist(script, usage):
    accepted = accepted_flags(script)
    for flag in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", usage):
        assert flag in accepted, f"benchmarks/README.md: {script} has no {flag}"


def test_shown_defaults_are_the_scripts():
    source = open(os.path.join(ROOT, "benchmarks", "bench_prebuild.py")).read()
    shown = re.search(r"bench_prebuild\.py \[-n/--rounds (\d+)\]", README)
    assert shown and f'"--rounds", type=int, default={shown.group(1)})' in source


@pytest.mark.parametrize("script", ["bench_conda.py", "bench_prebuild.py", "bench_envkey.py", "bench_homes.py"])
def test_session_benchmarks_are_described(script):
    assert f"python benchmarks/{script}" in README
