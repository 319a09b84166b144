#!/bin/sh
# dracut mount hook (sourced by dracut, possibly several times, until $NEWROOT is mounted).
type ismounted > /dev/null 2>&1 || . /lib/dracut-lib.sh

if [ "$root" = "controller" ] && ! ismounted "$NEWROOT"; then
    # installed without execute bits so that dracut's strip leaves it alone (see module-setup.sh)
    chmod 0755 /usr/bin/controller
    if ! /usr/bin/controller boot; then
        emergency_shell -n controller "The controller found nothing it can boot; the messages above and /run/controller/report.json say why."
    fi
fi
