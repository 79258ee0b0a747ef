"""flake8 (settings in setup.cfg) over every module of the package, its tests, benchmarks, configs
and scripts: nothing is excluded from the lint."""

import subprocess
import sys

from tests.support import ROOT


def test_flake8_is_clean_everywhere():
    done = subprocess.run([sys.executable, "-m", "flake8", "binderspawner", "tests", "benchmarks", "config",
                           "scripts"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
