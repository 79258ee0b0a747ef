"""repo2docker with binderspawner's configuration: the command a build pod runs.

``python -m binderspawner.kubernetes.r2d <repo2docker arguments>`` is ``repo2docker --config
<binderspawner's repo2docker_config.py> <arguments>``, wherever this package is installed in the
build image (the hub cannot know that path).
"""

import sys

from repo2docker.__main__ import main

from binderspawner.builders.repo2docker import CONFIG_FILE

if __name__ == "__main__":
    sys.argv = ["repo2docker", "--config", CONFIG_FILE, *sys.argv[1:]]
    main()
