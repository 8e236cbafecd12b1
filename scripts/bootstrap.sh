#!/usr/bin/env bash
# One command from a fresh Debian/Ubuntu machine to a running imagegui or a full test run:
#   bash scripts/bootstrap.sh demo   install everything, open the window on a demo directory
#   bash scripts/bootstrap.sh test   install everything, run the whole test suite
#   bash scripts/bootstrap.sh setup  install everything only
# Works as root and as a normal user (apt-get then runs through sudo). Idempotent and quick when
# everything is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-demo}
shift || true

apt_packages=(
  python3 python3-venv python3-pip
  qemu-utils qemu-system-x86
  xvfb xauth
  dbus at-spi2-core python3-pyatspi xdotool  # the window read as a screen reader reads it (tests)
  libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0 libxcb-image0
  libxcb-render-util0 libxcb-xkb1 libxcb-randr0 libxcb-shape0 libxcb-xinerama0
  libegl1 libgl1 libfontconfig1 libdbus-1-3 libglib2.0-0
)

missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
  echo "imagegui: installing system packages: ${missing[*]}" >&2
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=.venv/.imagegui-installed
want=$(sha1sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! .venv/bin/python -c 'import imagegui' 2>/dev/null; then
  echo "imagegui: installing the Python packages into .venv" >&2
  log=.venv/install.log
  if ! { .venv/bin/python -m pip install -q --upgrade pip &&
         .venv/bin/python -m pip install -q -e '.[test]'; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "imagegui: installing into .venv failed (full log above, also in $log)" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi
# Run through sudo by a normal user: leave the venv theirs, not root's.
if [ "$(id -u)" -eq 0 ] && [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
  chown -R "$SUDO_USER": .venv ./*.egg-info 2>/dev/null || true
fi

case "$mode" in
  setup) ;;
  demo)
    if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
      shot=${IMAGEGUI_SCREENSHOT:-$PWD/imagegui-demo.png}
      echo "imagegui: no display here (DISPLAY is not set): drawing the demo window on a virtual" >&2
      echo "screen and saving a picture of it to $shot instead of opening it." >&2
      xvfb-run -a -s '-screen 0 1600x1000x24' .venv/bin/imagegui --demo --screenshot "$shot" "$@"
      echo "imagegui: saved $shot; on a desktop this command opens the window." >&2
      exit 0
    fi
    exec .venv/bin/imagegui --demo "$@"
    ;;
  test)
    .venv/bin/ruff check -q .
    .venv/bin/ruff format --check -q .
    .venv/bin/mypy
    export QT_QPA_PLATFORM=offscreen
    exec .venv/bin/python -m pytest "$@"
    ;;
  *)
    echo "usage: bash scripts/bootstrap.sh [demo|test|setup]" >&2
    exit 2
    ;;
esac
