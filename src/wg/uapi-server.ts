/**
 * The UAPI unix socket: `/var/run/wireguard/<ifname>.sock`, where `wg`
 * (and anything speaking the cross-platform configuration protocol) talks to
 * a userspace WireGuard device. Each connection carries one or more
 * transactions (`get=1` / `set=1`, each closed by a blank line and answered
 * with `errno=<n>` and a blank line); transactions of all connections run one
 * at a time, like wireguard-go's IPC mutex, so a `get` never sees half a `set`.
 *
 * Opening follows wireguard-go's `ipc.UAPIOpen`, a bit stricter:
 * - the folder is created with mode 0755 (as wireguard-go) if missing;
 * - the socket is bound inside a private 0700 folder, chmod 0600 and then
 *   renamed into place, so it is never reachable by anyone but root, without
 *   touching the process-wide umask (wireguard-go sets umask 077: 0700);
 * - an existing socket at the path is replaced only if no listener answers on
 *   it (a stale one); a live one is `ERR_WG_UAPI_IN_USE`; a path that is not
 *   a socket is never removed (`ERR_WG_UAPI`);
 * - the path is watched: if it is deleted or replaced, the server closes and
 *   emits `'removed'` (wireguard-go stops the device then);
 * - {@link UapiServer.close} removes the socket if it is still ours.
 *
 * Protocol quirks kept from wireguard-go: an unknown operation closes the
 * connection without a reply; `get=1` followed by anything but a blank line
 * is EINVAL. One deliberate difference: after a failed `set=1` the rest of
 * that transaction (up to its blank line) is skipped, so the connection stays
 * usable (wireguard-go reads the leftover lines as operations and closes).
 * @module
 */
import { EventEmitter } from 'node:events';
import { lstat, mkdir, mkdtemp, rename, rm, chmod, unlink } from 'node:fs/promises';
import { watch, type FSWatcher } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { VectunError } from '../errors.js';
import type { WgControl } from './config.js';
import { UAPI_MAX_LINE_BYTES, UapiErrno, formatUapiErrno, formatUapiGet, parseUapiSet } from './uapi.js';

/** Where wireguard-go (and `wg`) look for UAPI sockets on Linux. */
export const UAPI_SOCKET_DIRECTORY = '/var/run/wireguard';

/** A `set=1` transaction larger than this is refused with EIO (bounds memory; about 300k peers' worth). */
export const UAPI_MAX_TRANSACTION_BYTES = 64 * 1024 * 1024;

/** Input queued on one connection before it is paused until the device catches up. */
const MAX_QUEUED_BYTES = 1024 * 1024;

/** Options of {@link UapiServer.listen}. */
export interface UapiServerOptions {
  /** The WireGuard interface name (1-15 bytes, no '/'); the socket is `<directory>/<name>.sock`. */
  interfaceName: string;
  /** The device the transactions read and change. */
  control: WgControl;
  /** Socket folder; default {@link UAPI_SOCKET_DIRECTORY}. Tests use a temporary one. */
  directory?: string;
  /**
   * Called with one line per failed transaction (errno and reason), as
   * wireguard-go logs them. Never contains key material.
   */
  onLog?: (message: string) => void;
}

/** Counters of a {@link UapiServer} (for tests and diagnostics). */
export interface UapiServerStats {
  /** Connections accepted. */
  connections: number;
  /** `get=1` transactions answered. */
  gets: number;
  /** `set=1` transactions answered. */
  sets: number;
  /** Transactions answered with a non-zero errno. */
  failures: number;
  /** Connections closed for an unknown operation or an over-long operation line. */
  protocolCloses: number;
}

/** Events of a {@link UapiServer}. */
export interface UapiServerEvents {
  /** The socket file was deleted or replaced by someone else; the server has closed. */
  removed: [];
  /** The server has closed (after {@link UapiServer.close} or `'removed'`). */
  close: [];
}

