#!/bin/bash
# dracut module "controller": the boot controller mounts the new root for root=controller.
#
# Settings, read from dracut.conf.d or the environment:
#   controller_binary      the compiled controller (default /usr/lib/controller/controller)
#   controller_config_dir  a config.d folder to bake into the initramfs as /etc/controller/config.d (optional)
#   controller_busybox     a busybox with ip and udhcpc for the network stage (default /bin/busybox,
#                          Debian's busybox-static)
#   controller_early_cpio  no (default) or yes: whether the controller binary goes into dracut's
#                          early, uncompressed cpio (see controller_install_binary)
#   controller_services    the services of the kernel command line's flags to install, words among
#                          "ssh" (Debian's dropbear-bin) and "lldpd" (Debian's lldpd); default none:
#                            controller_services+=" ssh lldpd "
#                          They are left out unless asked for because lldpd alone adds about 42 MB
#                          unpacked (Debian's lldpd links net-snmp, which pulls in libperl, libxml2
#                          and ICU's data), RAM and unpack time on every boot for a flag few boots
#                          use. A flag whose service is not installed says so at boot (and how to
#                          get it) and the boot goes on.
#
# Compression is dracut's own compress= (for the whole image); the default and the measured
# choice is dracut's zstd (-15). bench/RESULTS.md and docs/initramfs.md have the measurements:
# xz unpacks 13-18 s slower under TCG (3.4 s of CPU natively) for 8 MiB less than zstd -15;
# lz4 and zstd -3 are 25 and 10 MiB larger and unpack sooner under TCG, but natively zstd -15
# unpacks the whole image in about 0.3 s, so they win tenths of a second; zstd -19 saves 7 MiB (0.6 s at 100 Mbit/s)
# for builds several times as long. Fetching the image (PXE) costs 6.2 s at 100 Mbit/s and 0.6 s
# at 1 Gbit/s for the lean default of about 74 MiB.

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

# The services the kernel command line's flags run (controller/boot/services.ts), by flag,
# with the programs each needs and the Debian package that has them.
declare -A CONTROLLER_SERVICE_PROGRAMS=([ssh]="dropbear dropbearkey" [lldpd]="lldpd lldpcli")
declare -A CONTROLLER_SERVICE_PACKAGES=([ssh]="dropbear-bin" [lldpd]="lldpd")

# controller_services as a list of words, or an error naming the setting and what it expects.
controller_services_asked() {
    local word
    for word in ${controller_services:-}; do
        if [[ -z ${CONTROLLER_SERVICE_PROGRAMS[$word]:-} ]]; then
            derror "controller: Cannot read controller_services in dracut.conf.d: current value is \"${controller_services}\", expected words among: ssh lldpd"
            return 1
        fi
        echo "$word"
    done
}

# The services controller_services asks for, each with every program it needs on this machine.
# root logs in over ssh: it needs a passwd line whose password field is not empty, a shell that
# /etc/shells lists (dropbear refuses a login shell it does not find there) and a home.
# lldpd drops its privileges to _lldpd, chrooted in /run/lldpd (made at boot).
# /usr/lib/controller/services lists the services installed, one a line (controller/system/paths.ts
# INSTALLED_SERVICES): the controller reads it to tell a flag whose service was left out.
controller_install_services() {
    local service installed=()
    for service in $(controller_services_asked); do
        # shellcheck disable=SC2086  # a list of program names
        inst_multiple ${CONTROLLER_SERVICE_PROGRAMS[$service]} || return 1
        installed+=("$service")
    done
    inst_dir /usr/lib/controller
    : > "$initdir/usr/lib/controller/services"
    for service in ${installed[@]+"${installed[@]}"}; do
        echo "$service" >> "$initdir/usr/lib/controller/services"
    done
    [[ " ${installed[*]} " == *" ssh "* ]] && controller_install_root_login
    if [[ " ${installed[*]} " == *" lldpd "* ]]; then
        local line
        if line=$(getent passwd _lldpd); then
            grep -q '^_lldpd:' "$initdir/etc/passwd" || echo "$line" >> "$initdir/etc/passwd"
        fi
        if line=$(getent group _lldpd); then
            grep -q '^_lldpd:' "$initdir/etc/group" 2> /dev/null || echo "$line" >> "$initdir/etc/group"
        fi
    fi
    return 0
}

controller_install_root_login() {
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
}

# controller_early_cpio as yes or no, or an error naming the setting and what it expects.
controller_early_cpio_asked() {
    case ${controller_early_cpio:-no} in
        yes | no) echo "${controller_early_cpio:-no}" ;;
        *)
            derror "controller: Cannot read controller_early_cpio in dracut.conf.d: current value is \"$controller_early_cpio\", expected yes or no"
            return 1
            ;;
    esac
}

