/**
 * `WgDevice`: a WireGuard interface in userspace (whitepaper; wireguard-go's
 * device/ as the reference for behaviour). It owns a TUN device and a UDP
 * socket and runs two loops: TUN batches go through the send path
 * (src/wg/send.ts), UDP batches through the receive path
 * (src/wg/receive.ts); handshake messages are queued and handled here
 * (initiations, responses, cookie replies; MAC2 cookies switched on under
 * load), as are the timers' actions and the configuration ({@link WgControl}:
 * status and `set=1`-style updates with wireguard-go's IpcSet semantics).
 *
 * The TUN and the socket are injectable ({@link WgTunnel}, {@link WgSocket}),
 * so two devices can talk over in-memory queues in tests; by default they
 * are a vectun `Tun` and a dual-stack `UdpSocket`.
 * @module
 */
import { EventEmitter } from 'node:events';
import { VectunError } from '../errors.js';
import { Tun, type TunOpenOptions } from '../device/tun.js';
import { UdpSocket, type UdpBatch } from '../udp/socket.js';
import { UdpEndpoint } from '../udp/address.js';
import { AllowedIps, canonicalCidr } from './allowed-ips.js';
import { createTransportCipher, type TransportCipher } from './aead.js';
import { CookieChecker, endpointBytes } from './cookie.js';
import { secureRandomBytes, type RandomBytes } from './crypto.js';
import { IndexTable, type Keypair } from './keypairs.js';
import { MESSAGE_COOKIE_REPLY, MESSAGE_INITIATION, MESSAGE_RESPONSE } from './constants.js';
import { hasValidLength, readU32, type MessageType } from './messages.js';
import { Handshake, StaticIdentity, consumeInitiation } from './noise.js';
import { HandshakeRateLimiter, UnderLoadDetector } from './ratelimiter.js';
import { Peer, PeerKeypair, systemClock, type PeerActions, type WgClock } from './peer.js';
import { ReceivePath, type ReceiveDrops } from './receive.js';
import { SendPath, type SendDrops } from './send.js';
import type { WgConfigUpdate, WgControl, WgDeviceConfig, WgDeviceStatus, WgPeerStatus, WgPeerUpdate } from './config.js';

/** Handshake messages waiting to be handled, at most (wireguard-go QueueHandshakeSize). */
export const HANDSHAKE_QUEUE_SIZE = 1024;
/** Queued handshakes that put the device under load (wireguard-go: a queue eighth). */
export const UNDER_LOAD_QUEUE = HANDSHAKE_QUEUE_SIZE / 8;
/** Handshake messages handled per event-loop turn before yielding to data. */
const HANDSHAKES_PER_TURN = 16;

const EINVAL = 22;
const EADDRINUSE = 98;

/** What a write or send reports back (a `Tun` WriteResult and a `UdpSendResult` fit). */
export interface WgIoResult {
  /** One entry per packet or datagram not taken. */
  readonly failures: readonly unknown[];
}

/** The TUN side of a device (a vectun `Tun` fits). */
export interface WgTunnel {
  /** Current MTU: plaintexts are padded up to it, never beyond. */
  readonly mtu: number;
  /** One batch of plain IP packets (views valid until the next read). */
  read(): Promise<Uint8Array[]>;
  /** Writes plain IP packets (coalesced where possible). */
  write(packets: readonly Uint8Array[]): Promise<WgIoResult>;
  /** Closes it. */
  close(): Promise<void>;
}

/** The UDP side of a device (a vectun `UdpSocket` fits). */
export interface WgSocket {
  /** The bound address; the device reads its `port`. */
  readonly localAddress: UdpEndpoint;
  /** One batch of datagrams with their sources (views valid until the next read). */
  read(): Promise<UdpBatch>;
  /** Sends datagrams to one destination. */
  send(datagrams: readonly Uint8Array[], destination: UdpEndpoint): Promise<WgIoResult>;
  /** Closes it; a pending read rejects. */
  close(): Promise<void>;
  /** Kernel-side drops, when the socket reports them (`UdpSocket` does: SO_RXQ_OVFL). */
  readonly stats?: {
    /** Datagrams the kernel dropped because the socket's receive buffer was full. */
    readonly receiveDrops: number;
  };
}

/** Opens the device's socket on `port` (0: any) with SO_MARK `fwmark` (0: none). */
export type WgSocketFactory = (port: number, fwmark: number) => Promise<WgSocket>;

