// A serial console is a terminal stream: lines end in \r\n, and SeaBIOS, dracut
// and systemd colour or clear the screen with escape sequences. Tests match
// against the plain text, so that is what this keeps.

/**
 * One ANSI escape sequence: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \),
 * or a short one (ESC, optional intermediates, final: ESC c, ESC 7, ESC ( B). The
 * short form's final excludes "[" and "]" so that a CSI or OSC cut after its
 * first byte is not mistaken for a complete sequence.
 */
const ESCAPE_SEQUENCE = /\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[ -/]*[0-Z\\^-~])/g;
/** The same, only at the start of a string, to tell a complete sequence from a cut one. */
const ESCAPE_SEQUENCE_AT_START = new RegExp(`^(?:${ESCAPE_SEQUENCE.source})`);
/** Control characters other than \n and \t: \r, backspaces, bells, a leftover ESC. */
const CONTROL_CHARACTERS = /[\x00-\x08\x0b-\x1f\x7f]/g;
/** A sequence still unfinished after this many characters is garbage, not a sequence that a later chunk completes. */
const LONGEST_ESCAPE_SEQUENCE = 64;

/** Plain text: escape sequences and control characters other than \n and \t removed. */
export function plainConsoleText(text: string): string {
  return text.replace(ESCAPE_SEQUENCE, "").replace(CONTROL_CHARACTERS, "");
}

/**
 * Accumulates console output chunk by chunk. The plain text only ever grows (an
 * escape sequence split across two chunks is held back until it is complete), so
 * positions in it stay valid while the VM keeps writing.
 */
export class ConsoleText {
  private readonly decoder = new TextDecoder();
  private rawText = "";
  private plainText = "";
  /** The start of an escape sequence whose end has not arrived yet. */
  private pending = "";

  append(chunk: Uint8Array): void {
    const text = this.decoder.decode(chunk, { stream: true });
    this.rawText += text;
    const unprocessed = this.pending + text;
    const cut = unfinishedEscapeStart(unprocessed);
    this.pending = unprocessed.slice(cut);
    this.plainText += plainConsoleText(unprocessed.slice(0, cut));
  }

  /** The console as received, with \r and escape sequences. */
  get raw(): string {
    return this.rawText;
  }

  /** Everything so far as plain text. */
  get plain(): string {
    return this.plainText;
  }
}

/** Where a trailing, still unfinished escape sequence starts; the text's length if there is none. */
function unfinishedEscapeStart(text: string): number {
  const start = text.lastIndexOf("\x1b");
  if (start === -1) return text.length;
  const tail = text.slice(start);
  if (ESCAPE_SEQUENCE_AT_START.test(tail) || tail.length > LONGEST_ESCAPE_SEQUENCE) return text.length;
  return start;
}

/** The last `count` lines of a text, for error messages. */
export function lastLines(text: string, count: number): string {
  return text.split("\n").slice(-count).join("\n");
}
