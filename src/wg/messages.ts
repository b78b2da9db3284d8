/**
 * Parse and serialize the four WireGuard messages (whitepaper §5.4.2, §5.4.3,
 * §5.4.6, §5.4.7). All integers are little-endian; the type is one byte
 * followed by three zero bytes, so it is read as a 32-bit word as
 * wireguard-go does. Parsed messages are views into the input (no copies).
 *
 * Failures are `VectunError`s: `ERR_WG_MESSAGE_TYPE` (type not 1..4 or
 * reserved bytes set), `ERR_WG_MESSAGE_LENGTH` (wrong size for the type).
 * @module
 */
import { VectunError } from '../errors.js';
import {
  AEAD_TAG_SIZE,
  KEY_SIZE,
  MAC_SIZE,
  MESSAGE_COOKIE_REPLY,
  MESSAGE_COOKIE_REPLY_SIZE,
  MESSAGE_INITIATION,
  MESSAGE_INITIATION_SIZE,
  MESSAGE_KEEPALIVE_SIZE,
  MESSAGE_RESPONSE,
  MESSAGE_RESPONSE_SIZE,
  MESSAGE_TRANSPORT,
  MESSAGE_TRANSPORT_HEADER_SIZE,
  TIMESTAMP_SIZE,
  XNONCE_SIZE,
} from './constants.js';

/** One of the four message types. */
export type MessageType = typeof MESSAGE_INITIATION | typeof MESSAGE_RESPONSE | typeof MESSAGE_COOKIE_REPLY | typeof MESSAGE_TRANSPORT;

/** Handshake initiation (§5.4.2), 148 bytes. */
export interface InitiationMessage {
  /** Always 1. */
  type: typeof MESSAGE_INITIATION;
  /** The initiator's index for this handshake. */
  sender: number;
  /** Unencrypted ephemeral public key, 32 bytes. */
  ephemeral: Uint8Array;
  /** AEAD of the initiator's static public key, 48 bytes. */
  encryptedStatic: Uint8Array;
  /** AEAD of the TAI64N timestamp, 28 bytes. */
  encryptedTimestamp: Uint8Array;
  /** MAC of the message up to here keyed by the receiver's public key, 16 bytes (§5.4.4). */
  mac1: Uint8Array;
  /** MAC keyed by a cookie, or zeros, 16 bytes (§5.4.4). */
  mac2: Uint8Array;
}

/** Handshake response (§5.4.3), 92 bytes. */
export interface ResponseMessage {
  /** Always 2. */
  type: typeof MESSAGE_RESPONSE;
  /** The responder's index for this session. */
  sender: number;
  /** The initiator's index, from the initiation. */
  receiver: number;
  /** Unencrypted ephemeral public key, 32 bytes. */
  ephemeral: Uint8Array;
  /** AEAD of the empty string, 16 bytes (only the tag). */
  encryptedNothing: Uint8Array;
  /** As in the initiation, 16 bytes. */
  mac1: Uint8Array;
  /** As in the initiation, 16 bytes. */
  mac2: Uint8Array;
}

/** Cookie reply (§5.4.7), 64 bytes. */
export interface CookieReplyMessage {
  /** Always 3. */
  type: typeof MESSAGE_COOKIE_REPLY;
  /** The sender index of the handshake message that is answered. */
  receiver: number;
  /** 24-byte XChaCha20 nonce. */
  nonce: Uint8Array;
  /** XAEAD of the 16-byte cookie, 32 bytes. */
  encryptedCookie: Uint8Array;
}

/** Transport data (§5.4.6): 16-byte header, then ciphertext ‖ tag (>= 16 bytes). */
export interface TransportMessage {
  /** Always 4. */
  type: typeof MESSAGE_TRANSPORT;
  /** The receiver's index of the session. */
  receiver: number;
  /** The 64-bit nonce counter. */
  counter: bigint;
  /** Ciphertext and tag; a keepalive has only the 16-byte tag. */
  encrypted: Uint8Array;
}

/** Any parsed message. */
export type Message = InitiationMessage | ResponseMessage | CookieReplyMessage | TransportMessage;

/** Offsets inside an initiation. */
export const INITIATION_OFFSETS = {
  /** Sender index (LE32). */
  sender: 4,
  /** Ephemeral public key. */
  ephemeral: 8,
  /** Encrypted static key. */
  static: 40,
  /** Encrypted timestamp. */
  timestamp: 88,
  /** mac1. */
  mac1: 116,
  /** mac2. */
  mac2: 132,
} as const;
/** Offsets inside a response. */
export const RESPONSE_OFFSETS = {
  /** Sender index (LE32). */
  sender: 4,
  /** Receiver index (LE32). */
  receiver: 8,
  /** Ephemeral public key. */
  ephemeral: 12,
  /** Encrypted empty string (tag). */
  empty: 44,
  /** mac1. */
  mac1: 60,
  /** mac2. */
  mac2: 76,
} as const;
/** Offsets inside a cookie reply. */
export const COOKIE_REPLY_OFFSETS = {
  /** Receiver index (LE32). */
  receiver: 4,
  /** XChaCha20 nonce. */
  nonce: 8,
  /** Encrypted cookie. */
  cookie: 32,
} as const;

