#!/bin/sh
# dracut pre-pivot hook: leaves the booted system a shutdown environment in /run/initramfs,
# the static busybox and controller-shutdown.sh as /run/initramfs/shutdown (see there why).
# systemd-shutdown runs it at the end of every shutdown; it costs the busybox's size in RAM
# (about 2 MB), where dracut's own way, unpacking the whole initramfs there again, would cost
# the initramfs's (about 90 MB, most of it the controller). A /run/initramfs/bin/sh also tells
# the booted system's dracut-shutdown.service, if it has one, that there is nothing to unpack.
type getarg > /dev/null 2>&1 || . /lib/dracut-lib.sh

if [ "$(getarg root=)" = "controller" ] && ismounted "$NEWROOT" && [ ! -e /run/initramfs/shutdown ]; then
    # A tmpfs of its own: dracut's shell init mounts /run noexec, and systemd-shutdown runs
    # the shutdown only if it may execute it (and leaves mounts below /run/initramfs alone).
    # What dracut already keeps in /run/initramfs (its log, .need_shutdown) is copied over.
    if ! ismounted /run/initramfs; then
        mkdir -p /run/initramfs /run/controller
        rm -rf /run/controller/initramfs-before
        cp -a /run/initramfs /run/controller/initramfs-before
        mount -t tmpfs -o mode=0755,nodev,nosuid controller-shutdown /run/initramfs
        cp -a /run/controller/initramfs-before/. /run/initramfs/
        rm -rf /run/controller/initramfs-before
    fi
    mkdir -p /run/initramfs/bin /run/initramfs/oldroot /run/initramfs/dev /run/initramfs/proc /run/initramfs/sys /run/initramfs/run
    cp /usr/lib/controller/busybox /run/initramfs/bin/busybox
    # Its applets as hard links, made by busybox itself in one process: a loop of about 400
    # `ln` runs took 14 s under TCG. Hard links, since symlinks to /run/initramfs/bin/busybox
    # would dangle once systemd-shutdown has pivoted into /run/initramfs.
    /run/initramfs/bin/busybox --install /run/initramfs/bin
    cp /usr/lib/controller/shutdown /run/initramfs/shutdown
    chmod 0755 /run/initramfs/shutdown
fi
