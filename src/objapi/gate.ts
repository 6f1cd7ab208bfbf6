/** A counting semaphore: at most `max` callers inside `run` at once, the rest wait in FIFO order. */
export class Gate {
  private active = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new Error(`objapi: a gate needs a maximum of at least 1, not ${max}`);
  }

  get inside(): number {
    return this.active;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.max) await new Promise<void>((resolve) => this.waiters.push(resolve));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiters.shift();
      if (next) next(); // the slot passes straight to the next caller
      else this.active--;
    }
  }
}
