#!/usr/bin/env bash
# Install the system programs TL-FIF runs or tests with, when they are missing.
# Usage: scripts/system-packages.sh run|test|model
# Debian/Ubuntu: apt-get (directly as root, through sudo otherwise). Elsewhere: say what to install and fail.
set -euo pipefail

# command-on-PATH:debian-package
RUN_NEEDS="redis-server:redis-server"
# The local model engine (llama-cpp-python) compiles llama.cpp: a C/C++ compiler (cmake and ninja come from pip).
MODEL_NEEDS="$RUN_NEEDS cc:gcc c++:g++"
TEST_NEEDS="$MODEL_NEEDS Xvfb:xvfb xdotool:xdotool chromium:chromium chromedriver:chromium-driver"

case "${1:-test}" in
  run) needs=$RUN_NEEDS ;;
  test) needs=$TEST_NEEDS ;;
  model) needs=$MODEL_NEEDS ;;
  *) echo "usage: $0 run|test|model" >&2; exit 2 ;;
esac

missing=()
for pair in $needs; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/bin/$cmd" ] || [ -x "/usr/sbin/$cmd" ] || missing+=("$pkg")
done
# Tk for the desktop app (pyenv/python.org builds bundle it; Debian's python3 needs python3-tk).
if ! python3 -c 'import tkinter' >/dev/null 2>&1; then missing+=(python3-tk); fi
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "TL-FIF needs these programs: ${missing[*]} (Debian package names)." >&2
  echo "Install them with your system's package manager (macOS: brew install redis; Xvfb only for tests), then re-run." >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "Installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