/** Reads a little-endian 32-bit unsigned integer. The caller checks bounds. */
export function readU32(b: Uint8Array, offset: number): number {
  return (b[offset]! | (b[offset + 1]! << 8) | (b[offset + 2]! << 16) | (b[offset + 3]! << 24)) >>> 0;
}

/** Writes a little-endian 32-bit unsigned integer. */
export function writeU32(b: Uint8Array, offset: number, value: number): void {
  b[offset] = value & 0xff;
  b[offset + 1] = (value >>> 8) & 0xff;
  b[offset + 2] = (value >>> 16) & 0xff;
  b[offset + 3] = (value >>> 24) & 0xff;
}

/**
 * The message type of a datagram, or 0 if it is shorter than 4 bytes, the
 * type is not 1..4 or a reserved byte is set. Never throws (receive path).
 */
export function messageType(b: Uint8Array): MessageType | 0 {
  if (b.length < 4) return 0;
  const t = readU32(b, 0);
  return t >= MESSAGE_INITIATION && t <= MESSAGE_TRANSPORT ? (t as MessageType) : 0;
}

/** True if `b` has exactly the length its type requires (transport: at least a keepalive). */
export function hasValidLength(type: MessageType, length: number): boolean {
  switch (type) {
    case MESSAGE_INITIATION:
      return length === MESSAGE_INITIATION_SIZE;
    case MESSAGE_RESPONSE:
      return length === MESSAGE_RESPONSE_SIZE;
    case MESSAGE_COOKIE_REPLY:
      return length === MESSAGE_COOKIE_REPLY_SIZE;
    case MESSAGE_TRANSPORT:
      return length >= MESSAGE_KEEPALIVE_SIZE;
  }
}

function expect(b: Uint8Array, type: MessageType): void {
  if (!(b instanceof Uint8Array)) throw new VectunError('ERR_WG_MESSAGE_TYPE', 'a message must be a Uint8Array');
  const t = messageType(b);
  if (t === 0 && b.length < 4) throw new VectunError('ERR_WG_MESSAGE_LENGTH', `message of ${b.length} bytes is shorter than its type field`);
  if (t !== type) throw new VectunError('ERR_WG_MESSAGE_TYPE', `expected message type ${type}, got ${b.length >= 4 ? readU32(b, 0) : 'none'}`);
  if (!hasValidLength(type, b.length)) throw new VectunError('ERR_WG_MESSAGE_LENGTH', `message type ${type} of ${b.length} bytes has the wrong length`);
}

/** Parses a handshake initiation. @throws VectunError `ERR_WG_MESSAGE_TYPE`, `ERR_WG_MESSAGE_LENGTH`. */
export function parseInitiation(b: Uint8Array): InitiationMessage {
  expect(b, MESSAGE_INITIATION);
  const o = INITIATION_OFFSETS;
  return {
    type: MESSAGE_INITIATION,
    sender: readU32(b, o.sender),
    ephemeral: b.subarray(o.ephemeral, o.ephemeral + KEY_SIZE),
    encryptedStatic: b.subarray(o.static, o.static + KEY_SIZE + AEAD_TAG_SIZE),
    encryptedTimestamp: b.subarray(o.timestamp, o.timestamp + TIMESTAMP_SIZE + AEAD_TAG_SIZE),
    mac1: b.subarray(o.mac1, o.mac1 + MAC_SIZE),
    mac2: b.subarray(o.mac2, o.mac2 + MAC_SIZE),
  };
}

/** Parses a handshake response. @throws VectunError `ERR_WG_MESSAGE_TYPE`, `ERR_WG_MESSAGE_LENGTH`. */
export function parseResponse(b: Uint8Array): ResponseMessage {
  expect(b, MESSAGE_RESPONSE);
  const o = RESPONSE_OFFSETS;
  return {
    type: MESSAGE_RESPONSE,
    sender: readU32(b, o.sender),
    receiver: readU32(b, o.receiver),
    ephemeral: b.subarray(o.ephemeral, o.ephemeral + KEY_SIZE),
    encryptedNothing: b.subarray(o.empty, o.empty + AEAD_TAG_SIZE),
    mac1: b.subarray(o.mac1, o.mac1 + MAC_SIZE),
    mac2: b.subarray(o.mac2, o.mac2 + MAC_SIZE),
  };
}

/** Parses a cookie reply. @throws VectunError `ERR_WG_MESSAGE_TYPE`, `ERR_WG_MESSAGE_LENGTH`. */
export function parseCookieReply(b: Uint8Array): CookieReplyMessage {
  expect(b, MESSAGE_COOKIE_REPLY);
  const o = COOKIE_REPLY_OFFSETS;
  return {
    type: MESSAGE_COOKIE_REPLY,
    receiver: readU32(b, o.receiver),
    nonce: b.subarray(o.nonce, o.nonce + XNONCE_SIZE),
    encryptedCookie: b.subarray(o.cookie, o.cookie + MAC_SIZE + AEAD_TAG_SIZE),
  };
}