/** The UAPI socket server of one device. Create with {@link UapiServer.listen}. */
export class UapiServer extends EventEmitter<UapiServerEvents> {
  /** Absolute path of the socket. */
  readonly path: string;
  readonly #server: Server;
  readonly #control: WgControl;
  readonly #onLog: (message: string) => void;
  readonly #sockets = new Set<Socket>();
  readonly #stats: UapiServerStats = { connections: 0, gets: 0, sets: 0, failures: 0, protocolCloses: 0 };
  /** Serialises transactions across connections. */
  #turn: Promise<void> = Promise.resolve();
  #inode: number;
  #watcher: FSWatcher | undefined;
  #closing: Promise<void> | undefined;

  private constructor(path: string, server: Server, inode: number, options: UapiServerOptions, early: Socket[]) {
    super();
    this.path = path;
    this.#server = server;
    this.#inode = inode;
    this.#control = options.control;
    this.#onLog = options.onLog ?? (() => undefined);
    server.removeAllListeners('connection');
    server.on('connection', (socket) => this.#accept(socket));
    for (const socket of early.splice(0)) this.#accept(socket);
    this.#watch();
  }

  /**
   * Opens `<directory>/<interfaceName>.sock` and serves `control` on it.
   * @throws VectunError `ERR_INVALID_ARG` (bad name), `ERR_WG_UAPI_IN_USE`
   *   (a live listener answers there), `ERR_WG_UAPI` (the folder or socket
   *   could not be made; `errno`/`syscall` say why).
   */
  static async listen(options: UapiServerOptions): Promise<UapiServer> {
    assertInterfaceName(options.interfaceName);
    const directory = options.directory ?? UAPI_SOCKET_DIRECTORY;
    const path = join(directory, `${options.interfaceName}.sock`);
    await wrapFs('mkdir', directory, () => mkdir(directory, { recursive: true, mode: 0o755 }));
    await removeIfStale(path);

    const staging = await wrapFs('mkdtemp', directory, () => mkdtemp(join(directory, `.${options.interfaceName}-`)));
    const server = createServer({ allowHalfOpen: true });
    // Clients may connect as soon as the socket is renamed into place, before the server object exists.
    const early: Socket[] = [];
    server.on('connection', (socket) => early.push(socket));
    try {
      const stagedPath = join(staging, 's.sock');
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(stagedPath, () => {
          server.off('error', reject);
          resolve();
        });
      }).catch((err: unknown) => {
        throw fsError('listen', stagedPath, err);
      });
      await wrapFs('chmod', stagedPath, () => chmod(stagedPath, 0o600));
      // Atomic: the socket appears at its path already root-only.
      await wrapFs('rename', path, () => rename(stagedPath, path));
      const inode = await wrapFs('lstat', path, async () => (await lstat(path)).ino);
      await rm(staging, { recursive: true, force: true }).catch(() => undefined);
      // Nothing is awaited after this: the path watch starts here, and a 'removed' cannot fire before the caller listens.
      return new UapiServer(path, server, inode, options, early);
    } catch (err) {
      for (const socket of early) socket.destroy();
      server.close();
      await rm(staging, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
  }

  /** A snapshot of the counters. */
  get stats(): UapiServerStats {
    return { ...this.#stats };
  }

  /** True once closing has begun. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Stops accepting, ends every connection, and removes the socket file if
   * it is still the one this server created. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  /** Same as {@link UapiServer.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #shutdown(): Promise<void> {
    this.#watcher?.close();
    this.#watcher = undefined;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
    // libuv unlinks the staged name (long gone); the real path is ours to remove, unless replaced.
    try {
      const st = await lstat(this.path);
      if (st.ino === this.#inode && st.isSocket()) await unlink(this.path);
    } catch {
      // already gone
    }
    this.emit('close');
  }

  #watch(): void {
    try {
      this.#watcher = watch(this.path, { persistent: false }, () => void this.#checkPath());
      this.#watcher.on('error', () => void this.#checkPath());
    } catch {
      // Already gone (checked below), or no inotify: then the socket simply is not watched.
    }
    // A removal between the bind and the start of the watch is caught here.
    void this.#checkPath();
  }

  async #checkPath(): Promise<void> {
    if (this.closed) return;
    let ours = false;
    try {
      const st = await lstat(this.path);
      ours = st.ino === this.#inode && st.isSocket();
    } catch {
      ours = false;
    }
    if (!ours && !this.closed) {
      // Someone else's socket (or nothing) is at the path now: do not delete it on close.
      this.#inode = -1;
      await this.close();
      this.emit('removed');
    }
  }

  #accept(socket: Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.#stats.connections++;
    this.#sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => this.#sockets.delete(socket));
    new UapiConnection(socket, {
      run: (task) => this.#serialised(task),
      get: () => this.#get(),
      set: (lines, readError) => this.#set(lines, readError),
      protocolClose: () => this.#stats.protocolCloses++,
    });
  }

  #serialised<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#turn.then(task);
    this.#turn = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  async #get(): Promise<string> {
    this.#stats.gets++;
    try {
      return formatUapiGet(this.#control.status()) + formatUapiErrno(0);
    } catch (err) {
      return this.#failure('get', UapiErrno.ENOANO, err);
    }
  }

  async #set(lines: string[], readError: number | null): Promise<string> {
    this.#stats.sets++;
    const { update, error } = readError === null ? parseUapiSet(lines) : { update: {}, error: { errno: readError, message: 'transaction too large' } };
    // The lines before a bad one take effect, as in wireguard-go.
    if (Object.keys(update).length > 0) {
      try {
        await this.#control.update(update);
      } catch (err) {
        const errno = err instanceof VectunError && err.errno !== undefined && err.errno > 0 ? err.errno : UapiErrno.ENOANO;
        return this.#failure('set', errno, err);
      }
    }
    if (error !== null) return this.#failure('set', error.errno, error.message);
    return formatUapiErrno(0);
  }

  #failure(operation: 'get' | 'set', errno: number, reason: unknown): string {
    this.#stats.failures++;
    const text = reason instanceof Error ? reason.message : String(reason);
    this.#onLog(`UAPI ${operation} failed (errno ${errno}): ${text}`);
    return formatUapiErrno(errno);
  }
}

/** What a connection needs from its server. */
interface ConnectionHandlers {
  run<T>(task: () => Promise<T>): Promise<T>;
  get(): Promise<string>;
  set(lines: string[], readError: number | null): Promise<string>;
  protocolClose(): void;
}

/**
 * One client connection: splits the byte stream into lines and runs the
 * transactions in order. State: waiting for an operation line, inside a
 * `set=1` body, or after `get=1` waiting for its blank line.
 */
class UapiConnection {
  readonly #socket: Socket;
  readonly #handlers: ConnectionHandlers;
  /** Complete lines not yet handled, and their sizes on the wire. */
  readonly #lines: string[] = [];
  readonly #lineBytes: number[] = [];
  #queuedBytes = 0;
  /** Bytes of a line not yet terminated by '\n'. */
  #partial: Buffer[] = [];
  #partialBytes = 0;
  /** The current line exceeded the limit: its bytes are dropped until its '\n'. */
  #overlong = false;
  #ended = false;
  #busy = false;
  #done = false;
  #state: 'op' | 'get' | 'set' = 'op';
  #setLines: string[] = [];
  #setBytes = 0;
  #setReadError: number | null = null;

  constructor(socket: Socket, handlers: ConnectionHandlers) {
    this.#socket = socket;
    this.#handlers = handlers;
    socket.on('data', (chunk: Buffer) => this.#receive(chunk));
    socket.on('end', () => {
      this.#ended = true;
      void this.#pump();
    });
  }

  #receive(chunk: Buffer): void {
    if (this.#done) return;
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      const piece = chunk.subarray(start, nl < 0 ? chunk.length : nl);
      if (!this.#overlong) {
        if (this.#partialBytes + piece.length > UAPI_MAX_LINE_BYTES + 1) {
          this.#overlong = true;
          this.#partial = [];
          this.#partialBytes = 0;
        } else if (piece.length > 0) {
          this.#partial.push(Buffer.from(piece));
          this.#partialBytes += piece.length;
        }
      }
      if (nl < 0) break;
      // An over-long line is handed on as a marker the states reject (EIO in a set, a close otherwise).
      const line = this.#overlong ? null : Buffer.concat(this.#partial).toString('utf8');
      this.#lines.push(line ?? OVERLONG);
      this.#lineBytes.push(this.#partialBytes + 1);
      this.#queuedBytes += this.#partialBytes + 1;
      this.#partial = [];
      this.#partialBytes = 0;
      this.#overlong = false;
      start = nl + 1;
    }
    if (this.#queuedBytes > MAX_QUEUED_BYTES) this.#socket.pause();
    void this.#pump();
  }

  async #pump(): Promise<void> {
    if (this.#busy || this.#done) return;
    this.#busy = true;
    try {
      while (this.#lines.length > 0 && !this.#done) {
        const line = this.#lines.shift()!;
        this.#queuedBytes -= this.#lineBytes.shift()!;
        await this.#handle(line);
      }
      if (this.#state === 'get' && this.#lines.length === 0 && this.#partialBytes > 0 && !this.#done) {
        // wireguard-go decides on the first byte after "get=1\n", without waiting for a newline.
        const rest = Buffer.concat(this.#partial).subarray(1);
        this.#partial = rest.length > 0 ? [rest] : [];
        this.#partialBytes = rest.length;
        await this.#handle(TRAILING_BYTE);
      }
      if (this.#queuedBytes <= MAX_QUEUED_BYTES && !this.#done) this.#socket.resume();
      if (this.#ended && this.#lines.length === 0 && !this.#done) await this.#finish();
    } finally {
      this.#busy = false;
    }
    // Lines that arrived while the last transaction ran.
    if (!this.#done && (this.#lines.length > 0 || this.#ended)) void this.#pump();
  }

  async #handle(line: string): Promise<void> {
    switch (this.#state) {
      case 'op':
        if (line === 'set=1') {
          this.#state = 'set';
          this.#setLines = [];
          this.#setBytes = 0;
          this.#setReadError = null;
        } else if (line === 'get=1') {
          this.#state = 'get';
        } else {
          // wireguard-go: "invalid UAPI operation", connection closed without a reply.
          this.#handlers.protocolClose();
          this.#close();
        }
        return;
      case 'get':
        this.#state = 'op';
        if (line === '') {
          this.#write(await this.#handlers.run(() => this.#handlers.get()));
        } else {
          // wireguard-go reads one byte after "get=1\n"; the rest of the line is the next operation.
          this.#write(formatUapiErrno(UapiErrno.EINVAL));
          if (line === OVERLONG) this.#close();
          else if (line !== TRAILING_BYTE) await this.#handle(line.slice(1));
        }
        return;
      case 'set':
        if (line === '') {
          this.#state = 'op';
          await this.#runSet();
          return;
        }
        if (this.#setReadError !== null) return;
        if (line === OVERLONG) {
          this.#setReadError = UapiErrno.EIO;
          return;
        }
        this.#setBytes += line.length + 1;
        if (this.#setBytes > UAPI_MAX_TRANSACTION_BYTES) {
          this.#setReadError = UapiErrno.EIO;
          this.#setLines = [];
          return;
        }
        this.#setLines.push(line);
        return;
    }
  }

  async #runSet(): Promise<void> {
    const lines = this.#setLines;
    const readError = this.#setReadError;
    this.#setLines = [];
    this.#write(await this.#handlers.run(() => this.#handlers.set(lines, readError)));
  }

  /** End of input: a `set=1` cut short still applies (as wireguard-go's scanner ends at EOF); then the connection ends. */
  async #finish(): Promise<void> {
    if (this.#partialBytes > 0 && this.#state === 'set' && this.#setReadError === null) {
      this.#setLines.push(Buffer.concat(this.#partial).toString('utf8'));
      this.#partial = [];
      this.#partialBytes = 0;
    }
    if (this.#state === 'set') await this.#runSet();
    this.#close();
  }

  #write(text: string): void {
    if (!this.#done && this.#socket.writable) this.#socket.write(text);
  }

  #close(): void {
    if (this.#done) return;
    this.#done = true;
    this.#lines.length = 0;
    this.#lineBytes.length = 0;
    this.#socket.end();
  }
}

/** Marks a line longer than {@link UAPI_MAX_LINE_BYTES} (its text is not kept). */
const OVERLONG = '\u0000overlong';
/** Stands for a byte after `get=1\n` that is not '\n', seen before its line is complete (it has been taken off the partial line). */
const TRAILING_BYTE = '\u0000trailing';

/** A reply to one transaction, as {@link uapiRequest} returns it. */
export interface UapiReply {
  /** The `key=value` lines before `errno=` (the status of a `get=1`; empty for `set=1`). */
  body: string;
  /** 0, or the positive errno of a failure (the wire carries it negated). */
  errno: number;
}

/**
 * A UAPI client for tests and tools: connects to `path`, sends `request`
 * (e.g. `"get=1\n\n"`), and resolves with the first complete reply.
 * @throws VectunError `ERR_WG_UAPI` (cannot connect, closed before a reply,
 *   or no reply within `timeoutMs`).
 */
export function uapiRequest(path: string, request: string, timeoutMs = 5_000): Promise<UapiReply> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let received = '';
    let settled = false;
    const settle = (outcome: UapiReply | Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    const timer = setTimeout(() => settle(new VectunError('ERR_WG_UAPI', `no UAPI reply from ${path} within ${timeoutMs} ms`)), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(request));
    socket.on('data', (text: string) => {
      received += text;
      const m = /(^|\n)errno=(-?\d+)\n\n/.exec(received);
      if (m !== null) settle({ body: received.slice(0, m.index + m[1]!.length), errno: Math.abs(Number(m[2])) });
    });
    socket.on('error', (err: NodeJS.ErrnoException) =>
      settle(
        new VectunError('ERR_WG_UAPI', `UAPI request to ${path} failed: ${err.message}`, {
          cause: err,
          syscall: err.syscall ?? 'connect',
          ...(err.errno !== undefined ? { errno: Math.abs(err.errno) } : {}),
        }),
      ),
    );
    socket.on('close', () => settle(new VectunError('ERR_WG_UAPI', `UAPI connection to ${path} closed without a reply`)));
  });
}

/** Throws `ERR_INVALID_ARG` unless `name` is a usable interface (and file) name. */
function assertInterfaceName(name: string): void {
  const bytes = Buffer.byteLength(name);
  if (bytes < 1 || bytes > 15 || name === '.' || name === '..' || /[/\s:\0]/.test(name)) {
    throw new VectunError('ERR_INVALID_ARG', `options.interfaceName must be 1-15 bytes without '/', ':' or spaces, got ${JSON.stringify(name)}`);
  }
}

/**
 * wireguard-go's stale-socket rule: a socket file at `path` is removed only if
 * connecting to it is refused (nobody listens).
 */
async function removeIfStale(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) throw new VectunError('ERR_WG_UAPI', `${path} exists and is not a socket; not removing it`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new VectunError('ERR_WG_UAPI_IN_USE', `a UAPI listener already answers on ${path} (is the interface running?)`);
  await wrapFs('unlink', path, () => unlink(path).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err))));
}

async function wrapFs<T>(syscall: string, path: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw fsError(syscall, path, err);
  }
}

function fsError(syscall: string, path: string, err: unknown): VectunError {
  if (err instanceof VectunError) return err;
  const e = err as NodeJS.ErrnoException;
  return new VectunError('ERR_WG_UAPI', `${syscall} ${path}: ${e.message}`, {
    cause: err,
    syscall,
    ...(e.errno !== undefined ? { errno: Math.abs(e.errno) } : {}),
  });
}
