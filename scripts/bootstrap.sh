#!/usr/bin/env bash
# One command from a fresh Debian/Ubuntu machine to a running imagegui or a full test run:
#   bash scripts/bootstrap.sh demo   install everything, open the window on a demo directory
#   bash scripts/bootstrap.sh test   install everything, run the whole test suite (also on Python
#                                    3.10 when there is one), then build the wheel, install it
#                                    into a fresh venv and start the window from it
#   bash scripts/bootstrap.sh test ARGS...   only pytest ARGS, on .venv
#   bash scripts/bootstrap.sh setup  install everything only
# Works as root and as a normal user (apt-get then runs through sudo; without sudo it prints the
# apt-get line for root and exits 2). Idempotent and quick when everything is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-demo}
shift || true

apt_packages=(
  python3 python3-venv python3-pip
  qemu-utils qemu-system-x86
  xvfb xauth
  dbus at-spi2-core python3-pyatspi xdotool  # the window read as a screen reader reads it (tests)
  desktop-file-utils appstream man-db zsh  # install-desktop tests: validators, man -l, zsh -n
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients virtinst  # VMs by name, clone-vm
  libvirt-dev pkg-config gcc python3-dev  # to build the libvirt extra (libvirt-python)
  openssh-server  # the tests reach libvirtd over qemu+ssh through a loopback sshd they start
  libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0 libxcb-image0
  libxcb-render-util0 libxcb-xkb1 libxcb-randr0 libxcb-shape0 libxcb-xinerama0
  libegl1 libgl1 libfontconfig1 libdbus-1-3 libglib2.0-0
)

# The packages of apt_packages that are not installed, in that order.
missing_packages() {
  local pkg
  for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}

# Installs the missing packages: as root directly, otherwise through sudo. Without root and
# without sudo there is nothing this script can do: it prints the exact line for root to run and
# exits 2 (not sudo's "command not found").
install_packages() {
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "imagegui: these system packages are missing: $*" >&2
      echo "imagegui: installing them needs root, and sudo is not installed. As root, run:" >&2
      echo >&2
      echo "    apt-get update && apt-get install -y $*" >&2
      echo >&2
      echo "then run this command again." >&2
      exit 2
    fi
    sudo=(sudo)
  fi
  echo "imagegui: installing system packages: $*" >&2
  if ! { "${sudo[@]}" apt-get update -qq &&
         "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }; then
    echo "imagegui: installing the system packages failed; as root, run:" >&2
    echo "    apt-get update && apt-get install -y $*" >&2
    exit 1
  fi
}

mapfile -t missing < <(missing_packages)
if ((${#missing[@]})); then
  install_packages "${missing[@]}"
fi

# The line of a failed pip install (LOG) that says why the libvirt extra did not build.
libvirt_failure() {
  local pattern line
  for pattern in 'Package libvirt was not found' 'pkg-config' 'Python\.h' "command '.*' failed" \
                 'No matching distribution|Could not find a version' '(ERROR|error): '; do
    line=$(grep -m1 -E "$pattern" "$1" 2>/dev/null) && { echo "${line#"${line%%[! ]*}"}"; return; }
  done
  echo "pip could not install libvirt-python"
}

# Makes the venv DIR with PYTHON (once) and installs imagegui into it, editable, with the test
# tools and the libvirt extra; again only when pyproject.toml changed. When the extra does not
# build, imagegui goes in without it (one line says why): the suite runs, libvirt tests skipped.
make_venv() {
  local dir=$1 python=$2 stamp want log why
  if [ ! -x "$dir/bin/python" ]; then
    "$python" -m venv "$dir"
  fi
  stamp=$dir/.imagegui-installed
  want=$(sha1sum pyproject.toml | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] ||
     ! "$dir/bin/python" -c 'import imagegui' 2>/dev/null; then
    echo "imagegui: installing the Python packages into $dir" >&2
    log=$dir/install.log
    if ! "$dir/bin/python" -m pip install -q --upgrade pip >"$log" 2>&1; then
      install_failed "$dir" "$log"
    fi
    if ! "$dir/bin/python" -m pip install -q -e '.[test,libvirt]' >>"$log" 2>&1; then
      why=$(libvirt_failure "$log")
      if ! "$dir/bin/python" -m pip install -q -e '.[test]' >>"$log" 2>&1; then
        install_failed "$dir" "$log"
      fi
      echo "imagegui: $dir has no libvirt extra (its tests will be skipped): $why (see $log)" >&2
    fi
    echo "$want" > "$stamp"
  fi
}

install_failed() {  # install_failed DIR LOG
  cat "$2" >&2
  echo "imagegui: installing into $1 failed (full log above, also in $2)" >&2
  exit 1
}

# A Python 3.10 (the oldest imagegui supports) with venv, to run the suite on too; or nothing.
find_python310() {
  local candidate
  for candidate in ${PYTHON310:-} python3.10 "$HOME"/.pyenv/versions/3.10*/bin/python3.10 \
                   /usr/bin/python3.10; do
    if "$candidate" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info[:2] != (3, 10))' \
         >/dev/null 2>&1; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

make_venv .venv "${PYTHON:-python3}"
# Run through sudo by a normal user: leave the venvs theirs, not root's.
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
    if (($#)); then  # chosen tests or options: only those, only on .venv
      exec .venv/bin/python -m pytest "$@"
    fi
    # The whole suite on .venv's Python, again on Python 3.10 when there is one, then the wheel
    # built, installed into a fresh venv and started (scripts/check_wheel.sh).
    start=$SECONDS
    .venv/bin/python -m pytest
    echo "imagegui: suite on $(.venv/bin/python -V 2>&1): $((SECONDS - start)) s" >&2
    if py310=$(find_python310); then
      start=$SECONDS
      make_venv .venv310 "$py310"
      if [ "$(id -u)" -eq 0 ] && [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
        chown -R "$SUDO_USER": .venv310 2>/dev/null || true
      fi
      .venv310/bin/python -m pytest
      echo "imagegui: suite on $(.venv310/bin/python -V 2>&1) (.venv310): $((SECONDS - start)) s" >&2
    else
      echo "imagegui: skipping the Python 3.10 run: no python3.10 with venv found (on PATH," \
           "in ~/.pyenv/versions, or PYTHON310=...)" >&2
    fi
    bash scripts/check_wheel.sh .venv/bin/python
    ;;
  *)
    echo "usage: bash scripts/bootstrap.sh [demo|test|setup]" >&2
    exit 2
    ;;
esac
