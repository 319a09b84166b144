// Every path and tool name the controller touches, in one place, so a reader can
// see at a glance what the controller reads, writes and runs.

/** Where dracut expects the new root; both dracut's shell init and its systemd units use /sysroot. */
export const NEWROOT = "/sysroot";

/** Every dracut initramfs has it (systemd reads it to know it runs in an initrd); a booted system does not. */
export const INITRD_RELEASE = "/etc/initrd-release";

/** The kernel command line. */
export const PROC_CMDLINE = "/proc/cmdline";

/** The controller's own process: its field starttime says when bun started, before the bundle was loaded. */
export const PROC_SELF_STAT = "/proc/self/stat";

/** The mounts this process sees, with each mount's own flags (nosuid, nodev, ...): a remount keeps them. */
export const PROC_SELF_MOUNTINFO = "/proc/self/mountinfo";

/** Where mount(8) keeps the userspace options of its mounts, such as x-initrd.mount. */
export const RUN_MOUNT_UTAB = "/run/mount/utab";
/** libmount's lock on utab: whoever changes utab holds flock(LOCK_EX) on this file. */
export const RUN_MOUNT_UTAB_LOCK = "/run/mount/utab.lock";

/** The kernel log; every console line is copied here. */
export const DEV_KMSG = "/dev/kmsg";

/** Its first number is the console log level: kernel-log lines below it also reach the console. */
export const PROC_PRINTK = "/proc/sys/kernel/printk";

/** The running kernel's release (uname -r) and build (uname -v): which kernel runs, against the one a slot's image carries. */
export const PROC_KERNEL_OSRELEASE = "/proc/sys/kernel/osrelease";
export const PROC_KERNEL_VERSION = "/proc/sys/kernel/version";

/** "b" written here resets the machine at once: the reboot into a new bootloader entry. */
export const PROC_SYSRQ_TRIGGER = "/proc/sysrq-trigger";

/** MemAvailable here says whether a diskless boot's image fits in RAM. */
export const PROC_MEMINFO = "/proc/meminfo";

/** The CPU's feature flags: whether it hashes sha256 in hardware decides which chunk hashes an install checks (update/chunks.ts). */
export const PROC_CPUINFO = "/proc/cpuinfo";

/** The config.d that the dracut module bakes into the initramfs. */
export const INITRAMFS_CONFIG_DIR = "/etc/controller/config.d";

/** Everything the controller leaves for the booted system lives under here; /run survives switch_root. */
export const RUN_DIR = "/run/controller";

/** The boot report, JSON, for the booted system and `controller status`. */
export const REPORT_PATH = `${RUN_DIR}/report.json`;

/**
 * The booted system's reports to the fleet server wait here as files, one envelope each, until
 * they are sent (fleet/report-sender.ts). On /run's tmpfs: what is still here at power-off is lost.
 */
export const FLEET_OUTBOX_DIR = `${RUN_DIR}/fleet-outbox`;
/** Written once this boot's report is in the outbox, so a restarted sender does not queue it again. */
export const FLEET_BOOT_QUEUED = `${RUN_DIR}/fleet-boot-queued`;

/** Handoff for the systemd initrd: initrd-switch-root.service reads CONTROLLER_INIT from here (see dracut-module). */
export const HANDOFF_ENV_PATH = `${RUN_DIR}/handoff.env`;

/** Handoff for dracut's shell init: its init.sh reads real_init= through getarg, which includes /etc/cmdline.d. */
export const HANDOFF_CMDLINE_PATH = "/etc/cmdline.d/95-controller-init.conf";

/** Mount points the controller owns. They sit under /run, so they move into the booted system with it. */
/** Slot partitions are mounted at SLOT_MOUNT/LABEL, each at its own place so a failed one needs no unmount. */
export const SLOT_MOUNT = `${RUN_DIR}/slots`;
export const BOOTEXT_MOUNT = `${RUN_DIR}/bootext`;
export const STAGING_DIR = `${RUN_DIR}/staging`;
export const OVERMOUNT_IMAGE_DIR = `${RUN_DIR}/overmount-images`;
/** The spare slot is mounted here, read-write, while an update is written into it. */
export const INSTALL_MOUNT = `${RUN_DIR}/install`;
/** A slot's kernel and initrd, copied out of its image and checked, for kexec to load. */
export const KERNEL_SWITCH_DIR = `${RUN_DIR}/kernel-switch`;
/** Slots are mounted here, read-only and one at a time, to read what they record before the boot decides. */
export const INSPECT_MOUNT = `${RUN_DIR}/inspect`;

/** The machine's systemd machine-id, kept on BOOTEXT (relative to its root) so it stays the same across boots and updates. */
export const BOOTEXT_MACHINE_ID = "machine-id";
/** Where systemd reads the machine-id, in the new root: on the /etc tmpfs the controller puts the kept one there. */
export const ETC_MACHINE_ID = "/etc/machine-id";

