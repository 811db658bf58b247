/**
 * A one-line progress bar on a text stream (stderr): redrawn in place with `\r`, finished with
 * a newline. It is only drawn when the stream is a TTY or the user asked for it (`--progress`),
 * so JSON on stdout and logs stay clean.
 */

/** Characters of the bar itself. */
const BAR_WIDTH = 24;

/** A minimal writable the bar draws on (process.stderr, or a test buffer). */
export interface ProgressSink {
  write(s: string): unknown;
}

export class ProgressBar {
  readonly #sink: ProgressSink;
  #lastLength = 0;
  #drawn = false;

  constructor(sink: ProgressSink) {
    this.#sink = sink;
  }

  /** Draws `done` of `total` with a label and details after it. */
  update(label: string, done: number, total: number, detail = ''): void {
    const frac = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
    const filled = Math.round(frac * BAR_WIDTH);
    const line = `${label} [${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ${detail}`;
    const pad = this.#lastLength > line.length ? ' '.repeat(this.#lastLength - line.length) : '';
    this.#sink.write(`\r${line}${pad}`);
    this.#lastLength = line.length;
    this.#drawn = true;
  }

  /** Ends the line (once). */
  done(): void {
    if (this.#drawn) this.#sink.write('\n');
    this.#drawn = false;
    this.#lastLength = 0;
  }
}
