#!/usr/bin/env bash
# Make sure an offscreen OpenGL context can be created (EGL + Mesa's llvmpipe when there is no GPU).
# Installs Debian's Mesa EGL packages when they are missing and we are root; otherwise prints the command.
# With --viewer-test (make test): also Xvfb and xdotool, which tests/render/test_viewer.py drives the viewer's
# window with (where they cannot be installed that test is skipped with the reason; nothing fails here).
set -u
PY="${1:-.venv/bin/python}"
if [ "${2:-}" = "--viewer-test" ]; then
  VPKGS="xvfb xdotool"
  vmissing=""
  for p in $VPKGS; do dpkg -s "$p" >/dev/null 2>&1 || vmissing="$vmissing $p"; done
  if [ -n "$vmissing" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[gl] installing for the viewer's test:$vmissing"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends $vmissing >/dev/null; } ||
      echo "[gl] could not install$vmissing: tests/render/test_viewer.py's window test will be skipped" >&2
  elif [ -n "$vmissing" ]; then
    echo "[gl] tests/render/test_viewer.py's window test needs:  sudo apt-get install -y$vmissing (skipped without)" >&2
  fi
fi
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
