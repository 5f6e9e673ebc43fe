#!/usr/bin/env bash
# Build a Debian package from a built binary: deb.sh BINARY OUTDIR
# Writes OUTDIR/thyme-studio_VERSION_amd64.deb and prints its path. The version comes from
# the binary itself (thyme-studio --version), so the package never disagrees with it.
set -euo pipefail
bin=$(realpath "$1") out=$2
here=$(cd "$(dirname "$0")" && pwd)
version=$("$bin" --version | awk '{print $2}')
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$here/layout.sh" "$bin" "$work/root" /usr
size=$(du -sk "$work/root" | cut -f1)
mkdir -p "$work/root/DEBIAN"
cat > "$work/root/DEBIAN/control" <<CONTROL
Package: thyme-studio
Version: $version
Architecture: $arch
Maintainer: thyme-studio developers <noreply@thyme-studio.invalid>
Installed-Size: $size
Depends: libc6 (>= 2.31), libgcc-s1
Recommends: libgl1, libegl1, libxkbcommon0, python3 (>= 3.9), python3-venv
Suggests: xdg-desktop-portal, zenity
Section: graphics
Priority: optional
Description: workbench for code-as-tool vision agents
 Annotate small objects on very large images, write question/answer pairs for
 RL data, inspect agent traces with every crop placed on the original image,
 and run a vision-language agent (Thyme) step by step with its Python sandbox.
 The Python sandbox runtime (python3 + venv) and model weights are optional and
 set up from inside the app.
CONTROL
mkdir -p "$out"
pkg="$out/thyme-studio_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$work/root" "$pkg" >/dev/null
echo "$pkg"
