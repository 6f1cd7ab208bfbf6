/**
 * Bytes lent out of a cache: views of memory the lender reuses once every borrower has called
 * `release`. A borrower reads the parts (writes them to a socket or the FUSE device), never keeps
 * or modifies them, and releases exactly once, also on error paths (`release` is idempotent).
 */
export interface Borrowed {
  readonly parts: readonly Uint8Array[];
  release(): void;
}

const noop = (): void => {};

/** Bytes that are the borrower's own (nothing to give back). */
export function owned(parts: readonly Uint8Array[]): Borrowed {
  return { parts, release: noop };
}

/** One release for several loans. */
export function releaseAll(loans: readonly Borrowed[]): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    for (const l of loans) l.release();
  };
}

/** The borrowed bytes as one buffer of the caller's own, then released. */
export function copyOut(b: Borrowed): Uint8Array {
  try {
    const { parts } = b;
    if (parts.length === 1) return Uint8Array.from(parts[0]!);
    return Buffer.concat(parts as Uint8Array[]);
  } finally {
    b.release();
  }
}
