#!/usr/bin/env bash
# Install arena, every plugin in this repo and the test tools into a virtual
# environment (default .venv), from scratch if it does not exist.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv}
[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
# Headless Chromium for the report test (Debian packages; needs root).
if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
  if [[ $(id -u) -eq 0 ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "install.sh: not root: install Debian's chromium and chromium-driver for the report test" >&2
  fi
fi
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
# CPU build of torch first, so nothing below pulls the CUDA build.
"${PIP[@]}" "torch==2.13.0"
"${PIP[@]}" -e "./core[video,report,tensorboard,ray]" -e ./plugins/metaworld -e ./plugins/gr00t -e ./plugins/openpi -e ./plugins/openvla -e ./plugins/vlaeval -e ./plugins/libero
"${PIP[@]}" "pytest>=8" "pytest-timeout>=2.3" "ruff>=0.5" "selenium>=4.20" "hypothesis>=6.100" "json-numpy>=2.0" "vla-eval==0.8.0"
# The real openpi server module (a byte-identical copy of openpi's) for the
# compatibility test; its client pins numpy<2, so both come without deps.
"${PIP[@]}" --no-deps "openpi-server==0.1.0" "openpi-client==0.1.2" "typing_extensions"
