/**
 * segment: log segments in the object store.
 *
 * Invariants:
 * - A segment object is written once, whole, by one PUT; its records are immutable.
 * - Every record carries a CRC over header and payload; nothing is returned or cached unverified.
 * - A record is readable from memory from the moment it is appended until its segment is durable,
 *   and from the store after; callers never see the gap.
 * - A commit segment is PUT only after every data segment it references is durable, and commits are
 *   PUT in sequence order (the caller, headhunter, serializes them).
 */
export { SegmentBuilder, type Loc } from './builder.ts';
export { LogSegmentWriter, SealedSegment, type SealedCommit, type SegmentOwner, type SegmentWriterOptions } from './writer.ts';
export { SegmentReader, type SegmentReaderOptions } from './reader.ts';
export * from './format.ts';
