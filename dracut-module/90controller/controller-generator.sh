#!/bin/sh
# systemd generator. systemd's fstab generator turns any root= into a
# sysroot.mount, and for root=controller that mount can only fail and take the
# boot to emergency mode. The controller's mount hook mounts /sysroot instead,
# so mask the unit (the early folder outranks the fstab generator's).
type getarg > /dev/null 2>&1 || . /lib/dracut-lib.sh

if [ "$(getarg root=)" = "controller" ] && [ -n "$2" ]; then
    ln -sf /dev/null "$2/sysroot.mount"
fi
