// Hashes of byte ranges of files, on worker threads, one per CPU: images are
// GiBs, and one core cannot hash as fast as a network and a disk deliver.
// Workers start on first use and never keep the process alive.

import { availableParallelism } from "node:os";
import type { HashAlgorithm, HashAnswer, HashEngine, HashJob } from "./hash-worker.ts";

// scripts/build-controller names hash-worker.ts as the binary's second entry point. Inside the
// binary every module's import.meta.url is the binary's own, at the root of its file tree, and the
// worker sits at system/ below it, where controller/ has it; from source (bun test, bun run) this
// module's URL is its own file's, beside the worker.
const WORKER_URL = (import.meta.path.endsWith("/hash-pool.ts") ? new URL("./hash-worker.ts", import.meta.url) : new URL("./system/hash-worker.ts", import.meta.url)).href;

interface Waiting {
  readonly job: HashJob;
  resolve(digests: readonly string[]): void;
  reject(error: Error): void;
}

export class HashPool {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Waiting>();
  private readonly queue: Waiting[] = [];
  private started = 0;
  private nextId = 0;
  /** The hashing the workers run, once one has answered. */
  engine: HashEngine | undefined;

  constructor(private readonly size: number) {}

  /** The `algorithm` hash (hex) of `length` bytes of `path` from `offset` on; rejects when the file is shorter or unreadable. */
  async hashRange(path: string, offset: number, length: number, algorithm: HashAlgorithm): Promise<string> {
    const [digest] = await this.hashesOfRange(path, offset, length, [algorithm]);
    return digest as string;
  }

  /** One hash (hex) per algorithm, in their order, of the same bytes read once. */
  hashesOfRange(path: string, offset: number, length: number, algorithms: readonly HashAlgorithm[]): Promise<readonly string[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ job: { id: this.nextId++, path, offset, length, algorithms }, resolve, reject });
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
    if ("digests" in answer) waiting.resolve(answer.digests);
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

let shared: HashPool | undefined;

/** The process's pool, one worker per CPU. */
export function hashPool(): HashPool {
  shared ??= new HashPool(availableParallelism());
  return shared;
}
