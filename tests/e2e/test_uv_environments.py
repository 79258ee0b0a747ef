"""Real builds of the venv buildpack with uv (binderspawner/builders/buildpacks/), through repo2docker
with the hub's config file and a decided environment written as the hub writes it; each image is
checked by running code in it. Needs the base images scripts/provision.sh builds."""

import json
import os
import subprocess
import sys
import uuid

import jupyterhub
import pytest

from binderspawner.builders.buildpacks.venv import install_failure
from binderspawner.builders.repo2docker import CONFIG_FILE

PREFIX = "bstest-uvenv-"
SERVER = [f"jupyterhub=={jupyterhub.__version__}", "jupyterlab", "jupyter-offlinenotebook"]


def environment(**decided):
    return {"python": "3.11", "base_image": "binderspawner-base:bookworm", "binder_dir": "",
            "requirements": None, "pipfile": None, "pipfile_lock": None, "install_repo": False,
            "index_urls": [], **decided}


def write(root, files):
    for path, content in files.items():
        full = root / path
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_text(content)
    return root


def build(root, env):
    """repo2docker as the builder runs it; returns (exit code, log lines, image name)."""
    image = f"{PREFIX}{uuid.uuid4().hex[:10]}:latest"
    settings = {"buildpacks": "venv", "base_image": "binderspawner-base:bookworm",
                "server_requirements": SERVER,
                "extra_ca_bundle": "", "content_providers": ["Local"], "environment": env}
    done = subprocess.run(
        [sys.executable, "-m", "repo2docker", "--config", CONFIG_FILE, "--no-run", "--user-id", "1000",
         "--user-name", "jovyan", "--image-name", image, str(root)],
        env={**os.environ, "BINDERSPAWNER_R2D_SETTINGS": json.dumps(settings)},
        capture_output=True, text=True, timeout=1200)
    return done.returncode, (done.stdout + done.stderr).splitlines(), image


def run_in(image, script):
    """Python code run as the server would run it (repo2docker's entrypoint, login shell)."""
    done = subprocess.run(["docker", "run", "--rm", image, "python", "-c", script],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def images():
    built = []
    yield built
    for image in built:
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True)


def built(images, root, env):
    code, log, image = build(root, env)
    assert code == 0, "\n".join(log[-40:])
    images.append(image)
    return image


def test_requirements_node_and_what_repo2docker_images_provide(images, tmp_path):
    root = write(tmp_path, {"binder/requirements.txt": "six==1.16.0\nattrs ; python_version >= '3'\n"
                            "pyjokes ; python_version < '3'\n", "index.ipynb": "{}"})
    image = built(images, root, environment(binder_dir="binder", requirements="binder/requirements.txt"))
    facts = run_in(image, """if True:
        import json, os, pwd, shutil, subprocess, sys, importlib.util as u
        import six, attrs, jupyterhub, jupyterlab
        home = os.path.expanduser("~")
        print(json.dumps({
            "six": six.__version__, "jokes": u.find_spec("pyjokes") is not None,
            "hub": jupyterhub.__version__,
            "offline": u.find_spec("jupyter_offlinenotebook") is not None,
            "python": "%d.%d" % sys.version_info[:2], "prefix": sys.prefix,
            "node": subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip(),
            "npm": shutil.which("npm") is not None and subprocess.run(["npm", "--version"]).returncode == 0,
            "repo_dir": os.environ.get("REPO_DIR"), "cwd": os.getcwd(), "path": os.environ["PATH"].split(":"),
            "uid": os.getuid(), "user": pwd.getpwuid(os.getuid()).pw_name, "home": home,
            "home_owner": os.stat(home).st_uid, "notebook": os.path.exists("index.ipynb")}))
    """)
    assert facts["six"] == "1.16.0" and not facts["jokes"]  # pins and markers, pip's semantics
    assert facts["hub"] == jupyterhub.__version__ and facts["offline"]
    assert facts["python"] == "3.11" and facts["prefix"] == "/srv/venv"
    assert int(facts["node"].lstrip("v").split(".")[0]) >= 20 and facts["npm"]
    assert facts["repo_dir"] == facts["cwd"] == facts["home"] == "/home/jovyan" and facts["notebook"]
    assert "/home/jovyan/.local/bin" in facts["path"] and "/home/jovyan/.local/bin" in facts["path"]
    assert facts["path"].index("/srv/venv/bin") < facts["path"].index("/usr/bin")
    assert (facts["uid"], facts["user"], facts["home_owner"]) == (1000, "jovyan", 1000)


def test_setup_py_repository_is_installed(images, tmp_path):
    root = write(tmp_path, {
        "setup.py": "from setuptools import setup\nsetup(name='mytool', version='0.3', packages=['mytool'],"
                    " install_requires=['six'])\n",
        "mytool/__init__.py": "ANSWER = 42\n", "requirements.txt": "attrs\n"})
    image = built(images, root, environment(requirements="requirements.txt", install_repo=True))
    # from another directory too: installed, not just importable from the working directory
    facts = run_in(image, "import os, json; os.chdir('/tmp'); import mytool, six, attrs; "
                          "print(json.dumps([mytool.ANSWER, mytool.__file__]))")
    assert facts[0] == 42 and "/srv/venv/" in facts[1]


def test_installable_pyproject_on_trixie_with_python_3_13(images, tmp_path):
    root = write(tmp_path, {
        "pyproject.toml": "[project]\nname = 'projpkg'\nversion = '1.0'\ndependencies = ['six']\n"
                          "[build-system]\nrequires = ['setuptools']\n"
                          "build-backend = 'setuptools.build_meta'\n",
        "projpkg/__init__.py": "NAME = 'projpkg'\n", "runtime.txt": "python-3.13\n"})
    image = built(images, root, environment(python="3.13", base_image="binderspawner-base:trixie",
                                            install_repo=True))
    facts = run_in(image, "import os, sys, json; os.chdir('/'); import projpkg, six; "
                          "print(json.dumps([projpkg.NAME, '%d.%d' % sys.version_info[:2]]))")
    assert facts == ["projpkg", "3.13"]


def test_pipfile_lock_pins_are_installed_exactly(images, tmp_path):
    lock = {"_meta": {"requires": {"python_version": "3.11"}}, "default": {
        "six": {"version": "==1.16.0", "hashes": [
            "sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"]}},
            "develop": {}}
    root = write(tmp_path, {"Pipfile": "[packages]\nsix = '*'\n", "Pipfile.lock": json.dumps(lock)})
    image = built(images, root, environment(pipfile="Pipfile", pipfile_lock="Pipfile.lock"))
    assert run_in(image, "import six, json; print(json.dumps(six.__version__))") == "1.16.0"


def test_a_failed_install_names_the_file_and_package_first(tmp_path):
    root = write(tmp_path, {"requirements.txt": "binderspawner-no-such-package-xyz==1.0\n"})
    code, log, image = build(root, environment(requirements="requirements.txt"))
    subprocess.run(["docker", "rmi", "-f", image], capture_output=True)
    assert code != 0
    cause = install_failure(log)
    assert cause is not None, "\n".join(log[-30:])
    assert cause.startswith("installing requirements.txt failed:")
    assert "binderspawner-no-such-package-xyz" in cause
