#!/bin/bash
# dracut module "controller": the boot controller mounts the new root for root=controller.
#
# Settings, read from dracut.conf.d or the environment:
#   controller_binary      the compiled controller (default /usr/lib/controller/controller)
#   controller_config_dir  a config.d folder to bake into the initramfs as /etc/controller/config.d (optional)

controller_binary_path() {
    echo "${controller_binary:-/usr/lib/controller/controller}"
}

# called by dracut
check() {
    local binary
    binary=$(controller_binary_path)
    if [[ ! -f $binary ]]; then
        derror "controller: no controller binary at $binary (set controller_binary= in dracut.conf.d)"
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

    # every tool the controller runs (controller/paths.ts TOOLS)
    inst_multiple blkid chmod cp modprobe mount setsid sh udevadm umount xz

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

    inst_hook cmdline 90 "$moddir/controller-cmdline.sh"
    inst_hook mount 90 "$moddir/controller-mount.sh"

    if dracut_module_included "systemd"; then
        inst_script "$moddir/controller-generator.sh" "$systemdutildir/system-generators/controller-generator"
        inst_simple "$moddir/initrd-switch-root.conf" "$systemdsystemunitdir/initrd-switch-root.service.d/90-controller.conf"
    fi
}
