#!/usr/bin/env bash
# Quickstart: provision this host, serve examples/ from a git server on 127.0.0.1, and start a hub
# on http://127.0.0.1:8000 ready to launch them. Ctrl-C stops the hub and the git server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/provision.sh

GIT_PORT=${BINDERSPAWNER_DEMO_GIT_PORT:-9418}
repos=${BINDERSPAWNER_STATE_DIR:-/var/lib/binderspawner}/demo-repos
export GIT_CONFIG_GLOBAL=/dev/null GIT_AUTHOR_NAME=demo GIT_AUTHOR_EMAIL=demo@localhost \
  GIT_COMMITTER_NAME=demo GIT_COMMITTER_EMAIL=demo@localhost
mkdir -p "$repos"
for dir in examples/*/; do
  name=$(basename "$dir")
  [ -d "$repos/$name.git" ] && continue
  work=$(mktemp -d)
  cp -r "$dir". "$work"
  git -C "$work" init -q -b main && git -C "$work" add -A && git -C "$work" commit -qm "example $name"
  git clone -q --bare "$work" "$repos/$name.git"
  rm -rf "$work"
done
# git-daemon itself, not the 'git daemon' wrapper: the wrapper runs it as a child that outlives it.
"$(git --exec-path)/git-daemon" --reuseaddr --export-all --base-path="$repos" --listen=127.0.0.1 \
  --port="$GIT_PORT" "$repos" &
git_pid=$!
trap 'kill $git_pid 2>/dev/null; wait $git_pid 2>/dev/null' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export BINDERSPAWNER_ALLOWED_HOSTS=${BINDERSPAWNER_ALLOWED_HOSTS:-127.0.0.1,github.com,gitlab.com}
cat <<MSG
binderspawner demo: open http://127.0.0.1:8000, log in with any name, and launch one of
$(for dir in examples/*/; do echo "  git://127.0.0.1:$GIT_PORT/$(basename "$dir").git"; done)
MSG
jupyterhub -f config/jupyterhub_config.py
