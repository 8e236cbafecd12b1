#!/usr/bin/env bash
# CI's packaging check: builds the sdist and the wheel from it (as pip and pipx do), checks that
# the sdist carries the whole project and the wheel the resources, installs the wheel into a fresh
# venv (its dependencies come from pip's cache) and starts the window from that install offscreen
# on the demo directory. Fails if the installed program cannot draw its window.
#   bash scripts/check_wheel.sh [PYTHON]     PYTHON has `build` (default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${1:-.venv/bin/python}
root=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/imagegui-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT

fail() {
  echo "imagegui: wheel check: $*" >&2
  exit 1
}
step() {  # step NAME COMMAND...: runs it with its output in a log, shown only when it fails
  local name=$1 start=$SECONDS
  shift
  if ! "$@" >"$work/$name.log" 2>&1; then
    cat "$work/$name.log" >&2
    fail "$name failed (output above)"
  fi
  echo "imagegui: wheel check: $name $((SECONDS - start)) s" >&2
}

total=$SECONDS
step build "$python" -m build --outdir "$work/dist" "$root"
sdist=$(echo "$work"/dist/imagegui-*.tar.gz)
wheel=$(echo "$work"/dist/imagegui-*.whl)
[ -f "$sdist" ] && [ -f "$wheel" ] || fail "no sdist or wheel in $work/dist"

# The sdist is the whole project, the wheel the program and its resources.
name=$(basename "$sdist" .tar.gz)
tar tzf "$sdist" >"$work/sdist.txt"
for f in LICENSE README.md pyproject.toml tests/conftest.py scripts/bootstrap.sh \
         resources/style.qss resources/icons/commit.svg imagegui/resources/style.qss; do
  grep -qx "$name/$f" "$work/sdist.txt" || fail "the sdist lacks $f"
done
"$python" -m zipfile -l "$wheel" >"$work/wheel.txt"
for f in imagegui/resources/style.qss imagegui/resources/imagegui.svg \
         imagegui/resources/icons/commit.svg imagegui/schemas/scan.schema.json \
         imagegui/resources/io.github.imagegui.ImageGui.desktop \
         imagegui/resources/io.github.imagegui.ImageGui.metainfo.xml \
         imagegui/resources/icons/hicolor/256x256/apps/io.github.imagegui.ImageGui.png; do
  grep -q "$f" "$work/wheel.txt" || fail "the wheel lacks $f"
done
grep -q "dist-info/licenses/LICENSE" "$work/wheel.txt" || fail "the wheel lacks its LICENSE"
! grep -q "resources/screenshots" "$work/wheel.txt" || fail "the wheel carries the screenshots"
# The libvirt extra is in the metadata (pip install 'imagegui[libvirt]'), and only there.
"$python" -c 'import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
print(z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode())' \
  "$wheel" >"$work/METADATA"
grep -qx "Provides-Extra: libvirt" "$work/METADATA" || fail "the wheel does not offer the libvirt extra"
grep -qx 'Requires-Dist: libvirt-python>=9.0; extra == "libvirt"' "$work/METADATA" ||
  fail "the wheel's libvirt extra does not require libvirt-python>=9.0"

# A fresh venv with nothing but the wheel and its dependencies; run from an empty directory with
# no PYTHONPATH, so nothing of the source tree can be imported.
base=$("$python" -c 'import sys; print(sys._base_executable)')
step venv "$base" -m venv "$work/venv"
step install "$work/venv/bin/python" -m pip install "$wheel"
mkdir "$work/run"
cd "$work/run"
installed=$(env -u PYTHONPATH "$work/venv/bin/python" -c \
  'import imagegui, pathlib; print(pathlib.Path(imagegui.__file__).parent)')
case "$installed" in
  "$work/venv/"*) ;;
  *) fail "imagegui was imported from $installed, not from the installed wheel" ;;
esac
! env -u PYTHONPATH "$work/venv/bin/python" -c 'import libvirt' 2>/dev/null ||
  fail "installing the wheel without extras brought libvirt-python"
version=$(env -u PYTHONPATH "$work/venv/bin/imagegui" --version)
[ "$version" = "imagegui ${name#imagegui-}" ] || fail "--version says '$version'"
step screenshot env -u PYTHONPATH QT_QPA_PLATFORM=offscreen HOME="$work/run" \
  XDG_CONFIG_HOME="$work/run/config" "$work/venv/bin/imagegui" --demo --screenshot "$work/demo.png"
[ "$(head -c 8 "$work/demo.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
  fail "the window's screenshot is not a PNG"
# Delete to the Trash from the installed wheel (Send2Trash is a dependency): a dry run plans it.
step delete-dry-run env -u PYTHONPATH HOME="$work/run" XDG_DATA_HOME="$work/run/data" \
  XDG_STATE_HOME="$work/run/state" "$work/venv/bin/imagegui" delete --dry-run "$work/demo.png"
# The app menu from the installed wheel: what install-desktop writes passes the desktop's own
# validators, and --uninstall leaves the data directory as it found it.
data="$work/run/data"
step install-desktop env -u PYTHONPATH XDG_DATA_HOME="$data" "$work/venv/bin/imagegui" install-desktop
grep -q "^Exec=$work/venv/bin/imagegui " "$data/applications/io.github.imagegui.ImageGui.desktop" ||
  fail "the desktop file does not start the installed imagegui"
step desktop-file-validate desktop-file-validate "$data/applications/io.github.imagegui.ImageGui.desktop"
step appstreamcli appstreamcli validate --no-net "$data/metainfo/io.github.imagegui.ImageGui.metainfo.xml"
step uninstall-desktop env -u PYTHONPATH XDG_DATA_HOME="$data" "$work/venv/bin/imagegui" \
  install-desktop --uninstall
[ -z "$(find "$data" -type f ! -name mimeinfo.cache)" ] || fail "--uninstall left files in $data"
echo "imagegui: wheel check passed ($(basename "$wheel"), window drawn from the installed wheel," \
     "$((SECONDS - total)) s)" >&2