# The controller at /usr/bin/controller, without execute bits: dracut strips every executable
# ELF at the end of the build, and stripping a `bun build --compile` binary drops the program
# appended to it (what is left is plain bun). strip's `find -executable` passes it by; the
# mount hook gives the bits back before it runs the controller.
# With controller_early_cpio=yes it goes into dracut's early cpio instead, the uncompressed
# archive before the compressed one that otherwise holds early microcode: the kernel unpacks
# every archive of an initramfs into the same rootfs, and copies the binary out of an
# uncompressed archive instead of decompressing it. Not the default: the image grows by about
# 62 MiB (5.2 s more to fetch at 100 Mbit/s, 0.5 s at 1 Gbit/s), while zstd decompresses the
# whole image in about 0.3 s of CPU on a real machine; it pays only where the CPU is slow
# against the link or disk (emulated VMs). dracut has no setting for it: its early cpio is
# $early_cpio_dir/d, which it writes when create_early_cpio is yes (dracut 059,
# /usr/bin/dracut), and modules' install() runs in dracut's own shell, before that.
controller_install_binary() {
    local binary=$1 early
    early=$(controller_early_cpio_asked) || return 1
    if [[ $early == yes && -z ${early_cpio_dir:-} ]]; then
        dwarn "controller: no early cpio in this dracut run (early_microcode=no in dracut.conf.d?): the controller goes into the compressed archive, as with controller_early_cpio=no"
        early=no
    fi
    if [[ $early == yes ]]; then
        mkdir -p "$early_cpio_dir/d/usr/bin"
        cp "$binary" "$early_cpio_dir/d/usr/bin/controller"
        chmod 0644 "$early_cpio_dir/d/usr/bin/controller"
        create_early_cpio=yes
    else
        inst_simple "$binary" /usr/bin/controller
        chmod 0644 "${initdir}/usr/bin/controller"
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
    # a service asked for must be whole here: the build stops rather than make an initramfs
    # whose flag the person building it expects to work
    local services service program
    services=$(controller_services_asked) || return 1
    for service in $services; do
        for program in ${CONTROLLER_SERVICE_PROGRAMS[$service]}; do
            if ! find_binary "$program" > /dev/null; then
                derror "controller: Cannot install the $service service that controller_services asks for: no $program on this machine; install Debian's ${CONTROLLER_SERVICE_PACKAGES[$service]}, or take $service out of controller_services"
                return 1
            fi
        done
    done
    controller_early_cpio_asked > /dev/null || return 1
    # only when asked for: --add controller or add_dracutmodules+=" controller "
    return 255
}

# called by dracut
depends() {
    echo base
}

# called by dracut
installkernel() {
    # loop + squashfs for the system image, ext4 for the slots, virtio for VMs (no overlay: the
    # controller mounts none)
    hostonly='' instmods loop squashfs ext4 virtio_blk virtio_pci virtio_scsi
    # NICs for the network stage: udev loads whichever the machine has from its modalias;
    # instmods skips those the kernel lacks. (udhcpc's af_packet is built into Debian's kernels.)
    hostonly='' instmods virtio_net e1000 e1000e igb igc r8169 tg3 bnx2 ixgbe
}

# called by dracut
install() {
    local binary library
    binary=$(controller_binary_path)

    controller_install_binary "$binary" || return 1
    # ldd, not dracut-install's own resolver: that one misses libpthread for bun binaries
    for library in $(ldd "$binary" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p'); do
        inst_library "$library"
    done

    # OpenSSL's libcrypto: the controller dlopens it to hash images at its speed
    # (controller/system/hash-worker.ts; paths.ts LIBCRYPTO). Without it hashing falls
    # back to bun's own sha512, correct but about a third as fast.
    inst_libdir_file "libcrypto.so.3" || dwarn "controller: no libcrypto.so.3 on this machine: images will hash slower; install Debian's libssl3"

    # every tool the controller runs (controller/system/paths.ts TOOLS), and those of
    # the module's own scripts (chmod in the hooks, umount in controller-shutdown.sh)
    inst_multiple chmod cp e2fsck e2label fsfreeze modprobe mount setsid sh udevadm umount xz

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

    controller_install_services || return 1

    inst_hook cmdline 90 "$moddir/controller-cmdline.sh"
    inst_hook mount 90 "$moddir/controller-mount.sh"
    inst_hook pre-pivot 90 "$moddir/controller-pre-pivot.sh"

    if dracut_module_included "systemd"; then
        inst_script "$moddir/controller-generator.sh" "$systemdutildir/system-generators/controller-generator"
        inst_simple "$moddir/initrd-switch-root.conf" "$systemdsystemunitdir/initrd-switch-root.service.d/90-controller.conf"
    fi
}
