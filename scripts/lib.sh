# Shared by the scripts in this folder: where things are and how to say things.
# shellcheck shell=bash

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD="$REPO/build"
BUN="$REPO/node_modules/.bin/bun"
CONTROLLER="$REPO/dist/controller"
KERNEL_DIR="$BUILD/kernel"
INITRAMFS_DIR="$BUILD/initramfs"
IMAGES_DIR="$BUILD/images"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# true when $1 is missing or older than any of the other files/folders given
stale() {
    local target=$1; shift
    [[ -e $target ]] || return 0
    [[ -n $(find "$@" -newer "$target" -print -quit 2>/dev/null) ]]
}

# the kernel release unpacked by scripts/fetch-kernel, e.g. 6.1.0-56-amd64
kernel_release() {
    local modules=("$KERNEL_DIR"/root/lib/modules/*)
    [[ -d ${modules[0]} ]] || die "no kernel in $KERNEL_DIR: run scripts/fetch-kernel"
    basename "${modules[0]}"
}
