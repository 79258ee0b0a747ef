"""Runs inside the image being built, with py-rattler in its own tools venv: installs the conda
packages the hub solved (or read from a lock) and fetched into this build's context, offline, into
the environment's prefix. Nothing is solved here: the packages are exactly the manifest's, each
checked again against the sha256 the hub recorded.

Usage: conda_install.py PAYLOAD_DIR PREFIX
"""

import asyncio
import hashlib
import json
import os
import sys
import tempfile

FAILED = "binderspawner-install-failed:"


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


async def install(payload, prefix):
    import rattler

    with open(os.path.join(payload, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    records = []
    for entry in manifest["packages"]:
        path = os.path.join(payload, "pkgs", entry["file"])
        if sha256(path) != entry["sha256"]:
            print(f"{FAILED} installing the conda environment failed: {entry['file']} does not have the "
                  "checksum the hub recorded", file=sys.stderr)
            sys.exit(1)
        records.append(await rattler.RepoDataRecord.from_package_archive(path))
    os.makedirs(prefix, exist_ok=True)
    if not records:
        return
    with tempfile.TemporaryDirectory(prefix="binderspawner-conda-cache-") as cache:
        try:
            await rattler.install(records, prefix, cache_dir=cache, show_progress=False)
        except Exception as e:  # rattler's InstallerError / LinkError
            print(f"{FAILED} installing the conda environment failed: {str(e).splitlines()[0]}",
                  file=sys.stderr)
            sys.exit(1)
    print(f"Installed {len(records)} conda packages into {prefix}: "
          + ", ".join(f"{r.name.normalized} {r.version}" for r in records))


if __name__ == "__main__":
    asyncio.run(install(sys.argv[1], sys.argv[2]))
