"""Every Python snippet in the README loads as a jupyterhub_config.py (as JupyterHub loads it), so a
new admin can paste it; the prebuild snippet gives the CI service its role and scope."""

import os
import re
import textwrap

import pytest
from traitlets.config import PyFileConfigLoader

from binderspawner import prebuild
from tests.support import ROOT

with open(os.path.join(ROOT, "README.md")) as f:
    SNIPPETS = [textwrap.dedent(m.group(1)) for m in re.finditer(r"```python\n(.*?)```", f.read(), re.S)]


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.splitlines()[0][:40] for s in SNIPPETS])
def test_snippet_loads_as_a_config_file(snippet, tmp_path, monkeypatch):
    monkeypatch.setenv("CI_PREBUILD_TOKEN", "t0ken")
    (tmp_path / "jupyterhub_config.py").write_text("c = get_config()\n" + snippet)
    config = PyFileConfigLoader("jupyterhub_config.py", path=str(tmp_path)).load_config()
    assert config.JupyterHub, snippet
    if "prebuild.configure" in snippet:
        services = config.JupyterHub.services.get_value([])
        roles = config.JupyterHub.load_roles.get_value([])
        assert {"name": "ci", "api_token": "t0ken"} in services
        assert any(r["scopes"] == [prebuild.SCOPE] and r["services"] == ["ci"] for r in roles)
        assert prebuild.SCOPE in config.JupyterHub.custom_scopes.get_value({})


def test_the_readme_has_the_snippets():
    assert len(SNIPPETS) >= 2 and any("prebuild.configure" in s for s in SNIPPETS)
