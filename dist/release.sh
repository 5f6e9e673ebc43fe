#!/usr/bin/env bash
# The release: an optimised, stripped build, the .deb and the tarball, and SHA-256 sums.
#   dist/release.sh [--features cuda|metal]   (writes target/dist/)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
out=$top/target/dist
cd "$top"
cargo build --release --locked "$@"
bin=target/release/thyme-studio
mkdir -p "$out"
cp "$bin" "$out/thyme-studio"
strip "$out/thyme-studio"
echo "binary: $(du -h "$out/thyme-studio" | cut -f1) stripped"
deb=$("$here/deb.sh" "$out/thyme-studio" "$out")
tarball=$("$here/tarball.sh" "$out/thyme-studio" "$out")
(cd "$out" && sha256sum "$(basename "$deb")" "$(basename "$tarball")" thyme-studio > SHA256SUMS)
cat "$out/SHA256SUMS"