/** Network stage: udhcpc's script writes the lease of interface IF to NETWORK_DIR/IF.lease. */
export const NETWORK_DIR = `${RUN_DIR}/network`;
/** Run by busybox udhcpc at every DHCP event; dracut-module/90controller/controller-udhcpc.sh. */
export const UDHCPC_SCRIPT = "/usr/lib/controller/controller-udhcpc.sh";
/** One folder per network interface the kernel knows, with files such as type, address and carrier. */
export const SYS_CLASS_NET = "/sys/class/net";
/** The kernel's host name: "(none)" until someone sets it. */
export const PROC_HOSTNAME = "/proc/sys/kernel/hostname";

/**
 * The services the dracut module installed, one flag a line (ssh, lldpd): it installs only those
 * its controller_services setting asks for (dracut-module/90controller/module-setup.sh).
 */
export const INSTALLED_SERVICES = "/usr/lib/controller/services";
/** Services the kernel command line starts (ssh, lldpd): one log file each, NAME.log. */
export const SERVICES_LOG_DIR = `${RUN_DIR}/services`;
/**
 * dropbear's host key, made fresh on every boot. In the initramfs's own /etc, not
 * under /run: the private key is freed with the initramfs at switch_root.
 */
export const DROPBEAR_HOST_KEY = "/etc/dropbear/dropbear_ed25519_host_key";
/** root's home in the initramfs (the module's /etc/passwd says so) and the keys dropbear lets in. */
export const ROOT_HOME = "/root";
export const ROOT_AUTHORIZED_KEYS = `${ROOT_HOME}/.ssh/authorized_keys`;
/** lldpd's privilege-separation chroot (Debian builds it with this path); it must exist before lldpd starts. */
export const LLDPD_CHROOT = "/run/lldpd";
/** `controller continue` writes it; the wait stage, polling, then goes on to the handoff. */
export const CONTINUE_FILE = `${RUN_DIR}/continue`;
/** command_url=: the script as fetched (and verified) and everything it printed. */
export const COMMAND_DIR = `${RUN_DIR}/command`;
export const COMMAND_SCRIPT = `${COMMAND_DIR}/script`;
export const COMMAND_OUTPUT = `${COMMAND_DIR}/output`;

/** One entry per block device, disks and partitions; its file dev holds MAJOR:MINOR. */
export const SYS_CLASS_BLOCK = "/sys/class/block";

/** udev's database: bMAJOR:MINOR holds what udev's blkid probe found on that block device (ID_FS_TYPE, ID_FS_LABEL_ENC). */
export const UDEV_DATA = "/run/udev/data";

/** One folder per kernel module loaded (and per built-in one with parameters), named with underscores. */
export const SYS_MODULE = "/sys/module";

/** Kernel modules the controller needs; modprobe is harmless when one is built in. */
export const KERNEL_MODULES = ["loop", "squashfs", "ext4"] as const;

/**
 * The files of one Heddle update, BOOTEXT/heddle.updates_dir/NAME/FILE: what kexec boots,
 * the checksums and their detached signature, and BOOT, written last to say the copy is complete.
 */
export const HEDDLE_UPDATE_FILES = {
  kernel: "kernel",
  initrd: "initrd",
  cmdline: "cmdline",
  sums: "SHA512SUMS",
  signature: "SHA512SUMS.sig",
  boot: "BOOT",
} as const;

/** External tools, by name: they are looked up on PATH inside the initramfs, where the dracut module installs them. */
export const TOOLS = {
  /**
   * The host's static busybox, for ip and udhcpc; a full path, not on PATH, so it never
   * shadows the initramfs's own tools. controller-udhcpc.sh and module-setup.sh repeat it.
   */
  busybox: "/usr/lib/controller/busybox",
  cp: "cp",
  e2fsck: "e2fsck",
  e2label: "e2label",
  /** util-linux: freezing an ext4 filesystem writes its journal to the home blocks, which is what GRUB reads (boot/kernel-entries.ts) */
  fsfreeze: "fsfreeze",
  kexec: "kexec",
  /** Debian's dropbear-bin, for the ssh flag; the dracut module installs them when the build machine has them. */
  dropbear: "dropbear",
  dropbearkey: "dropbearkey",
  /** Debian's lldpd, for the lldpd flag; lldpcli asks it what it advertises. */
  lldpd: "lldpd",
  lldpcli: "lldpcli",
  mount: "mount",
  modprobe: "modprobe",
  setsid: "setsid",
  shell: "sh",
  udevadm: "udevadm",
  /** squashfs-tools, on the workstation only: `publish` and `verify` look inside an image with it (never in the initramfs). */
  unsquashfs: "unsquashfs",
  xz: "xz",
} as const;

/**
 * OpenSSL's libcrypto, loaded with dlopen to hash images at its speed
 * (hash-worker.ts); the dracut module installs it, the dynamic loader finds it.
 */
export const LIBCRYPTO = "libcrypto.so.3";

/**
 * A mount the booted system must leave alone until its final shutdown: the slot holds the
 * file its root is loop-mounted from, BOOTEXT those of squashfs overmounts. mount(8) keeps
 * this option in /run/mount/utab; the booted system's systemd reads it there and then leaves
 * the mount out of umount.target, where unmounting it could only fail ("Failed unmounting"),
 * to the shutdown environment in /run/initramfs (dracut-module/90controller/controller-shutdown.sh).
 */
export const INITRD_MOUNT_OPTION = "x-initrd.mount";