/** Options of {@link WgDevice.create}. */
export interface WgDeviceOptions {
  /** TUN interface name (may contain `%d`); ignored with {@link tunnel}. */
  name?: string;
  /** Further options of the `Tun.open` call (`name` above wins). */
  tun?: TunOpenOptions;
  /** Initial configuration (as a `set=1` with replace_peers). */
  config?: WgDeviceConfig;
  /** A TUN side to use instead of opening a `Tun` (tests, or a Tun opened by the caller); closed with the device. */
  tunnel?: WgTunnel;
  /** How to open the UDP socket; default a dual-stack `UdpSocket`. */
  openSocket?: WgSocketFactory;
  /** Transport AEAD; default {@link createTransportCipher} (native batch when available). */
  cipher?: TransportCipher;
  /** @internal Clocks and timers (tests). */
  clock?: WgClock;
  /** @internal Random source for ephemeral keys and indices (tests). */
  random?: RandomBytes;
  /** Closes the device when aborted. */
  signal?: AbortSignal;
}

/** Counters of the handshake side (cumulative). */
export interface HandshakeCounters {
  /** Initiations, responses and cookie replies taken off the queue. */
  received: number;
  /** Initiations sent (retransmissions included). */
  initiationsSent: number;
  /** Responses sent. */
  responsesSent: number;
  /** Cookie replies sent (under load, for a message without a valid mac2). */
  cookieRepliesSent: number;
  /** Cookie replies accepted. */
  cookiesAccepted: number;
  /** Handshakes completed (keypairs installed). */
  completed: number;
  /** Dropped: the queue was full. */
  queueFull: number;
  /** Dropped: wrong length for the type. */
  malformed: number;
  /** Dropped: mac1 did not verify (§5.4.4). */
  badMac1: number;
  /** Dropped: under load and over the per-source rate. */
  rateLimited: number;
  /** Dropped: no private key configured. */
  noPrivateKey: number;
  /** Dropped: a response or cookie reply for an index we do not have. */
  unknownIndex: number;
  /** Dropped: a cookie reply that did not decrypt. */
  badCookie: number;
  /** Dropped by the Noise layer, by error code (`ERR_WG_DECRYPT`, `ERR_WG_REPLAY`, `ERR_WG_UNKNOWN_PEER`, ...). */
  rejected: Record<string, number>;
}

/** Send-path counters of {@link WgDeviceStats}. */
export interface WgSendStats {
  /** Transport messages handed to the socket. */
  messages: number;
  /** Per-peer batches sealed (one native call and one socket send each). */
  batches: number;
  /** Packets dropped, by reason. */
  drops: SendDrops;
}

/** Receive-path counters of {@link WgDeviceStats}. */
export interface WgReceiveStats {
  /** Data packets written to the TUN. */
  packets: number;
  /** Keepalives received (counted, not written). */
  keepalives: number;
  /** Handshake messages passed to the handshake queue. */
  handshakeMessages: number;
  /** Messages dropped, by reason. */
  drops: ReceiveDrops;
  /**
   * IPv6 UDP packets a peer sent with a computed checksum of 0 (illegal over
   * IPv6; wireguard-go sends about 1 in 65,536), written with the equal
   * 0xFFFF instead so the kernel delivers them.
   */
  udp6ChecksumsRepaired: number;
  /**
   * Datagrams the kernel dropped before we read them because the UDP receive
   * buffer was full (SO_RXQ_OVFL), summed over every socket this device has
   * bound; as of the last read. 0 when the socket does not report it.
   */
  socketDrops: number;
}

/** A snapshot of the device counters. */
export interface WgDeviceStats {
  /** Send path. */
  send: WgSendStats;
  /** Receive path. */
  receive: WgReceiveStats;
  /** Handshakes. */
  handshake: HandshakeCounters;
  /** Whether MAC2 cookies are demanded right now. */
  underLoad: boolean;
  /** Whether the transport AEAD is the native batch path. */
  nativeCrypto: boolean;
}

interface QueuedHandshake {
  message: Uint8Array;
  source: UdpEndpoint;
}

function configError(message: string, errno = EINVAL, cause?: unknown): VectunError {
  return new VectunError('ERR_WG_CONFIG', message, { errno, ...(cause === undefined ? {} : { cause }) });
}

