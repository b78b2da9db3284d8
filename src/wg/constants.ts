/**
 * WireGuard protocol constants: the whitepaper's §6.1 timers and limits, the
 * Noise construction strings of §5.4, and the wire sizes of the four message
 * types (§5.4.2-§5.4.7). Times are in milliseconds, the unit of the injected
 * clocks in src/wg.
 * @module
 */

/** Noise protocol name hashed into the initial chaining key (§5.4). */
export const CONSTRUCTION = 'Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s';
/** Protocol identifier mixed into the initial hash (§5.4). */
export const IDENTIFIER = 'WireGuard v1 zx2c4 Jason@zx2c4.com';
/** Label of the mac1 key: HASH(LABEL_MAC1 ‖ S_pub) (§5.4.4). */
export const LABEL_MAC1 = 'mac1----';
/** Label of the cookie encryption key: HASH(LABEL_COOKIE ‖ S_pub) (§5.4.7). */
export const LABEL_COOKIE = 'cookie--';

/** After this many messages sent with a keypair, the initiator starts a new handshake (§6.1). */
export const REKEY_AFTER_MESSAGES = 2 ** 60;
/**
 * No keypair is used for more messages than this (§6.1): 2^64 - 2^13 - 1.
 * Exact as a bigint; the number form is a rounded bound, exact checks use
 * {@link REJECT_AFTER_MESSAGES_HI}/{@link REJECT_AFTER_MESSAGES_LO}.
 */
export const REJECT_AFTER_MESSAGES = 2n ** 64n - 2n ** 13n - 1n;
/** High 32 bits of {@link REJECT_AFTER_MESSAGES}. */
export const REJECT_AFTER_MESSAGES_HI = 0xffffffff;
/** Low 32 bits of {@link REJECT_AFTER_MESSAGES}. */
export const REJECT_AFTER_MESSAGES_LO = 0xffffdfff;
/** The initiator of a keypair starts a new handshake after this age (§6.1). */
export const REKEY_AFTER_TIME = 120_000;
/** A keypair older than this is not used to send or receive (§6.1). */
export const REJECT_AFTER_TIME = 180_000;
/** Retransmitted handshake initiations stop after this long (§6.1, §6.4). */
export const REKEY_ATTEMPT_TIME = 90_000;
/** Wait for a handshake response before retransmitting (§6.1, §6.4). */
export const REKEY_TIMEOUT = 5_000;
/** Upper bound (exclusive) of the random jitter added to REKEY_TIMEOUT, as wireguard-go (ms). */
export const REKEY_TIMEOUT_JITTER_MAX = 334;
/** Retransmissions before giving up: REKEY_ATTEMPT_TIME / REKEY_TIMEOUT (wireguard-go MaxTimerHandshakes). */
export const MAX_TIMER_HANDSHAKES = REKEY_ATTEMPT_TIME / REKEY_TIMEOUT;
/** Send a keepalive when data arrived and nothing was sent for this long (§6.5). */
export const KEEPALIVE_TIMEOUT = 10_000;
/** A cookie secret (responder) and a received cookie (initiator) are valid this long (§5.4.7). */
export const COOKIE_REFRESH_TIME = 120_000;
/** Minimum gap between two accepted initiations of one peer (wireguard-go HandshakeInitationRate, 20 ms). */
export const HANDSHAKE_INITIATION_RATE = 1000 / 50;
/** The device stays under load this long after the handshake queue was last found long (wireguard-go). */
export const UNDER_LOAD_AFTER_TIME = 1_000;
/** Transport plaintext is zero-padded to a multiple of this (§5.4.6). */
export const PADDING_MULTIPLE = 16;

/** Message type of a handshake initiation (§5.4.2). */
export const MESSAGE_INITIATION = 1;
/** Message type of a handshake response (§5.4.3). */
export const MESSAGE_RESPONSE = 2;
/** Message type of a cookie reply (§5.4.7). */
export const MESSAGE_COOKIE_REPLY = 3;
/** Message type of a transport data message (§5.4.6). */
export const MESSAGE_TRANSPORT = 4;

/** Size of a handshake initiation. */
export const MESSAGE_INITIATION_SIZE = 148;
/** Size of a handshake response. */
export const MESSAGE_RESPONSE_SIZE = 92;
/** Size of a cookie reply. */
export const MESSAGE_COOKIE_REPLY_SIZE = 64;
/** Bytes before the encrypted content of a transport message: type, receiver, counter. */
export const MESSAGE_TRANSPORT_HEADER_SIZE = 16;
/** Poly1305 tag length. */
export const AEAD_TAG_SIZE = 16;
/** Size of a transport message with empty content: a keepalive (§6.5). */
export const MESSAGE_KEEPALIVE_SIZE = MESSAGE_TRANSPORT_HEADER_SIZE + AEAD_TAG_SIZE;
/** Offset of the receiver index in a transport message. */
export const MESSAGE_TRANSPORT_OFFSET_RECEIVER = 4;
/** Offset of the 64-bit little-endian counter in a transport message. */
export const MESSAGE_TRANSPORT_OFFSET_COUNTER = 8;
/** Offset of the encrypted content in a transport message. */
export const MESSAGE_TRANSPORT_OFFSET_CONTENT = 16;

/** Curve25519 key and preshared key length. */
export const KEY_SIZE = 32;
/** BLAKE2s-256 output length (HASH, HMAC). */
export const HASH_SIZE = 32;
/** BLAKE2s-128 output length (MAC: mac1, mac2, cookie). */
export const MAC_SIZE = 16;
/** TAI64N timestamp length. */
export const TIMESTAMP_SIZE = 12;
/** XChaCha20-Poly1305 nonce length (cookie reply). */
export const XNONCE_SIZE = 24;
