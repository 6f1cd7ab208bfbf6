/** Shared by the benchmarks: an ObjectStore wrapper that counts what reaches the store. */
import type { ByteRange, ListOptions, ObjectStore, PutOptions } from '../src/objstore/index.ts';

/** Counts what reaches the store: every PUT is one object written. */
export class CountingStore implements ObjectStore {
  puts = 0;
  /** PUTs by object kind: commit segments (log/), data segments (seg/), other (head, super). */
  logPuts = 0;
  segPuts = 0;
  putBytes = 0;
  gets = 0;
  getBytes = 0;
  heads = 0;
  lists = 0;
  constructor(readonly inner: ObjectStore) {}
  get capabilities() {
    return this.inner.capabilities;
  }
  async put(key: string, data: Uint8Array, o?: PutOptions) {
    const r = await this.inner.put(key, data, o);
    this.count(key, data.length);
    return r;
  }
  async putStream(key: string, o?: PutOptions) {
    const s = await this.inner.putStream(key, o);
    let n = 0;
    return {
      write: (c: Uint8Array) => ((n += c.length), s.write(c)),
      close: async () => {
        const r = await s.close();
        this.count(key, n);
        return r;
      },
      abort: () => s.abort(),
    };
  }
  async get(key: string, r?: ByteRange) {
    const b = await this.inner.get(key, r);
    this.gets++;
    this.getBytes += b.length;
    return b;
  }
  head(key: string) {
    this.heads++;
    return this.inner.head(key);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
  list(prefix: string, o?: ListOptions) {
    this.lists++;
    return this.inner.list(prefix, o);
  }
  close() {
    return this.inner.close();
  }
  private count(key: string, n: number): void {
    this.puts++;
    this.putBytes += n;
    if (key.includes('/log/')) this.logPuts++;
    else if (key.includes('/seg/')) this.segPuts++;
  }
  snapshot() {
    return { puts: this.puts, logPuts: this.logPuts, segPuts: this.segPuts, putBytes: this.putBytes, gets: this.gets, getBytes: this.getBytes };
  }
}
