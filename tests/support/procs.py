"""Which processes this test session started, so every fixture can stop its own and the session can
check at its end that nothing is left running (tests/conftest.py).

A process belongs to the session when its environment carries the session's marker (everything the
tests start inherits it: git daemons, hubs, the proxies and builds those start), or when it is a
JupyterHub service (idle culler...) of a hub the session started: JupyterHub gives services only a
few of its own variables, so those are known by the hub API address they are given.
"""

import os
import signal
import time
import uuid

SESSION = "BINDERSPAWNER_TEST_SESSION"
HUB = "BINDERSPAWNER_TEST_HUB"


def session_id():
    """This session's marker value (set once, inherited by every process started afterwards)."""
    return os.environ.setdefault(SESSION, uuid.uuid4().hex)


def _environ(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:  # gone, or a zombie
        return None
    env = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return env


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def find(match):
    """[(pid, command line)] of live processes (not this one) whose environment ``match`` accepts."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        env = _environ(name)
        if env and match(env) and _alive(name):
            found.append((int(name), _cmdline(name)))
    return found


HUBS = set()  # (run id, hub API port) of every hub this session started


def of_session(session=None):
    """What this session started and is still running: marked processes and its hubs' services."""
    session = session or session_id()
    apis = {f":{port}/hub/api" for _, port in HUBS}

    def match(env):
        return env.get(SESSION) == session or (
            "JUPYTERHUB_SERVICE_NAME" in env
            and any(api in env.get("JUPYTERHUB_API_URL", "") for api in apis))
    return find(match)


def of_hub(run_id, hub_port):
    """The processes of one test hub: the hub, its proxy and builds (marker), and its services."""
    api = f":{hub_port}/hub/api"

    def match(env):
        return env.get(HUB) == run_id or (
            "JUPYTERHUB_SERVICE_NAME" in env and api in env.get("JUPYTERHUB_API_URL", ""))
    return find(match)


def stop(processes, timeout=10):
    """SIGTERM, then SIGKILL what is still alive after ``timeout`` seconds."""
    pids = [pid for pid, _ in processes]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
            time.sleep(0.1)
        pids = [pid for pid in pids if _alive(pid)]
        if not pids:
            return