function hex(key: Uint8Array): string {
  return Buffer.from(key).toString('hex');
}

function checkKey(key: unknown, what: string): Uint8Array {
  if (!(key instanceof Uint8Array) || key.length !== 32) throw configError(`${what} must be 32 bytes`);
  return key;
}

/** Address bytes and port of an endpoint, as cookies bind them (wg-proto endpointBytes). */
function sourceBytes(e: UdpEndpoint): Uint8Array {
  const sa = e.sockaddr;
  return e.family === 4 ? endpointBytes(sa.subarray(4, 8), e.port) : endpointBytes(sa.subarray(8, 24), e.port);
}

/** Socket buffers as wireguard-go sets them (conn.socketBufferSize): a burst of GSO batches fits without drops. */
export const WG_SOCKET_BUFFER = 7 << 20;

const defaultSocketFactory: WgSocketFactory = async (port, fwmark) =>
  UdpSocket.open({
    family: 'dual', port, receiveBufferSize: WG_SOCKET_BUFFER, sendBufferSize: WG_SOCKET_BUFFER,
    ...(fwmark !== 0 ? { fwmark } : {}),
  });

/**
 * A userspace WireGuard device. Create with {@link WgDevice.create}; it
 * implements {@link WgControl} for the UAPI server.
 *
 * Events: `'handshake'` (peer public key; a keypair was installed),
 * `'removed'` (the TUN device was deleted; the device closes), `'warning'`
 * (a loop error that did not stop the device), `'close'`.
 */
export class WgDevice extends EventEmitter implements WgControl {
  /** The TUN side. */
  readonly tunnel: WgTunnel;
  /** The transport AEAD in use. */
  readonly cipher: TransportCipher;
  /** @internal Cryptokey routing table (§2). */
  readonly routes = new AllowedIps<Peer>();
  /** @internal Our receiver indices → handshakes and keypairs. */
  readonly indices: IndexTable<Peer>;

