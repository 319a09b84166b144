#!/bin/sh
# Run by busybox udhcpc, which the controller's network stage starts
# (controller/boot/network.ts), at every DHCP event: $1 names the event and the
# lease comes in the environment ($interface, $ip, $subnet, $router, $dns,
# $hostname, $domain, $serverid, $lease). It configures the interface and
# records the lease in /run/controller/network/IF.lease for the controller.
#
# POSIX sh and busybox applets only, through the one path the dracut module
# installs busybox at (controller/system/paths.ts TOOLS.busybox), so the script does
# the same in dracut's shell and systemd initrds whatever other tools they hold.
# Not busybox's own sh on the first line: dracut would then try to copy
# /usr/lib/controller/busybox from the build machine, where it is not.

bb=/usr/lib/controller/busybox
# controller/system/paths.ts NETWORK_DIR
dir=/run/controller/network
lease_file="$dir/$interface.lease"

# stdout: the controller shows it when the lease file is missing; udhcpc's own messages go to stderr
say() {
    echo "controller-udhcpc: $interface: $*"
}

# The prefix length of a netmask (255.255.255.0: 24); fails for anything that is not one.
prefix_of() {
    set -f
    old_ifs=$IFS
    IFS=.
    # shellcheck disable=SC2086 # split at the dots on purpose
    set -- $1
    IFS=$old_ifs
    set +f
    [ $# -eq 4 ] || return 1
    bits=0
    tail=0
    for octet in "$@"; do
        # after the first octet that is not 255 only zeros may follow
        if [ $tail -eq 1 ] && [ "$octet" != 0 ]; then return 1; fi
        case $octet in
            255) bits=$((bits + 8)); continue ;;
            254) bits=$((bits + 7)) ;;
            252) bits=$((bits + 6)) ;;
            248) bits=$((bits + 5)) ;;
            240) bits=$((bits + 4)) ;;
            224) bits=$((bits + 3)) ;;
            192) bits=$((bits + 2)) ;;
            128) bits=$((bits + 1)) ;;
            0) ;;
            *) return 1 ;;
        esac
        tail=1
    done
    echo "$bits"
}

# KEY=VALUE, the value on one line: DHCP options are the server's bytes, and a
# newline in a host name must not start a line of its own in the lease file.
field() {
    printf '%s=%s\n' "$1" "$(printf '%s' "$2" | $bb tr -d '\001-\037\177')"
}

configure() {
    # no subnet, or a mask with holes: the address alone, and the router reached as a host route
    prefix=$(prefix_of "${subnet:-}") || prefix=32
    $bb ip -4 addr flush dev "$interface"
    if ! $bb ip addr add "$ip/$prefix" broadcast + dev "$interface"; then
        say "cannot add the address $ip/$prefix"
        return 1
    fi

    # shellcheck disable=SC2086 # $router is a space-separated list; the first one is the gateway
    set -- ${router:-}
    if [ -n "${1:-}" ]; then
        [ "$prefix" -eq 32 ] && $bb ip route replace "$1" dev "$interface"
        if ! $bb ip route replace default via "$1" dev "$interface"; then
            say "cannot add the default route via $1"
            return 1
        fi
    fi

    # no DNS servers offered: whatever /etc/resolv.conf says stays
    if [ -n "${dns:-}" ]; then
        {
            [ -n "${domain:-}" ] && echo "search $domain"
            for server in $dns; do echo "nameserver $server"; done
        } > /etc/resolv.conf.tmp && $bb mv -f /etc/resolv.conf.tmp /etc/resolv.conf
    fi

    # the lease file comes last: when it is there, the interface is configured
    $bb mkdir -p "$dir" || return 1
    {
        field interface "$interface"
        field ip "$ip"
        field subnet "${subnet:-}"
        field router "${router:-}"
        field dns "${dns:-}"
        field hostname "${hostname:-}"
        field domain "${domain:-}"
        field serverid "${serverid:-}"
        field lease "${lease:-}"
    } > "$lease_file.tmp" && $bb mv -f "$lease_file.tmp" "$lease_file"
}

case $1 in
    deconfig)
        # udhcpc starts with this, and sends it again when a lease is lost
        $bb rm -f "$lease_file"
        $bb ip -4 addr flush dev "$interface"
        $bb ip link set "$interface" up
        ;;
    bound | renew)
        # udhcpc -q exits after its first lease, so renew only comes from a udhcpc run by hand
        configure || exit 1
        ;;
    leasefail | nak)
        # udhcpc tries again or gives up by itself; the controller says what came of it
        ;;
esac
exit 0
