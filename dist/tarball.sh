#!/usr/bin/env bash
# A relocatable tarball for any x86_64 Linux: tarball.sh BINARY OUTDIR
# thyme-studio-VERSION-x86_64-linux/ with bin/, share/ (desktop entry, icons) and install.sh,
# which copies it under ~/.local (or PREFIX) and registers the desktop entry.
set -euo pipefail
bin=$(realpath "$1") out=$2
here=$(cd "$(dirname "$0")" && pwd)
version=$("$bin" --version | awk '{print $2}')
name="thyme-studio-$version-$(uname -m)-linux"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$here/layout.sh" "$bin" "$work/$name" ""
cat > "$work/$name/install.sh" <<'INSTALL'
#!/usr/bin/env bash
# Install under PREFIX (default ~/.local): ./install.sh [PREFIX]
set -euo pipefail
src=$(cd "$(dirname "$0")" && pwd)
prefix=${1:-$HOME/.local}
mkdir -p "$prefix"
cp -r "$src/bin" "$src/share" "$prefix/"
command -v update-desktop-database >/dev/null && update-desktop-database "$prefix/share/applications" || true
echo "installed: $prefix/bin/thyme-studio"
INSTALL
chmod +x "$work/$name/install.sh"
mkdir -p "$out"
tar -C "$work" -czf "$out/$name.tar.gz" "$name"
echo "$out/$name.tar.gz"
