#!/usr/bin/env bash
# Provision a Debian host (bookworm, as root) for binderspawner: Docker engine with the buildx
# plugin, git, configurable-http-proxy, this package with its test extras, and the local base images
# (one per Debian suite, built from debootstrap, so no container registry is needed). Idempotent: every step checks first.
# On a host that already runs Docker, the engine steps are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

# CA bundle baked into the base image, for sites whose TLS goes through an intercepting proxy.
EXTRA_CA=${BINDERSPAWNER_EXTRA_CA:-/etc/ssl/certs/ca-certificates.crt}
export DEBIAN_FRONTEND=noninteractive

log() { echo "provision: $*" >&2; }

need_apt=()
command -v git >/dev/null || need_apt+=(git)
command -v git-lfs >/dev/null || need_apt+=(git-lfs)  # Git LFS files of launched repositories (builders/lfs.py)
command -v iptables >/dev/null || need_apt+=(iptables)
command -v ip >/dev/null || need_apt+=(iproute2)  # egress tests: network namespaces, veths
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
# A container registry and htpasswd for the registry tests (started by the tests on 127.0.0.1;
# the package's own service is not used).
command -v docker-registry >/dev/null || need_apt+=(docker-registry)
command -v htpasswd >/dev/null || need_apt+=(apache2-utils)
command -v node >/dev/null || need_apt+=(nodejs npm)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)  # the browser tests (Playwright drives it)
# pycurl (a test dependency: hub images often have it) builds against libcurl's headers.
dpkg -s libcurl4-openssl-dev >/dev/null 2>&1 || need_apt+=(libcurl4-openssl-dev libssl-dev)
docker info >/dev/null 2>&1 || command -v dockerd >/dev/null || need_apt+=(docker.io)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# repo2docker builds with 'docker buildx'. Bookworm has no package for it; trixie's docker-buildx
# needs only libc6 >= 2.34, so take that one package (without recommends) from trixie, pinned low
# so nothing else is upgraded. The mirror is whatever this host's apt already uses.
if ! docker buildx version >/dev/null 2>&1; then
  log "installing docker-buildx from Debian trixie"
  sources=/etc/apt/sources.list.d/debian.sources
  uri=$(awk '/^URIs:/{print $2; exit}' "$sources" 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)
  printf 'Types: deb\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$uri" > /etc/apt/sources.list.d/binderspawner-trixie.sources
  printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' > /etc/apt/preferences.d/binderspawner-trixie
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker-buildx/trixie >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  setsid nohup dockerd > /var/log/binderspawner-dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { log "dockerd did not start; see /var/log/binderspawner-dockerd.log"; exit 1; }
fi

if ! command -v configurable-http-proxy >/dev/null; then
  log "installing configurable-http-proxy"
  npm install -g --silent configurable-http-proxy >/dev/null
fi

# The OpenID Connect provider the hub's login tests run (tests/support/oidc), from its lock file.
if [ ! -d tests/support/oidc/node_modules ]; then
  log "installing the test OpenID Connect provider's npm dependencies"
  npm ci --no-audit --no-fund --silent --prefix tests/support/oidc >/dev/null
fi

log "installing binderspawner with its test extras"
python3 -m pip install -q -e ".[test]"

# One base image per Debian suite, each with the suite's own Python (bookworm 3.11, trixie 3.13,
# forky 3.14); builds pick one by the Python a repository asks for. bullseye (3.9) is left out: no
# server layer (JupyterHub 6 needs Python 3.10+). The root filesystems come from debootstrap (in
# parallel), then one docker build each (in parallel). An image is rebuilt only when missing or
# built from another docker/base/Dockerfile (its label holds the file's hash).
mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)
dockerfile_hash=$(cat docker/base/Dockerfile "$EXTRA_CA" 2>/dev/null | sha256sum | cut -c1-16)
base_ready() {
  [ "$(docker image inspect --format '{{ index .Config.Labels "binderspawner.base.dockerfile" }}' \
        "binderspawner-base:$1" 2>/dev/null)" = "$dockerfile_hash" ]
}
build_base() {  # suite; logs its time
  local suite=$1 start rootfs context script
  start=$(date +%s)
  if ! docker image inspect "binderspawner-rootfs:$suite" >/dev/null 2>&1; then
    rootfs=$(mktemp -d)
    script=/usr/share/debootstrap/scripts/$suite
    [ -e "$script" ] || script=/usr/share/debootstrap/scripts/sid  # suites newer than this debootstrap
    debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" "$script" >/dev/null
    tar -C "$rootfs" -c . | docker import - "binderspawner-rootfs:$suite" >/dev/null
    rm -rf "$rootfs"
  fi
  context=$(mktemp -d)
  cp docker/base/Dockerfile "$context/"
  if [ -f "$EXTRA_CA" ]; then cp "$EXTRA_CA" "$context/extra-ca.crt"; else : > "$context/extra-ca.crt"; fi
  docker build -q --build-arg ROOTFS="binderspawner-rootfs:$suite" \
    --label "binderspawner.base.dockerfile=$dockerfile_hash" -t "binderspawner-base:$suite" "$context" >/dev/null
  rm -rf "$context"
  log "built binderspawner-base:$suite in $(( $(date +%s) - start )) s"
}
pids=()
for suite in ${BINDERSPAWNER_BASE_SUITES:-bookworm trixie forky}; do
  base_ready "$suite" && continue
  log "building binderspawner-base:$suite"
  build_base "$suite" & pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
log "ready: $(docker version --format 'engine {{.Server.Version}}'), base images for ${BINDERSPAWNER_BASE_SUITES:-bookworm trixie forky}"
