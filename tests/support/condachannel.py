"""A conda channel on 127.0.0.1 for the tests: hand-packed noarch packages, indexed by py-rattler.

No conda channel (conda-forge or a mirror) is reachable from these machines, so the tests build
their own: each package is a ``.tar.bz2`` holding ``info/index.json``, ``info/paths.json``,
``info/files`` and its files, the channel is indexed with ``rattler.index.index_fs`` (what a mirror
admin could run; PyPI's conda-index needs conda) and served over HTTP by a thread server the
fixture stops. ``python`` here is a fake noarch package (a marker file and a shell script), enough
to test which Python a solve picks, never to run code.
"""

import asyncio
import concurrent.futures
import hashlib
import http.server
import io
import json
import os
import tarfile
import threading

import rattler.index

# name[@variant] -> (version, depends, {path in the prefix: text}[, noarch kind; default generic])
PACKAGES = {
    "bs-data": ("1.0", [], {"share/bs-data/data.txt": "data from the conda channel\n"}),
    "bs-tool": ("2.1", ["bs-data >=1.0"], {"share/bs-tool/tool.txt": "tool from the conda channel\n",
                                           "bin/bs-tool": "#!/bin/sh\necho bs-tool 2.1 \"$@\"\n"}),
    "bs-tool@1.5": ("1.5", ["bs-data >=1.0"], {"share/bs-tool/tool.txt": "old tool\n"}),
    "python@3.12": ("3.12.0", [], {"share/bs-fake-python/version.txt": "3.12.0\n"}),
    "python@3.10": ("3.10.0", [], {"share/bs-fake-python/version.txt": "3.10.0\n"}),
    "bs-pylib": ("0.1", ["python >=3.8"], {"site-packages/bs_pylib.py": "VALUE = 1\n"}, "python"),
}


def package_bytes(name, version, depends, files, noarch="generic", build="0"):
    """A noarch ``.tar.bz2`` conda package (what conda-build would write, by hand)."""
    index = {"name": name, "version": version, "build": build, "build_number": 0, "depends": depends,
             "noarch": noarch, "subdir": "noarch", "license": "MIT", "timestamp": 1700000000000}
    paths = {"paths": [{"_path": path, "path_type": "hardlink",
                        "sha256": hashlib.sha256(text.encode()).hexdigest(), "size_in_bytes": len(text.encode())}
                       for path, text in sorted(files.items())], "paths_version": 1}
    members = {"info/index.json": json.dumps(index), "info/paths.json": json.dumps(paths),
               "info/files": "".join(f"{p}\n" for p in sorted(files)), **files}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:bz2") as tar:
        for path, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o755 if path.startswith("bin/") else 0o644
            info.mtime = 1700000000
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def make_channel(root, packages=PACKAGES):
    """Write and index a channel at ``root`` (noarch packages, an empty linux-64); returns root."""
    os.makedirs(os.path.join(root, "noarch"), exist_ok=True)
    os.makedirs(os.path.join(root, "linux-64"), exist_ok=True)
    for key, (version, depends, files, *noarch) in packages.items():
        name = key.split("@")[0]
        with open(os.path.join(root, "noarch", f"{name}-{version}-0.tar.bz2"), "wb") as f:
            f.write(package_bytes(name, version, depends, files, *noarch))
    index = rattler.index.index_fs(root, write_zst=False, write_shards=False, force=True)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(index)
    else:  # called from a coroutine: index in a thread with its own loop
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, index).result()
    return root


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class ChannelServer:
    """The channel directory served over HTTP on 127.0.0.1 (a thread; ``stop`` ends it)."""

    def __init__(self, root):
        self.root = str(root)
        handler = lambda *a, **k: _Quiet(*a, directory=self.root, **k)  # noqa: E731
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def free_url():
    """A loopback URL nobody listens on (for the unreachable-channel test)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/nothing-here"
