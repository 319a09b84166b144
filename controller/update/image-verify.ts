// Verifying an image from where it was written, piece by piece (chunks.ts):
// while it downloads, as each piece is complete; before a resumed download,
// the pieces a power cut left; and a whole image on a slot. Hashes run through
// the System port's hashOfRange, on every CPU at once.

import type { System } from "../system/system.ts";
import { describePiece, end, type Piece, piecesWithin, type SignedImage, verificationPieces } from "./chunks.ts";

/** A piece that did not verify, said as a sentence without its subject: "has sha256 …, the manifest signs …". */
async function checkPiece(system: System, path: string, piece: Piece, pieces: readonly Piece[]): Promise<string | undefined> {
  let actual: string;
  try {
    actual = await system.hashOfRange(path, piece.offset, piece.length, piece.algorithm);
  } catch (error) {
    return `${describePiece(piece, pieces)} cannot be read back: ${(error as Error).message}`;
  }
  if (actual === piece.hash) return undefined;
  return `${describePiece(piece, pieces)} has ${piece.algorithm} ${actual.slice(0, 16)}…, the manifest signs ${piece.hash.slice(0, 16)}…`;
}

/** The pieces of `image` to verify on this machine, with the chunk hashes its CPU checks faster (chunks.ts). */
export async function piecesToVerify(system: System, image: SignedImage): Promise<Piece[]> {
  return verificationPieces(image, await system.cpuFlags());
}

/** A piece that did not verify, and why. */
export interface BadPiece {
  readonly piece: Piece;
  readonly problem: string;
}

/** The first of `pieces` (in image order) that does not verify in `path`, with why; all are hashed at once. */
export async function firstBadPiece(system: System, path: string, pieces: readonly Piece[], all: readonly Piece[] = pieces): Promise<BadPiece | undefined> {
  const problems = await Promise.all(pieces.map((piece) => checkPiece(system, path, piece, all)));
  const index = problems.findIndex((problem) => problem !== undefined);
  const piece = pieces[index];
  const problem = problems[index];
  return piece === undefined || problem === undefined ? undefined : { piece, problem };
}

/**
 * Hashes each piece of a file being written as soon as the bytes written
 * cover it, without waiting for the hash: the download goes on meanwhile.
 * `problem` holds the first failure found so far; `settle` waits for all.
 */
export class PieceVerifier {
  private next: number;
  private running: Promise<void>[] = [];
  private failures: BadPiece[] = [];

  /** Pieces wholly within the first `verifiedBytes` bytes are verified already. */
  constructor(
    private readonly system: System,
    private readonly path: string,
    private readonly pieces: readonly Piece[],
    verifiedBytes: number,
  ) {
    this.next = piecesWithin(pieces, verifiedBytes);
  }

  /** The file now holds its first `written` bytes: hash every piece they complete. */
  advance(written: number): void {
    for (let piece = this.pieces[this.next]; piece !== undefined && end(piece) <= written; piece = this.pieces[++this.next]) {
      const checked = piece;
      this.running.push(
        checkPiece(this.system, this.path, checked, this.pieces).then((problem) => {
          if (problem !== undefined) this.failures.push({ piece: checked, problem });
        }),
      );
    }
  }

  /** A failure found so far, if any: the download can stop. */
  get problem(): string | undefined {
    return this.failures[0]?.problem;
  }

  /** Waits for every hash started; the first failing piece in image order, if any. */
  async settle(): Promise<BadPiece | undefined> {
    await Promise.all(this.running);
    this.running = [];
    return [...this.failures].sort((a, b) => a.piece.index - b.piece.index)[0];
  }

  /** The file is being written again from byte 0: nothing in it counts as verified. */
  async restart(): Promise<void> {
    await this.settle();
    this.failures = [];
    this.next = 0;
  }
}

export type ImageCheck = { readonly ok: true } | { readonly ok: false; readonly problem: string };

/** Whether the file at `path` is the signed image: its size, then every piece, hashed at once; the problem names no path. */
export async function verifyImageFile(system: System, path: string, image: SignedImage): Promise<ImageCheck> {
  const info = await system.lstat(path);
  if (info?.type !== "file") return { ok: false, problem: "there is no such file" };
  if (info.size !== image.size) return { ok: false, problem: `it has ${info.size} bytes, the manifest signs ${image.size}` };
  const bad = await firstBadPiece(system, path, await piecesToVerify(system, image));
  return bad === undefined ? { ok: true } : { ok: false, problem: bad.problem };
}
