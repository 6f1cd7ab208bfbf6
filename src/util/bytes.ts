import { CorruptionError } from './errors.ts';

/**
 * Little-endian binary encoding at explicit widths, for everything Silt stores.
 * `ByteWriter` grows as needed; `ByteReader` bounds-checks every read and throws CorruptionError,
 * so a truncated or garbled object can never be read past its end.
 */
export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;
  constructor(initialSize = 256) {
    this.buf = new Uint8Array(initialSize);
    this.view = new DataView(this.buf.buffer);
  }
  get length(): number {
    return this.pos;
  }
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): this {
    this.ensure(1);
    this.view.setUint8(this.pos, v);
    this.pos += 1;
    return this;
  }
  u16(v: number): this {
    this.ensure(2);
    this.view.setUint16(this.pos, v, true);
    this.pos += 2;
    return this;
  }
  u32(v: number): this {
    this.ensure(4);
    this.view.setUint32(this.pos, v >>> 0, true);
    this.pos += 4;
    return this;
  }
  /** A non-negative safe integer stored as u64. */
  u64(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`u64 out of range: ${v}`);
    this.ensure(8);
    this.view.setBigUint64(this.pos, BigInt(v), true);
    this.pos += 8;
    return this;
  }
  big64(v: bigint): this {
    this.ensure(8);
    this.view.setBigUint64(this.pos, BigInt.asUintN(64, v), true);
    this.pos += 8;
    return this;
  }
  i64(v: bigint): this {
    this.ensure(8);
    this.view.setBigInt64(this.pos, v, true);
    this.pos += 8;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }
  /** u32 length prefix then bytes. */
  blob(b: Uint8Array): this {
    this.u32(b.length);
    return this.bytes(b);
  }
  /** u16 length prefix then UTF-8. */
  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    if (b.length > 0xffff) throw new RangeError('string too long');
    this.u16(b.length);
    return this.bytes(b);
  }
  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
  /** A view of bytes [from, to) written so far (valid until the next write). */
  written(from: number, to: number): Uint8Array {
    return this.buf.subarray(from, to);
  }
}

export class ByteReader {
  private readonly view: DataView;
  pos = 0;
  constructor(
    private readonly buf: Uint8Array,
    private readonly what = 'record',
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  get remaining(): number {
    return this.buf.length - this.pos;
  }
  private need(n: number): void {
    if (this.pos + n > this.buf.length) {
      throw new CorruptionError(`${this.what} truncated: need ${n} bytes at ${this.pos}, have ${this.remaining}`);
    }
  }
  u8(): number {
    this.need(1);
    return this.view.getUint8(this.pos++);
  }
  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  u64(): number {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CorruptionError(`${this.what}: u64 ${v} beyond safe range`);
    return Number(v);
  }
  big64(): bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  i64(): bigint {
    this.need(8);
    const v = this.view.getBigInt64(this.pos, true);
    this.pos += 8;
    return v;
  }
  bytes(n: number): Uint8Array {
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  blob(): Uint8Array {
    return this.bytes(this.u32());
  }
  str(): string {
    const n = this.u16();
    return Buffer.from(this.bytes(n)).toString('utf8');
  }
  expectEnd(): void {
    if (this.remaining !== 0) throw new CorruptionError(`${this.what}: ${this.remaining} trailing bytes`);
  }
}
