// The slot expected to boot, mounted once. The slots stage mounts its
// partition read-only where the mounts stage wants it (slotMountRequest:
// SLOT_MOUNT/LABEL, x-initrd.mount) to read its record; the health stage
// checks its image there and the mounts stage takes the mount over, where
// each of them used to mount and unmount it again. Anything written to the
// partition needs it unmounted first (a new label moves its mount point, and
// a read-write mount cannot share the partition with a read-only one), so
// writeLabels lets it go before it relabels it, and the mounts stage lets it
// go when another slot boots.

import { slotMountRequest } from "../plans/mounts.ts";
import type { MountRequest, System } from "../system/system.ts";

interface Kept {
  readonly device: string;
  readonly request: MountRequest & { readonly kind: "filesystem" };
  takenOver: boolean;
}

export class KeptSlotMount {
  #kept: Kept | undefined;

  constructor(private readonly system: System) {}

  /** Mounts the slot read-only at its mount point and keeps it there; returns the mount point. Throws as a mount does. */
  async mount(slot: { readonly device: string; readonly label: string; readonly fsType: string }): Promise<string> {
    if (this.#kept !== undefined) throw new Error(`Cannot keep ${slot.device} mounted: ${this.#kept.device} is kept mounted already`);
    const request = slotMountRequest(slot);
    await this.system.mkdir(request.target);
    await this.system.mount(request);
    this.#kept = { device: slot.device, request, takenOver: false };
    return request.target;
  }

  /** Where `device` is mounted read-only, when it is the slot kept mounted. */
  dirOf(device: string): string | undefined {
    return this.#kept?.device === device ? this.#kept.request.target : undefined;
  }

  /** The mount of `device`, when it is kept, for the mounts stage to record as its own; it stays mounted from then on. */
  takeOver(device: string): MountRequest | undefined {
    if (this.#kept?.device !== device) return undefined;
    this.#kept.takenOver = true;
    return this.#kept.request;
  }

  /** Unmounts `device` when it is the slot kept mounted, before anything is written to it. */
  async release(device: string): Promise<void> {
    if (this.#kept?.device !== device) return;
    const { target } = this.#kept.request;
    this.#kept = undefined;
    await this.system.unmount(target);
  }

  /** Unmounts the kept slot unless the mounts stage took it over: another slot boots. */
  async releaseUnused(): Promise<void> {
    if (this.#kept !== undefined && !this.#kept.takenOver) await this.release(this.#kept.device);
  }
}