  #routesVersion = 0;
  #socket: WgSocket | null = null;
  /** {@link WgReceiveStats.socketDrops} of sockets closed on a re-bind. */
  #retiredSocketDrops = 0;
  #socketWaiters: (() => void)[] = [];
  #listenPort = 0;
  #fwmark = 0;
  #privateKey: Uint8Array | null = null;
  #identity: StaticIdentity;
  #placeholderIdentity: boolean;
  readonly #peers = new Map<string, Peer>();
  readonly #clock: WgClock;
  readonly #random: RandomBytes;
  readonly #checker: CookieChecker;
  readonly #limiter: HandshakeRateLimiter;
  readonly #load: UnderLoadDetector;
  readonly #send: SendPath;
  readonly #receive: ReceivePath;
  readonly #queue: QueuedHandshake[] = [];
  #queueScheduled = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #loops: Promise<void>[] = [];
  #signal: AbortSignal | undefined;
  #onAbort: (() => void) | undefined;
  readonly #actions: PeerActions;
  readonly #handshakeCounters: HandshakeCounters = {
    received: 0, initiationsSent: 0, responsesSent: 0, cookieRepliesSent: 0, cookiesAccepted: 0, completed: 0,
    queueFull: 0, malformed: 0, badMac1: 0, rateLimited: 0, noPrivateKey: 0, unknownIndex: 0, badCookie: 0, rejected: {},
  };
  readonly #openSocket: WgSocketFactory;

  private constructor(tunnel: WgTunnel, openSocket: WgSocketFactory, cipher: TransportCipher, clock: WgClock, random: RandomBytes) {
    super();
    this.tunnel = tunnel;
    this.cipher = cipher;
    this.#openSocket = openSocket;
    this.#clock = clock;
    this.#random = random;
    this.indices = new IndexTable<Peer>(random);
    // Peers need an identity for their Handshake before a private key is set; it never handshakes.
    this.#identity = StaticIdentity.generate(random);
    this.#placeholderIdentity = true;
    this.#checker = new CookieChecker(null, { now: () => clock.now(), random });
    this.#limiter = new HandshakeRateLimiter(() => clock.now());
    this.#load = new UnderLoadDetector(UNDER_LOAD_QUEUE, () => clock.now());
    this.#actions = {
      sendInitiation: (peer, retry) => this.#initiate(peer, retry),
      sendKeepalive: (peer) => this.#send.sendKeepalive(peer),
      zeroKeyMaterial: (peer) => this.#zeroKeyMaterial(peer),
    };
    const device = this;
    this.#send = new SendPath({
      routes: this.routes,
      get routesVersion() { return device.#routesVersion; },
      cipher,
      get mtu() { return device.tunnel.mtu; },
      get socket() { return device.#socket; },
      now: () => clock.now(),
      initiate: (peer) => this.#initiate(peer, false),
    });
    this.#receive = new ReceivePath({
      routes: this.routes,
      get routesVersion() { return device.#routesVersion; },
      indices: this.indices,
      cipher,
      tunnel,
      now: () => clock.now(),
      handshakeMessage: (message, source) => this.#enqueueHandshake(message, source),
      keypairConfirmed: (peer) => {
        peer.timersHandshakeComplete();
        this.#handshakeCounters.completed++;
        this.emit('handshake', peer.publicKey);
        this.#send.sendStaged(peer);
      },
      receivedWith: (peer) => {
        if (peer.timers.keepKeyFreshReceiving(peer.keypairs.current)) this.#initiate(peer, false);
      },
    });
  }

  /**
   * Opens the TUN device (unless one is given) and the UDP socket, applies
   * `config` and starts forwarding.
   * @throws VectunError `ERR_WG_CONFIG` (bad configuration, errno EADDRINUSE
   *   for a port in use), the Tun's and UdpSocket's open errors.
   */
  static async create(options: WgDeviceOptions = {}): Promise<WgDevice> {
    if (options === null || typeof options !== 'object') throw new VectunError('ERR_INVALID_ARG', 'options must be an object');
    options.signal?.throwIfAborted();
    const cipher = options.cipher ?? createTransportCipher();
    const clock = options.clock ?? systemClock;
    const random = options.random ?? secureRandomBytes;
    const tunnel = options.tunnel ?? (await Tun.open({ ...options.tun, ...(options.name !== undefined ? { name: options.name } : {}) }));
    const device = new WgDevice(tunnel, options.openSocket ?? defaultSocketFactory, cipher, clock, random);
    try {
      const c = options.config ?? {};
      await device.#bind(c.listenPort ?? 0, c.fwmark ?? 0);
      await device.update({
        replacePeers: true,
        ...(c.privateKey !== undefined ? { privateKey: c.privateKey } : {}),
        peers: (c.peers ?? []).map((p) => ({
          publicKey: p.publicKey,
          ...(p.presharedKey !== undefined ? { presharedKey: p.presharedKey } : {}),
          ...(p.endpoint != null ? { endpoint: p.endpoint } : {}),
          ...(p.persistentKeepalive !== undefined ? { persistentKeepalive: p.persistentKeepalive } : {}),
          replaceAllowedIps: true,
          allowedIps: p.allowedIps ?? [],
        })),
      });
    } catch (err) {
      await device.close();
      throw err;
    }
    if (tunnel instanceof Tun) {
      tunnel.once('removed', () => {
        device.emit('removed');
        void device.close();
      });
    }
    if (options.signal !== undefined) {
      device.#signal = options.signal;
      device.#onAbort = () => void device.close();
      options.signal.addEventListener('abort', device.#onAbort, { once: true });
    }
    device.#loops.push(device.#tunLoop(), device.#udpLoop());
    return device;
  }

  /** Whether close() was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The bound UDP port. */
  get listenPort(): number {
    return this.#listenPort;
  }

  /** Our public key, or null without a private key. */
  get publicKey(): Uint8Array | null {
    return this.#privateKey === null ? null : this.#identity.publicKey;
  }

  /** A snapshot of the counters. */
  get stats(): WgDeviceStats {
    const h = this.#handshakeCounters;
    return {
      send: { messages: this.#send.messages, batches: this.#send.batches, drops: { ...this.#send.drops } },
      receive: {
        packets: this.#receive.packets, keepalives: this.#receive.keepalives,
        handshakeMessages: this.#receive.handshakeMessages, drops: { ...this.#receive.drops },
        udp6ChecksumsRepaired: this.#receive.udp6ChecksumsRepaired,
        socketDrops: this.#retiredSocketDrops + (this.#socket?.stats?.receiveDrops ?? 0),
      },
      handshake: { ...h, rejected: { ...h.rejected } },
      underLoad: this.#load.isUnderLoad(this.#queue.length),
      nativeCrypto: this.cipher.native,
    };
  }

  /** @internal The peer with this public key (internal state, for tests and diagnostics). */
  peer(publicKey: Uint8Array): Peer | undefined {
    return this.#peers.get(hex(publicKey));
  }

  // ---------------------------------------------------------------- WgControl

  /** The configuration and counters, as `get=1` reports them. */
  status(): WgDeviceStatus {
    const peers: WgPeerStatus[] = [];
    for (const p of this.#peers.values()) {
      const wall = p.lastHandshakeWall;
      peers.push({
        publicKey: Uint8Array.from(p.publicKey),
        presharedKey: p.presharedKey === null ? null : Uint8Array.from(p.presharedKey),
        endpoint: p.endpoint === null ? null : { address: p.endpoint.address, port: p.endpoint.port },
        persistentKeepalive: p.persistentKeepalive,
        allowedIps: this.routes.entriesForPeer(p),
        lastHandshake: wall === 0 ? null : { seconds: Math.floor(wall / 1000), nanoseconds: Math.round((wall % 1000) * 1e6) },
        rxBytes: p.counters.rxBytes,
        txBytes: p.counters.txBytes,
        protocolVersion: 1,
      });
    }
    return {
      privateKey: this.#privateKey === null ? null : Uint8Array.from(this.#privateKey),
      publicKey: this.publicKey === null ? null : Uint8Array.from(this.publicKey),
      listenPort: this.listenPort,
      fwmark: this.#fwmark,
      peers,
    };
  }

  /**
   * Applies one transaction in order, as wireguard-go's IpcSet: a failing
   * step rejects with `ERR_WG_CONFIG` (errno as the UAPI reply's) and leaves
   * the steps before it applied.
   */
  async update(update: WgConfigUpdate): Promise<void> {
    if (this.#closed) throw configError('the device is closed', 19 /* ENODEV */);
    if (update === null || typeof update !== 'object') throw configError('an update must be an object');
    if (update.privateKey !== undefined) this.#setPrivateKey(update.privateKey === null ? null : checkKey(update.privateKey, 'private key'));
    if (update.listenPort !== undefined || update.fwmark !== undefined) {
      const port = update.listenPort ?? this.#listenPort;
      const mark = update.fwmark ?? this.#fwmark;
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw configError(`listen port ${String(port)} is not in 0..65535`);
      if (!Number.isInteger(mark) || mark < 0 || mark > 0xffffffff) throw configError(`fwmark ${String(mark)} is not a 32-bit value`);
      if (port !== this.#listenPort || mark !== this.#fwmark) await this.#bind(port, mark);
    }
    if (update.replacePeers === true) for (const p of [...this.#peers.values()]) this.#removePeer(p);
    for (const pu of update.peers ?? []) this.#updatePeer(pu);
  }

  #setPrivateKey(key: Uint8Array | null): void {
    if (key === null) {
      if (this.#privateKey === null) return;
      this.#privateKey = null;
      this.#checker.setPublicKey(null);
      for (const p of this.#peers.values()) this.#zeroKeyMaterial(p);
      return;
    }
    if (this.#privateKey !== null && Buffer.from(key).equals(Buffer.from(this.#privateKey))) return;
    let identity: StaticIdentity;
    try {
      identity = new StaticIdentity(key);
    } catch (err) {
      throw configError('the private key is not a valid Curve25519 key', EINVAL, err);
    }
    // wireguard-go SetPrivateKey: a peer with our own public key is removed.
    const own = this.#peers.get(hex(identity.publicKey));
    if (own !== undefined) this.#removePeer(own);
    this.#privateKey = Uint8Array.from(key);
    this.#identity = identity;
    this.#placeholderIdentity = false;
    this.#checker.setPublicKey(identity.publicKey);
    for (const p of this.#peers.values()) {
      // New static-static DH; sessions of the old identity are void.
      this.#zeroKeyMaterial(p);
      p.handshake.setIdentity(identity);
    }
  }

  #updatePeer(u: WgPeerUpdate): void {
    if (u === null || typeof u !== 'object') throw configError('a peer update must be an object');
    const publicKey = checkKey(u.publicKey, 'public key');
    const id = hex(publicKey);
    let peer = this.#peers.get(id);
    if (u.remove === true) {
      if (peer !== undefined) this.#removePeer(peer);
      return;
    }
    if (peer === undefined) {
      if (u.updateOnly === true) return;
      // wireguard-go ignores a peer with the device's own public key.
      if (!this.#placeholderIdentity && id === hex(this.#identity.publicKey)) return;
      let handshake: Handshake;
      try {
        handshake = new Handshake(this.#identity, publicKey, null, { random: this.#random, clock: this.#clock });
      } catch (err) {
        throw configError('invalid peer public key', EINVAL, err);
      }
      peer = new Peer(publicKey, handshake, this.#clock, this.#actions, (k: Keypair) => this.indices.delete(k.localIndex));
      this.#peers.set(id, peer);
    }
    if (u.presharedKey !== undefined) {
      const psk = u.presharedKey === null ? null : checkKey(u.presharedKey, 'preshared key');
      peer.handshake.setPresharedKey(psk);
      peer.presharedKey = psk === null || psk.every((b) => b === 0) ? null : Uint8Array.from(psk);
    }
    if (u.endpoint !== undefined) {
      const e = u.endpoint;
      try {
        peer.endpoint = UdpEndpoint.of(e.address, e.port);
      } catch (err) {
        throw configError(`invalid endpoint ${String(e?.address)}:${String(e?.port)}`, EINVAL, err);
      }
    }
    if (u.persistentKeepalive !== undefined) {
      const k = u.persistentKeepalive;
      if (!Number.isInteger(k) || k < 0 || k > 65535) throw configError(`persistent keepalive ${String(k)} is not in 0..65535`);
      const was = peer.persistentKeepalive;
      peer.persistentKeepalive = k;
      // wireguard-go: switching it on sends a keepalive at once (when the device can).
      if (was === 0 && k > 0 && this.#privateKey !== null && peer.endpoint !== null) this.#send.sendKeepalive(peer);
    }
    if (u.replaceAllowedIps === true) {
      this.routes.removeByPeer(peer);
      this.#routesVersion++;
    }
    for (const cidr of u.allowedIps ?? []) {
      try {
        canonicalCidr(cidr);
        this.routes.insert(cidr, peer);
      } catch (err) {
        throw configError(`invalid allowed IP ${String(cidr)}`, EINVAL, err);
      }
      this.#routesVersion++;
    }
  }

  #removePeer(peer: Peer): void {
    peer.removed = true;
    peer.stopTimers();
    peer.keypairs.clear();
    peer.handshake.clear();
    peer.staged.length = 0;
    this.indices.deletePeer(peer);
    this.routes.removeByPeer(peer);
    this.#routesVersion++;
    this.#peers.delete(peer.id);
  }

  #zeroKeyMaterial(peer: Peer): void {
    peer.keypairs.clear();
    peer.handshake.clear();
    if (peer.handshakeIndex !== 0) this.indices.delete(peer.handshakeIndex);
    peer.handshakeIndex = 0;
    peer.staged.length = 0;
  }

  /** Opens the socket for `port`/`fwmark`; on success the old one is closed. */
  async #bind(port: number, fwmark: number): Promise<void> {
    const old = this.#socket;
    // Same port (a fwmark change, or re-binding a fixed port): the old socket holds it, close first.
    const samePort = old !== null && port !== 0 && port === old.localAddress.port;
    if (samePort) {
      this.#socket = null;
      this.#retiredSocketDrops += old.stats?.receiveDrops ?? 0;
      await old.close();
    }
    let fresh: WgSocket;
    try {
      fresh = await this.#openSocket(port, fwmark);
    } catch (err) {
      const errno = err instanceof VectunError ? err.errno : undefined;
      if (samePort) {
        // Put the old binding back as well as we can.
        try {
          this.#socket = await this.#openSocket(old!.localAddress.port, this.#fwmark);
        } catch {
          this.#socket = null;
        }
      }
      throw configError(`cannot bind UDP port ${port}${errno === EADDRINUSE ? ': in use' : ''}`, errno ?? EINVAL, err);
    }
    if (this.#closed) {
      await fresh.close();
      return;
    }
    this.#socket = fresh;
    // The port actually bound, as wireguard-go keeps it: a later fwmark change re-binds the same port.
    this.#listenPort = fresh.localAddress.port;
    this.#fwmark = fwmark;
    if (old !== null && !samePort) {
      this.#retiredSocketDrops += old.stats?.receiveDrops ?? 0;
      await old.close();
    }
    for (const w of this.#socketWaiters.splice(0)) w();
  }

  // ---------------------------------------------------------------- loops

  async #tunLoop(): Promise<void> {
    const tunnel = this.tunnel;
    while (!this.#closed) {
      let batch: Uint8Array[];
      try {
        batch = await tunnel.read();
      } catch (err) {
        if (this.#closed) return;
        const code = err instanceof VectunError ? err.code : undefined;
        if (code === 'ERR_TUN_CLOSED' || code === 'ERR_TUN_REMOVED') {
          void this.close();
          return;
        }
        this.emit('warning', err);
        continue;
      }
      await this.#send.process(batch);
    }
  }

  async #udpLoop(): Promise<void> {
    while (!this.#closed) {
      const socket = this.#socket;
      if (socket === null) {
        await new Promise<void>((resolve) => this.#socketWaiters.push(resolve));
        continue;
      }
      let batch: UdpBatch;
      try {
        batch = await socket.read();
      } catch (err) {
        if (this.#closed || socket !== this.#socket) continue; // closed or re-bound: go on with the new socket
        this.emit('warning', err);
        await new Promise<void>((resolve) => setImmediate(resolve));
        continue;
      }
      await this.#receive.process(batch.datagrams, batch.sources);
    }
  }

  // ---------------------------------------------------------------- handshakes

  #enqueueHandshake(message: Uint8Array, source: UdpEndpoint): void {
    if (this.#queue.length >= HANDSHAKE_QUEUE_SIZE) {
      this.#handshakeCounters.queueFull++;
      return;
    }
    this.#queue.push({ message: Uint8Array.from(message), source });
    if (!this.#queueScheduled) {
      this.#queueScheduled = true;
      setImmediate(() => this.#drainHandshakes());
    }
  }

  #drainHandshakes(): void {
    this.#queueScheduled = false;
    for (let n = 0; n < HANDSHAKES_PER_TURN && this.#queue.length > 0 && !this.#closed; n++) {
      // Load is judged with the message still counted, as wireguard-go measures its queue.
      const underLoad = this.#load.isUnderLoad(this.#queue.length);
      const h = this.#queue.shift()!;
      this.#handleHandshake(h.message, h.source, underLoad);
    }
    if (this.#queue.length > 0 && !this.#closed) {
      this.#queueScheduled = true;
      setImmediate(() => this.#drainHandshakes());
    }
  }

  #reject(code: string): void {
    const r = this.#handshakeCounters.rejected;
    r[code] = (r[code] ?? 0) + 1;
  }

  #handleHandshake(msg: Uint8Array, source: UdpEndpoint, underLoad: boolean): void {
    const c = this.#handshakeCounters;
    c.received++;
    const type = msg[0]! as MessageType;
    if (!hasValidLength(type, msg.length)) {
      c.malformed++;
      return;
    }
    if (this.#privateKey === null) {
      c.noPrivateKey++;
      return;
    }
    if (type === MESSAGE_COOKIE_REPLY) {
      const entry = this.indices.lookup(readU32(msg, 4));
      if (entry === undefined) {
        c.unknownIndex++;
        return;
      }
      if (entry.peer.cookies.consumeReply(msg)) c.cookiesAccepted++;
      else c.badCookie++;
      return;
    }
    if (!this.#checker.checkMac1(msg)) {
      c.badMac1++;
      return;
    }
    if (underLoad) {
      const bytes = sourceBytes(source);
      if (!this.#checker.checkMac2(msg, bytes)) {
        const reply = this.#checker.createReply(msg, readU32(msg, 4), bytes);
        if (reply !== null) {
          c.cookieRepliesSent++;
          void this.#socket?.send([reply], source).catch(() => undefined);
        }
        return;
      }
      if (!this.#limiter.allow(source.address)) {
        c.rateLimited++;
        return;
      }
    }
    try {
      if (type === MESSAGE_INITIATION) this.#onInitiation(msg, source);
      else if (type === MESSAGE_RESPONSE) this.#onResponse(msg, source);
    } catch (err) {
      this.#reject(err instanceof VectunError ? err.code : 'ERR_WG_DECRYPT');
    }
  }

  #onInitiation(msg: Uint8Array, source: UdpEndpoint): void {
    const peer = consumeInitiation(this.#identity, msg, (key) => this.#peers.get(hex(key)));
    peer.endpoint = source;
    if (peer.handshakeIndex !== 0) this.indices.delete(peer.handshakeIndex);
    const index = this.indices.allocateForHandshake(peer, peer.handshake);
    const response = peer.handshake.createResponse(index);
    peer.cookies.addMacs(response);
    // Responder: the keypair is `next` until the initiator's first message confirms it (§5.4.5).
    this.#beginSession(peer, index);
    peer.timersAnyAuthenticatedPacketTraversal();
    peer.timersAnyAuthenticatedPacketSent();
    this.#handshakeCounters.responsesSent++;
    void this.#socket?.send([response], source).catch(() => undefined);
  }

  #onResponse(msg: Uint8Array, source: UdpEndpoint): void {
    const index = readU32(msg, 8);
    const entry = this.indices.lookup(index);
    if (entry === undefined || entry.handshake === null || entry.handshake !== entry.peer.handshake) {
      this.#handshakeCounters.unknownIndex++;
      return;
    }
    const peer = entry.peer;
    peer.handshake.consumeResponse(msg);
    peer.endpoint = source;
    this.#beginSession(peer, index);
    peer.timersHandshakeComplete();
    peer.timersAnyAuthenticatedPacketReceived();
    peer.timersAnyAuthenticatedPacketTraversal();
    this.#handshakeCounters.completed++;
    this.emit('handshake', peer.publicKey);
    // wireguard-go: the staged packets go now, or a keepalive confirms the keypair to the responder.
    this.#send.sendKeepalive(peer);
  }

  /** Derives the handshake's keypair, points its index at it and installs it (wireguard-go BeginSymmetricSession). */
  #beginSession(peer: Peer, index: number): void {
    const keypair = new PeerKeypair(peer.handshake.deriveKeypair(), this.cipher, peer);
    this.indices.swapForKeypair(index, keypair);
    peer.handshakeIndex = 0;
    peer.keypairs.install(keypair);
    peer.timersSessionDerived();
  }

  /** wireguard-go SendHandshakeInitiation: at most one per REKEY_TIMEOUT. */
  #initiate(peer: Peer, retry: boolean): void {
    if (this.#closed || peer.removed || this.#privateKey === null) return;
    if (!peer.timers.mayInitiate(retry)) return;
    if (peer.handshakeIndex !== 0) this.indices.delete(peer.handshakeIndex);
    let message: Uint8Array;
    try {
      const index = this.indices.allocateForHandshake(peer, peer.handshake);
      peer.handshakeIndex = index;
      message = peer.handshake.createInitiation(index);
    } catch (err) {
      this.#reject(err instanceof VectunError ? err.code : 'ERR_WG_KEY');
      return;
    }
    peer.cookies.addMacs(message);
    peer.counters.initiationsSent++;
    this.#handshakeCounters.initiationsSent++;
    peer.timersAnyAuthenticatedPacketTraversal();
    peer.timersAnyAuthenticatedPacketSent();
    const socket = this.#socket;
    if (peer.endpoint !== null && socket !== null) void socket.send([message], peer.endpoint).catch(() => undefined);
    peer.timersHandshakeInitiated();
  }

  /**
   * Starts a handshake with the peer now, as outgoing traffic would (at most
   * one initiation per REKEY_TIMEOUT).
   * @throws VectunError `ERR_INVALID_ARG` for an unknown peer.
   */
  initiateHandshake(publicKey: Uint8Array): void {
    const peer = this.peer(publicKey);
    if (peer === undefined) throw new VectunError('ERR_INVALID_ARG', 'no such peer');
    this.#initiate(peer, false);
  }

  // ---------------------------------------------------------------- closing

  /**
   * Stops forwarding, erases every key, closes the socket and the TUN.
   * Idempotent; `'close'` follows.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    if (this.#signal !== undefined && this.#onAbort !== undefined) this.#signal.removeEventListener('abort', this.#onAbort);
    for (const p of this.#peers.values()) {
      p.stopTimers();
      p.keypairs.clear();
      p.handshake.clear();
      p.staged.length = 0;
    }
    this.#queue.length = 0;
    this.#privateKey?.fill(0);
    for (const w of this.#socketWaiters.splice(0)) w();
    const socket = this.#socket;
    this.#socket = null;
    this.#closing = (async () => {
      await Promise.allSettled([socket?.close(), this.tunnel.close()]);
      await Promise.allSettled(this.#loops);
      this.emit('close');
    })();
    return this.#closing;
  }

  /** `await using dev = await WgDevice.create(...)`: closes it. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
