#!/bin/sh
# The booted system's last step at shutdown: /run/initramfs/shutdown, put there at boot by
# controller-pre-pivot.sh with the static busybox it runs on.
#
# The running system cannot unmount the slot partition it was booted from: its root is the
# slot's system image, loop-mounted from a file on the slot. dracut's answer, which this
# follows, is a small root in /run/initramfs: at the very end of a shutdown, when this file
# exists, systemd-shutdown pivots into /run/initramfs (the old root at /oldroot, /dev, /proc,
# /sys and /run bound in) and runs it with its verb (poweroff, reboot, halt or kexec) as $1.
# From here nothing holds the old root: it is unmounted with everything on it (tmpfs /etc,
# overmounts), which frees its loop device, and then the slot partition and BOOTEXT.
#
# It runs as PID 1: it must never exit. Whatever it cannot unmount it remounts read-only,
# and it always ends in the verb.

export PATH=/bin
# systemd-shutdown gave it the console already; a caller that did not is covered too
exec < /dev/console > /dev/console 2>&1
verb=${1:-poweroff}

say() {
    echo "controller: shutdown: $*"
}

[ -e /proc/self ] || mount -t proc proc /proc

# Mount points strictly below $1, deepest first; of two on the same path, the later (the
# upper) first. (Paths with blanks, which /proc/mounts escapes, are not expected here.)
mounts_below() {
    awk -v top="$1" 'index($2, top "/") == 1 { print length($2), NR, $2 }' /proc/mounts \
        | sort -k1,1nr -k2,2nr | cut -d' ' -f3
}

# The processes that have their root, working folder, program or an open file below $1.
say_holders() {
    for proc in /proc/[0-9]*; do
        [ "${proc#/proc/}" = "$$" ] && continue
        if ls -l "$proc/root" "$proc/cwd" "$proc/exe" "$proc/fd" 2> /dev/null | grep -q -e " -> $1/" -e " -> $1\$"; then
            say "  $1 is held by process ${proc#/proc/}: $(tr '\0' ' ' < "$proc/cmdline")"
        fi
    done
}

# Unmounts $1 (and frees its loop device); when it is busy, says by what and remounts it
# read-only, so that nothing is left to write.
unmount() {
    if umount -d "$1" 2> /dev/null; then
        say "unmounted $1"
        return
    fi
    if mount -o remount,ro "$1" 2> /dev/null; then
        say "Cannot unmount $1: it is busy; remounted it read-only"
    else
        say "Cannot unmount $1 or remount it read-only"
    fi
    say_holders "$1"
}

# kexec needs the kexec binary and its libraries, which this environment lacks: run the old
# root's own. systemd-shutdown has already remounted read-only what it could not unmount.
if [ "$verb" = kexec ]; then
    sync
    chroot /oldroot kexec -e
    say "kexec -e failed; rebooting instead"
    verb=reboot
fi

# /run (with the slot and BOOTEXT mounted below it) and the API file systems move out of the
# old root, so the old root can go first: the slot stays busy as long as the image is mounted.
mkdir -p /oldsys
for dir in dev proc sys run; do
    if grep -q " /oldroot/$dir " /proc/mounts; then
        mkdir -p "/oldsys/$dir"
        mount -o move "/oldroot/$dir" "/oldsys/$dir" || say "Cannot move /oldroot/$dir out of the old root"
    fi
done

for target in $(mounts_below /oldroot); do
    unmount "$target"
done
unmount /oldroot
for target in $(mounts_below /oldsys/run); do
    unmount "$target"
done
sync

case $verb in
    reboot) reboot -f ;;
    halt) halt -f ;;
    *) poweroff -f ;;
esac
# Only if that failed: ask the kernel directly; PID 1 must not exit.
say "$verb -f failed; asking the kernel"
echo o > /proc/sysrq-trigger
while :; do sleep 60; done
