#!/usr/bin/env bash
# Make sure an offscreen OpenGL context can be created (EGL + Mesa's llvmpipe when there is no GPU).
# Installs Debian's Mesa EGL packages when they are missing and we are root; otherwise prints the command.
set -u
PY="${1:-.venv/bin/python}"
PKGS="libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri"
check() { "$PY" -c "from render.gl import renderer_info; i = renderer_info(); print('[gl] OpenGL', i['version'], 'on', i['renderer'])"; }
if check 2>/dev/null; then exit 0; fi
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "[gl] installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null || exit 1
  check && exit 0
fi
echo "[gl] no offscreen OpenGL context could be created." >&2
if [ -n "$missing" ]; then
  echo "[gl] install the missing packages:  sudo apt-get install -y$missing" >&2
fi
"$PY" -c "from render.gl import renderer_info; renderer_info()" >&2 || true
exit 1
