#!/bin/bash
# dracut module "controller": the boot controller mounts the new root for root=controller.
#
# Settings, read from dracut.conf.d or the environment:
#   controller_binary      the compiled controller (default /usr/lib/controller/controller)
#   controller_config_dir  a config.d folder to bake into the initramfs as /etc/controller/config.d (optional)
#   controller_busybox     a busybox with ip and udhcpc for the network stage (default /bin/busybox,
#                          Debian's busybox-static)

controller_binary_path() {
    echo "${controller_binary:-/usr/lib/controller/controller}"
}

controller_busybox_path() {
    echo "${controller_busybox:-/bin/busybox}"
}

# The value of a config.d key as the boot resolves it, asked of the controller
# itself, so this script never reads TOML or repeats a default.
controller_config_get() {
    local dir=${controller_config_dir:-}
    if [[ -z $dir ]]; then
        # no config.d of our own: an empty folder gives the built-in defaults
        dir="${DRACUT_TMPDIR:?}/controller-config.d"
        mkdir -p "$dir"
    fi
    "$(controller_binary_path)" config-get "$dir" "$1"
}

# The services of the ssh and lldpd flags (controller/boot/services.ts): Debian's dropbear-bin
# and lldpd, when this machine has them; without them those flags say so at boot and the
# boot goes on. root logs in over ssh: it needs a passwd line whose password field is not
# empty, a shell that /etc/shells lists (dropbear refuses a login shell it does not find
# there) and a home.
# lldpd drops its privileges to _lldpd, chrooted in /run/lldpd (made at boot).
controller_install_services() {
    if [[ -x /usr/sbin/dropbear && -x /usr/bin/dropbearkey ]]; then
        inst_multiple dropbear dropbearkey
    else
        dwarn "controller: no dropbear or dropbearkey on this machine: the ssh flag will not work; install Debian's dropbear-bin"
    fi
    if [[ -x /usr/sbin/lldpd && -x /usr/sbin/lldpcli ]]; then
        inst_multiple lldpd lldpcli
    else
        dwarn "controller: no lldpd or lldpcli on this machine: the lldpd flag will not work; install Debian's lldpd"
    fi
    # dracut's base module writes root's line after this module: with an empty password field
    # in an image that is not host-only, and dropbear refuses every login, keys too, to an
    # account with an empty password. A locked root ("*") means what dracut means there:
    # sulogin -e, the systemd initrd's emergency shell, opens a shell for a locked root
    # without asking. A host-only image keeps dracut's line and the host's password.
    if [[ -z ${hostonly:-} ]]; then
        grep -q '^root:' "$initdir/etc/passwd" 2> /dev/null || echo 'root:*:0:0::/root:/bin/sh' >> "$initdir/etc/passwd"
    fi
    local shell
    shell=$(sed -n 's/^root:[^:]*:[^:]*:[^:]*:[^:]*:[^:]*:\(.*\)$/\1/p' "$initdir/etc/passwd" | head -n 1)
    [[ -n $shell ]] || shell=/bin/sh
    grep -qx "$shell" "$initdir/etc/shells" 2> /dev/null || echo "$shell" >> "$initdir/etc/shells"
    inst_dir /root
    chmod 0700 "$initdir/root"
    local line
    if line=$(getent passwd _lldpd); then
        grep -q '^_lldpd:' "$initdir/etc/passwd" || echo "$line" >> "$initdir/etc/passwd"
    fi
    if line=$(getent group _lldpd); then
        grep -q '^_lldpd:' "$initdir/etc/group" 2> /dev/null || echo "$line" >> "$initdir/etc/group"
    fi
}

# called by dracut
check() {
    local binary
    binary=$(controller_binary_path)
    if [[ ! -f $binary ]]; then
        derror "controller: no controller binary at $binary (set controller_binary= in dracut.conf.d)"
        return 1
    fi
    # here, not in install(): dracut goes on when install() fails, but refuses to build
    # without a module that was asked for and whose check fails
    local busybox applets
    busybox=$(controller_busybox_path)
    applets=$([[ -x $busybox ]] && "$busybox" --list 2> /dev/null)
    if ! grep -qx udhcpc <<< "$applets" || ! grep -qx ip <<< "$applets"; then
        derror "controller: Cannot install the network stage's tools: no busybox with the ip and udhcpc applets at $busybox, expected Debian's busybox-static there (or set controller_busybox= in dracut.conf.d)"
        return 1
    fi
    # only when asked for: --add controller or add_dracutmodules+=" controller "
    return 255
}

# called by dracut
depends() {
    echo base
}

