"""Stand-in servers and helpers for the tests; their own tests are in tests/support/tests/."""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")
CONFIG_DIR = os.path.join(ROOT, "config")
