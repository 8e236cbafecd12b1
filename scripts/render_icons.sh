#!/usr/bin/env bash
# Renders the application icon (resources/imagegui.svg) into the hicolor theme layout that
# `imagegui install-desktop` copies: scalable SVG + PNGs of the sizes desktops ask for.
# The PNGs are committed, so installing needs neither rsvg-convert nor Qt; run this again after
# changing the SVG (tests/cli/test_install_desktop.py fails when a PNG is older than the SVG's
# content: it compares a checksum recorded here).
# Needs rsvg-convert (Debian: librsvg2-bin).
set -euo pipefail
cd "$(dirname "$0")/.."
id=io.github.imagegui.ImageGui
src=resources/imagegui.svg
out=resources/icons/hicolor
mkdir -p "$out/scalable/apps"
cp "$src" "$out/scalable/apps/$id.svg"
for size in 16 24 32 48 64 128 256; do
  mkdir -p "$out/${size}x${size}/apps"
  rsvg-convert -w "$size" -h "$size" -o "$out/${size}x${size}/apps/$id.png" "$src"
done
sha256sum "$src" | cut -d' ' -f1 > "$out/SOURCE.sha256"