# called by dracut
installkernel() {
    # loop + squashfs for the system image, ext4 for the slots, virtio for VMs
    hostonly='' instmods loop squashfs ext4 overlay virtio_blk virtio_pci virtio_scsi
    # NICs for the network stage: udev loads whichever the machine has from its modalias;
    # instmods skips those the kernel lacks. (udhcpc's af_packet is built into Debian's kernels.)
    hostonly='' instmods virtio_net e1000 e1000e igb igc r8169 tg3 bnx2 ixgbe
}

# called by dracut
install() {
    local binary library
    binary=$(controller_binary_path)

    inst_simple "$binary" /usr/bin/controller
    # ldd, not dracut-install's own resolver: that one misses libpthread for bun binaries
    for library in $(ldd "$binary" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p'); do
        inst_library "$library"
    done
    # dracut strips every executable ELF at the end of the build, and stripping a
    # `bun build --compile` binary drops the program appended to it: what is left
    # is plain bun. Without execute bits strip's `find -executable` passes it by;
    # the mount hook gives them back before it runs the controller.
    chmod 0644 "${initdir}/usr/bin/controller"

    # OpenSSL's libcrypto: the controller dlopens it to hash images at its speed
    # (controller/system/sha512-worker.ts; paths.ts LIBCRYPTO). Without it hashing falls
    # back to bun's own sha512, correct but about a third as fast.
    inst_libdir_file "libcrypto.so.3" || dwarn "controller: no libcrypto.so.3 on this machine: images will hash slower; install Debian's libssl3"

    # every tool the controller runs (controller/system/paths.ts TOOLS)
    inst_multiple blkid chmod cp e2fsck e2label fsfreeze modprobe mount setsid sh udevadm umount xz

    # Heddle updates boot with kexec (Debian's kexec-tools). Optional: without it the
    # controller says it cannot load the update's kernel and boots the installed system.
    if find_binary kexec > /dev/null; then
        inst_multiple kexec
    else
        dwarn "controller: no kexec on this machine: Heddle updates (BOOTEXT/updates) will not boot; install Debian's kexec-tools"
    fi

    # The network stage runs busybox's ip and udhcpc: one static binary that behaves the same
    # in both dracut flavours (controller/boot/network.ts says why not dracut's network modules).
    # Its own place, not on PATH, so its applets never stand in for the initramfs's tools.
    # The paths are controller/system/paths.ts TOOLS.busybox and UDHCPC_SCRIPT.
    inst_binary "$(controller_busybox_path)" /usr/lib/controller/busybox
    inst_simple "$moddir/controller-udhcpc.sh" /usr/lib/controller/controller-udhcpc.sh
    chmod 0755 "${initdir}/usr/lib/controller/controller-udhcpc.sh"

    # The booted system's shutdown environment: the pre-pivot hook copies this busybox and
    # controller-shutdown.sh to /run/initramfs, from where the slot can be unmounted.
    inst_simple "$moddir/controller-shutdown.sh" /usr/lib/controller/shutdown

    if [[ -n ${controller_config_dir:-} ]]; then
        if [[ ! -d $controller_config_dir ]]; then
            derror "controller: controller_config_dir=$controller_config_dir is not a folder"
            return 1
        fi
        local file
        inst_dir /etc/controller/config.d
        for file in "$controller_config_dir"/*.toml; do
            [[ -f $file ]] && inst_simple "$file" "/etc/controller/config.d/${file##*/}"
        done
    fi

    # The CA bundle for https update servers, at the path update.ca_bundle names inside the
    # initramfs, copied from the same path on this machine (a plain file, whatever links lead there).
    local ca_bundle
    if ! ca_bundle=$(controller_config_get update.ca_bundle); then
        dwarn "controller: Cannot ask $(controller_binary_path) for update.ca_bundle (see above): no CA bundle in the initramfs, https update servers will fail"
    elif [[ ! -f $ca_bundle ]]; then
        dwarn "controller: no CA bundle at $ca_bundle (update.ca_bundle) on this machine: https update servers will fail, plain http still works; install Debian's ca-certificates"
    else
        inst_simple "$(readlink -f "$ca_bundle")" "$ca_bundle"
    fi

    controller_install_services

    inst_hook cmdline 90 "$moddir/controller-cmdline.sh"
    inst_hook mount 90 "$moddir/controller-mount.sh"
    inst_hook pre-pivot 90 "$moddir/controller-pre-pivot.sh"

    if dracut_module_included "systemd"; then
        inst_script "$moddir/controller-generator.sh" "$systemdutildir/system-generators/controller-generator"
        inst_simple "$moddir/initrd-switch-root.conf" "$systemdsystemunitdir/initrd-switch-root.service.d/90-controller.conf"
    fi
}
