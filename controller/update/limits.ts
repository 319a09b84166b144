// The sizes a machine accepts for the signed content it fetches beside the manifest: the boot
// refuses anything larger, and `controller sign` refuses to sign what a machine would refuse.

/** A script from command_url= larger than this is refused: a command is a script, not a payload. */
export const COMMAND_SCRIPT_MAX_BYTES = 1024 * 1024;

/** An authorized_keys file from ssh_keys_url= larger than this is refused: a few hundred keys fit. */
export const SSH_KEYS_MAX_BYTES = 64 * 1024;

/** A Heddle update's SHA512SUMS larger than this is refused: a few lines name its files. */
export const SUMS_MAX_BYTES = 64 * 1024;
