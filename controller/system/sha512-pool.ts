// sha512 of byte ranges of files, on worker threads, one per CPU: images are
// GiBs, and one core cannot hash as fast as a network and a disk deliver.
// Workers start on first use and never keep the process alive.

import { availableParallelism } from "node:os";
import type { HashAnswer, HashEngine, HashJob } from "./sha512-worker.ts";

// scripts/build-controller names sha512-worker.ts as the binary's second entry point. Inside the
// binary every module's import.meta.url is the binary's own, at the root of its file tree, and the
// worker sits at system/ below it, where controller/ has it; from source (bun test, bun run) this
// module's URL is its own file's, beside the worker.
const WORKER_URL = (import.meta.path.endsWith("/sha512-pool.ts") ? new URL("./sha512-worker.ts", import.meta.url) : new URL("./system/sha512-worker.ts", import.meta.url)).href;

interface Waiting {
  readonly job: HashJob;
  resolve(sha512: string): void;
  reject(error: Error): void;
}

export class Sha512Pool {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Waiting>();
  private readonly queue: Waiting[] = [];
  private started = 0;
  private nextId = 0;
  /** The sha512 the workers run, once one has answered. */
  engine: HashEngine | undefined;

  constructor(private readonly size: number) {}

  /** The sha512 (hex) of `length` bytes of `path` from `offset` on; rejects when the file is shorter or unreadable. */
  hashRange(path: string, offset: number, length: number): Promise<string> {
    return new Promise((resolve, reject) => {
      this.queue.push({ job: { id: this.nextId++, path, offset, length }, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const worker = this.idle.pop() ?? (this.started < this.size ? this.startWorker() : undefined);
      if (worker === undefined) return;
      const waiting = this.queue.shift() as Waiting;
      this.busy.set(worker, waiting);
      worker.ref();
      worker.postMessage(waiting.job);
    }
  }

  private startWorker(): Worker {
    this.started++;
    const worker = new Worker(WORKER_URL);
    worker.onmessage = (event: MessageEvent<HashAnswer>) => this.answered(worker, event.data);
    worker.onerror = (event: ErrorEvent) => this.failed(worker, new Error(`the hashing thread failed: ${event.message}`));
    return worker;
  }

  private answered(worker: Worker, answer: HashAnswer): void {
    const waiting = this.busy.get(worker);
    this.release(worker);
    this.engine = answer.engine;
    if (waiting === undefined) return;
    if ("sha512" in answer) waiting.resolve(answer.sha512);
    else waiting.reject(new Error(answer.error));
  }

  /** A worker that died takes its job with it; a new one starts for the next job. */
  private failed(worker: Worker, error: Error): void {
    const waiting = this.busy.get(worker);
    this.busy.delete(worker);
    this.started--;
    worker.terminate();
    waiting?.reject(error);
    this.dispatch();
  }

  private release(worker: Worker): void {
    this.busy.delete(worker);
    // an idle worker must not keep `controller` running after its work is done
    worker.unref();
    this.idle.push(worker);
    this.dispatch();
  }
}

let shared: Sha512Pool | undefined;

/** The process's pool, one worker per CPU. */
export function sha512Pool(): Sha512Pool {
  shared ??= new Sha512Pool(availableParallelism());
  return shared;
}