/** Parses a transport message header. @throws VectunError `ERR_WG_MESSAGE_TYPE`, `ERR_WG_MESSAGE_LENGTH`. */
export function parseTransport(b: Uint8Array): TransportMessage {
  expect(b, MESSAGE_TRANSPORT);
  return {
    type: MESSAGE_TRANSPORT,
    receiver: readU32(b, 4),
    counter: BigInt(readU32(b, 8)) | (BigInt(readU32(b, 12)) << 32n),
    encrypted: b.subarray(MESSAGE_TRANSPORT_HEADER_SIZE),
  };
}

/** Parses any message by its type. @throws VectunError `ERR_WG_MESSAGE_TYPE`, `ERR_WG_MESSAGE_LENGTH`. */
export function parseMessage(b: Uint8Array): Message {
  const t = messageType(b);
  switch (t) {
    case MESSAGE_INITIATION:
      return parseInitiation(b);
    case MESSAGE_RESPONSE:
      return parseResponse(b);
    case MESSAGE_COOKIE_REPLY:
      return parseCookieReply(b);
    case MESSAGE_TRANSPORT:
      return parseTransport(b);
    default:
      if (b instanceof Uint8Array && b.length < 4) throw new VectunError('ERR_WG_MESSAGE_LENGTH', `message of ${b.length} bytes is shorter than its type field`);
      throw new VectunError('ERR_WG_MESSAGE_TYPE', 'unknown message type');
  }
}

function fixed(name: string, v: Uint8Array, length: number): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length !== length) throw new VectunError('ERR_WG_MESSAGE_LENGTH', `${name} must be ${length} bytes`);
  return v;
}

/** Serializes a handshake initiation into 148 new bytes. @throws VectunError `ERR_WG_MESSAGE_LENGTH` for a wrong field size. */
export function serializeInitiation(m: Omit<InitiationMessage, 'type'>): Uint8Array {
  const b = new Uint8Array(MESSAGE_INITIATION_SIZE);
  const o = INITIATION_OFFSETS;
  writeU32(b, 0, MESSAGE_INITIATION);
  writeU32(b, o.sender, m.sender);
  b.set(fixed('ephemeral', m.ephemeral, KEY_SIZE), o.ephemeral);
  b.set(fixed('encryptedStatic', m.encryptedStatic, KEY_SIZE + AEAD_TAG_SIZE), o.static);
  b.set(fixed('encryptedTimestamp', m.encryptedTimestamp, TIMESTAMP_SIZE + AEAD_TAG_SIZE), o.timestamp);
  b.set(fixed('mac1', m.mac1, MAC_SIZE), o.mac1);
  b.set(fixed('mac2', m.mac2, MAC_SIZE), o.mac2);
  return b;
}

/** Serializes a handshake response into 92 new bytes. @throws VectunError `ERR_WG_MESSAGE_LENGTH` for a wrong field size. */
export function serializeResponse(m: Omit<ResponseMessage, 'type'>): Uint8Array {
  const b = new Uint8Array(MESSAGE_RESPONSE_SIZE);
  const o = RESPONSE_OFFSETS;
  writeU32(b, 0, MESSAGE_RESPONSE);
  writeU32(b, o.sender, m.sender);
  writeU32(b, o.receiver, m.receiver);
  b.set(fixed('ephemeral', m.ephemeral, KEY_SIZE), o.ephemeral);
  b.set(fixed('encryptedNothing', m.encryptedNothing, AEAD_TAG_SIZE), o.empty);
  b.set(fixed('mac1', m.mac1, MAC_SIZE), o.mac1);
  b.set(fixed('mac2', m.mac2, MAC_SIZE), o.mac2);
  return b;
}

/** Serializes a cookie reply into 64 new bytes. @throws VectunError `ERR_WG_MESSAGE_LENGTH` for a wrong field size. */
export function serializeCookieReply(m: Omit<CookieReplyMessage, 'type'>): Uint8Array {
  const b = new Uint8Array(MESSAGE_COOKIE_REPLY_SIZE);
  const o = COOKIE_REPLY_OFFSETS;
  writeU32(b, 0, MESSAGE_COOKIE_REPLY);
  writeU32(b, o.receiver, m.receiver);
  b.set(fixed('nonce', m.nonce, XNONCE_SIZE), o.nonce);
  b.set(fixed('encryptedCookie', m.encryptedCookie, MAC_SIZE + AEAD_TAG_SIZE), o.cookie);
  return b;
}

/**
 * Writes a transport header (type 4, receiver, counter) at `offset` of `b`;
 * the device encrypts the content in place after it. `counter` is split into
 * 32-bit halves so the send path needs no bigint.
 */
export function writeTransportHeader(b: Uint8Array, offset: number, receiver: number, counterLow: number, counterHigh: number): void {
  writeU32(b, offset, MESSAGE_TRANSPORT);
  writeU32(b, offset + 4, receiver);
  writeU32(b, offset + 8, counterLow);
  writeU32(b, offset + 12, counterHigh);
}
