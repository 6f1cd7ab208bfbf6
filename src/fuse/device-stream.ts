/**
 * Reading /dev/fuse on the main thread's event loop: the device descriptor is watched by libuv
 * (epoll) like a pipe, and each readiness becomes a non-blocking read(2) of one request, with no
 * reader thread between the kernel and the file system.
 *
 * Why: with blocking readers in worker threads, every request costs two wakeups (the kernel wakes
 * a reader, the reader wakes the main thread through a message port) and a message; on a VM where
 * a wakeup is expensive that was a large share of a small request's cost, and each reader thread
 * is a V8 isolate of ~9 MiB.
 *
 * How: Node has no public API to watch an arbitrary descriptor, but its pipe handle opens any
 * descriptor (uv_pipe_open sets O_NONBLOCK and registers it with the loop) and net.Socket's
 * `onread` lets the caller supply the buffer for each read, so one read(2) returns exactly one
 * request into a buffer large enough for the biggest WRITE. The device stays open until close():
 * the socket's own close (which it runs by itself on an error) is held back, because replies may
 * still be written to the descriptor and a closed number could be reused by another file.
 */
import * as net from 'node:net';

/**
 * A request of at least this many bytes keeps its buffer (no copy); smaller ones are copied.
 * Shared with the reader threads (session.ts), which make the same choice.
 */
export const REQUEST_KEEPS_BUFFER_BYTES = 64 * 1024;
/** Request buffers kept for reuse once the file system gives them back (per reader). */
export const SPARE_REQUEST_BUFFERS_MAX = 4;

interface PipeHandle {
  open(fd: number): number;
  close(cb?: () => void): void;
  readStop(): number;
}
interface PipeWrapBinding {
  Pipe: new (type: number) => PipeHandle;
  constants: { SOCKET: number };
}

export interface DeviceStream {
  /** Stop reading and close the descriptor (once; later calls do nothing). */
  close(): void;
}

export interface DeviceStreamHandlers {
  /** One request; `giveBack`, when present, returns its buffer for reuse once it is no longer read. */
  onRequest(b: Buffer, giveBack?: () => void): void;
  /** The device reported an end (ENODEV after unmount, EOF) or an error that is not transient. */
  onEnd(why: string): void;
}

/** True when this Node can watch a descriptor through its pipe handle. */
export function deviceStreamSupported(): boolean {
  try {
    const b = pipeWrap();
    return typeof b.Pipe === 'function' && typeof b.constants?.SOCKET === 'number';
  } catch {
    return false;
  }
}

function pipeWrap(): PipeWrapBinding {
  // process.binding is the documented-deprecated door to the same binding net uses internally;
  // 'pipe_wrap' is on its allow list. Silt pins Node 20 (package.json engines).
  return (process as unknown as { binding(name: string): unknown }).binding('pipe_wrap') as PipeWrapBinding;
}

/**
 * Start reading requests from the FUSE device `fd` on the event loop. `size` is the largest
 * request (max_write plus room for the headers). A read error ends the stream: the device's reads
 * fail only when the connection is gone (ENODEV, ECONNABORTED) or the buffer is bad; libuv itself
 * retries EAGAIN and EINTR.
 */
export function openDeviceStream(fd: number, size: number, h: DeviceStreamHandlers): DeviceStream {
  const binding = pipeWrap();
  const spare: Buffer[] = [];
  let current: Buffer | null = null;
  let closed = false;
  let ended = false;

  const nextBuffer = (): Buffer => (current ??= spare.pop() ?? Buffer.allocUnsafeSlow(size));

  const onPacket = (n: number): void => {
    const buf = current!;
    if (n >= REQUEST_KEEPS_BUFFER_BYTES) {
      // Hand the buffer over; the next read takes a spare one.
      current = null;
      let given = false;
      h.onRequest(buf.subarray(0, n), () => {
        if (given) return;
        given = true;
        if (!closed && spare.length < SPARE_REQUEST_BUFFERS_MAX) spare.push(buf);
      });
    } else {
      const copy = Buffer.allocUnsafe(n);
      buf.copy(copy, 0, 0, n);
      h.onRequest(copy);
    }
  };

  const end = (why: string): void => {
    if (ended) return;
    ended = true;
    h.onEnd(why);
  };

  const handle = new binding.Pipe(binding.constants.SOCKET);
  const err = handle.open(fd);
  if (err !== 0) throw new Error(`cannot watch the FUSE device (uv_pipe_open: ${err})`);
  // Hold back the socket's close (it runs one by itself after an error): closing the handle
  // closes the descriptor, which only close() may do.
  const realClose = handle.close.bind(handle);
  let closeCallback: (() => void) | undefined;
  handle.close = (cb?: () => void): void => {
    handle.readStop();
    closeCallback = cb;
  };
  const sock = new net.Socket({
    handle,
    readable: true,
    writable: false,
    onread: {
      buffer: nextBuffer,
      callback: (n: number) => {
        if (n > 0) onPacket(n);
        return true;
      },
    },
  } as unknown as net.SocketConstructorOpts);
  sock.on('error', (e: NodeJS.ErrnoException) => end(e.code ?? String(e)));
  sock.on('end', () => end('EOF'));

  return {
    close(): void {
      if (closed) return;
      closed = true;
      spare.length = 0;
      ended = true;
      sock.destroy(); // its close is held back: it only records the callback
      handle.readStop();
      realClose(() => closeCallback?.());
    },
  };
}
