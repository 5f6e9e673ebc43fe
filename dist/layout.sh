#!/usr/bin/env bash
# Lay out an installed tree: layout.sh BINARY ROOT [PREFIX]
# ROOT/PREFIX/bin/thyme-studio, the desktop entry, the MIME type, icons (hicolor PNG sizes
# and the SVG), the README and the licence notice. Shared by the .deb and the tarball.
set -euo pipefail
bin=$1 root=$2 prefix=${3-/usr}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
dest=$root$prefix
install -Dm755 "$bin" "$dest/bin/thyme-studio"
install -Dm644 "$here/thyme-studio.desktop" "$dest/share/applications/thyme-studio.desktop"
install -Dm644 "$here/thyme-studio.xml" "$dest/share/mime/packages/thyme-studio.xml"
install -Dm644 "$here/icons/thyme-studio.svg" "$dest/share/icons/hicolor/scalable/apps/thyme-studio.svg"
for s in 32 48 64 128 256 512; do
  install -Dm644 "$here/icons/thyme-studio-$s.png" "$dest/share/icons/hicolor/${s}x${s}/apps/thyme-studio.png"
done
install -Dm644 "$top/README.md" "$dest/share/doc/thyme-studio/README.md"
install -Dm644 "$here/copyright" "$dest/share/doc/thyme-studio/copyright"
