import { StoreError, metrics } from '../util/index.ts';
import type { ByteRange, ChunkedPut, ListOptions, ListPage, ObjectInfo, ObjectStore, PutOptions } from './types.ts';

/** Records every request of the store it wraps in the Prometheus metrics (verb, outcome, latency, bytes). */
export class InstrumentedStore implements ObjectStore {
  constructor(readonly inner: ObjectStore) {}
  get capabilities(): ObjectStore['capabilities'] {
    return this.inner.capabilities;
  }

  private async call<T>(verb: string, fn: () => Promise<T>): Promise<T> {
    const end = metrics.storeSeconds.startTimer({ verb });
    try {
      const r = await fn();
      metrics.storeRequests.inc({ verb, outcome: 'ok' });
      return r;
    } catch (err) {
      metrics.storeRequests.inc({ verb, outcome: err instanceof StoreError ? err.kind : 'error' });
      throw err;
    } finally {
      end();
    }
  }

  put(key: string, data: Uint8Array, options?: PutOptions): Promise<ObjectInfo> {
    return this.call('put', async () => {
      const r = await this.inner.put(key, data, options);
      metrics.storeBytes.inc({ direction: 'put' }, data.length);
      return r;
    });
  }
  async putStream(key: string, options?: PutOptions): Promise<ChunkedPut> {
    const s = await this.call('put_stream_open', () => this.inner.putStream(key, options));
    return {
      write: (chunk) => {
        metrics.storeBytes.inc({ direction: 'put' }, chunk.length);
        return s.write(chunk);
      },
      close: () => this.call('put_stream', () => s.close()),
      abort: () => s.abort(),
    };
  }
  get(key: string, range?: ByteRange): Promise<Uint8Array> {
    return this.call('get', async () => {
      const b = await this.inner.get(key, range);
      metrics.storeBytes.inc({ direction: 'get' }, b.length);
      return b;
    });
  }
  getv(key: string, range?: ByteRange): Promise<Uint8Array[]> {
    return this.call('get', async () => {
      const parts = this.inner.getv ? await this.inner.getv(key, range) : [await this.inner.get(key, range)];
      let n = 0;
      for (const p of parts) n += p.length;
      metrics.storeBytes.inc({ direction: 'get' }, n);
      return parts;
    });
  }
  head(key: string): Promise<ObjectInfo | null> {
    return this.call('head', () => this.inner.head(key));
  }
  delete(key: string): Promise<void> {
    return this.call('delete', () => this.inner.delete(key));
  }
  list(prefix: string, options?: ListOptions): Promise<ListPage> {
    return this.call('list', () => this.inner.list(prefix, options));
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
