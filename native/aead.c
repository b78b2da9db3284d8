/*
 * Batched ChaCha20-Poly1305 (RFC 8439) for WireGuard transport messages,
 * through the OpenSSL that the node binary carries and exports.
 *
 * Why native: node:crypto costs a cipher object, a key setup and several
 * JS<->C++ transitions per packet; here a key's contexts are set up once per
 * keypair and one call seals or opens a whole batch (docs/wg-crypto.md has the
 * measurements). No primitive is implemented here: every byte of crypto is
 * OpenSSL's EVP API. No packet parsing beyond the fixed transport layout
 * (whitepaper 5.4.6): type 4 | 3 reserved zero bytes | receiver index (LE32) |
 * counter (LE64) | ciphertext | 16-byte tag; nonce = 4 zero bytes || LE64
 * counter, empty associated data.
 *
 * The OpenSSL functions are looked up with dlsym at first use instead of being
 * linked: a node built against a shared or stripped OpenSSL then merely lacks
 * the native path (aeadAvailable() == 0) and TypeScript falls back to
 * node:crypto, instead of the whole addon failing to load.
 */
#include "addon.h"

#include <dlfcn.h>
#include <openssl/evp.h>
#include <stdlib.h>

#define TRANSPORT_HEADER 16
#define TAG 16
#define KEY_BYTES 32
#define MESSAGE_TRANSPORT 4
/* Counters a JS number carries exactly; a larger one is reported as -ERANGE. */
#define MAX_SAFE_COUNTER ((int64_t)1 << 53)

static struct {
  int resolved; /* 0 not tried, 1 ok, -1 missing */
  __typeof__(&EVP_chacha20_poly1305) cipher;
  __typeof__(&EVP_CIPHER_CTX_new) ctx_new;
  __typeof__(&EVP_CIPHER_CTX_free) ctx_free;
  __typeof__(&EVP_CIPHER_CTX_ctrl) ctx_ctrl;
  __typeof__(&EVP_CipherInit_ex) init;
  __typeof__(&EVP_CipherUpdate) update;
  __typeof__(&EVP_CipherFinal_ex) final;
  __typeof__(&OPENSSL_cleanse) cleanse;
} ossl;

static int resolve(void) {
  if (ossl.resolved != 0) return ossl.resolved > 0;
#define LOOKUP(field, symbol)                                    \
  if ((*(void **)&ossl.field = dlsym(RTLD_DEFAULT, #symbol)) == NULL) { \
    ossl.resolved = -1;                                          \
    return 0;                                                    \
  }
  LOOKUP(cipher, EVP_chacha20_poly1305)
  LOOKUP(ctx_new, EVP_CIPHER_CTX_new)
  LOOKUP(ctx_free, EVP_CIPHER_CTX_free)
  LOOKUP(ctx_ctrl, EVP_CIPHER_CTX_ctrl)
  LOOKUP(init, EVP_CipherInit_ex)
  LOOKUP(update, EVP_CipherUpdate)
  LOOKUP(final, EVP_CipherFinal_ex)
  LOOKUP(cleanse, OPENSSL_cleanse)
#undef LOOKUP
  /* A build may export the function yet lack the cipher (e.g. a restricted provider). */
  ossl.resolved = ossl.cipher() != NULL ? 1 : -1;
  return ossl.resolved > 0;
}

/* One keypair direction's key: an encrypting and a decrypting context, keyed
 * once. OpenSSL keeps the key schedule inside the contexts and cleanses it in
 * EVP_CIPHER_CTX_free. */
typedef struct {
  EVP_CIPHER_CTX *seal;
  EVP_CIPHER_CTX *open;
} aead_key_t;

static const napi_type_tag AEAD_KEY_TAG = {0x76656374756e2d61ULL, 0x6561642d6b657931ULL};

static void key_release(aead_key_t *k) {
  if (k->seal != NULL) ossl.ctx_free(k->seal);
  if (k->open != NULL) ossl.ctx_free(k->open);
  k->seal = k->open = NULL;
}

static void key_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  key_release(data);
  free(data);
}

/* The key behind v, or NULL when v is not one of ours (nothing thrown). */
static aead_key_t *as_key(napi_env env, napi_value v) {
  napi_valuetype type;
  bool ours = false;
  void *p;
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_external ||
      napi_check_object_type_tag(env, v, &AEAD_KEY_TAG, &ours) != napi_ok || !ours ||
      napi_get_value_external(env, v, &p) != napi_ok) {
    return NULL;
  }
  return p;
}

static aead_key_t *get_key(napi_env env, napi_value v) {
  aead_key_t *k = as_key(env, v);
  if (k == NULL) napi_throw_type_error(env, "ERR_INVALID_ARG", "expected an AEAD key from aeadKey()");
  return k;
}

/* aeadAvailable(): 1 when the OpenSSL functions resolved, else 0. */
static napi_value aead_available(napi_env env, napi_callback_info info) {
  (void)info;
  return make_int(env, resolve());
}

/* aeadKey(key32): an opaque key (external), or -ENOSYS (no OpenSSL), -EINVAL,
 * -ENOMEM. The caller's key bytes are not kept. */
static napi_value aead_key(napi_env env, napi_callback_info info) {
  napi_value argv[1], out;
  size_t len;
  if (get_args(env, info, 1, argv)) return NULL;
  const uint8_t *key = get_bytes(env, argv[0], &len, napi_uint8_array);
  if (key == NULL) return NULL;
  if (!resolve()) return make_int(env, -ENOSYS);
  if (len != KEY_BYTES) return make_int(env, -EINVAL);
  aead_key_t *k = calloc(1, sizeof *k);
  if (k == NULL) return make_int(env, -ENOMEM);
  k->seal = ossl.ctx_new();
  k->open = ossl.ctx_new();
  if (k->seal == NULL || k->open == NULL ||
      ossl.init(k->seal, ossl.cipher(), NULL, key, NULL, 1) != 1 ||
      ossl.init(k->open, ossl.cipher(), NULL, key, NULL, 0) != 1) {
    key_release(k);
    free(k);
    return make_int(env, -ENOMEM);
  }
  if (napi_create_external(env, k, key_finalize, NULL, &out) != napi_ok ||
      napi_type_tag_object(env, out, &AEAD_KEY_TAG) != napi_ok) {
    key_release(k);
    free(k);
    napi_throw_error(env, "ERR_TUN_NATIVE", "cannot create the AEAD key handle");
    return NULL;
  }
  return out;
}

/* aeadKeyDestroy(key): frees the contexts (and so the key schedule) now,
 * instead of whenever the garbage collector runs; later use gives -EBADF. */
static napi_value aead_key_destroy(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv)) return NULL;
  aead_key_t *k = get_key(env, argv[0]);
  if (k == NULL) return NULL;
  key_release(k);
  return make_int(env, 0);
}

static void put_le32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static void put_le64(uint8_t *p, uint64_t v) {
  put_le32(p, (uint32_t)v);
  put_le32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t get_le64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

static const uint8_t ZEROS[16];

/* Bytes of element i of a JS array of Uint8Arrays (an empty one, a keepalive,
 * has no data pointer); NULL after throwing. */
static const uint8_t *element_bytes(napi_env env, napi_value array, uint32_t i, size_t *len) {
  napi_value v;
  napi_typedarray_type type;
  void *data;
  if (napi_get_element(env, array, i, &v) != napi_ok ||
      napi_get_typedarray_info(env, v, &type, len, &data, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "expected an array of Uint8Arrays");
    return NULL;
  }
  return *len == 0 ? ZEROS : data;
}

/*
 * aeadSeal(key, receiverIndex, counter, packets, count, mtu, out, stride, lengths):
 * seals packets[0..count) as transport messages into out[i * stride]: header,
 * the plaintext zero-padded to a multiple of 16 but not beyond max(mtu, its
 * length) (whitepaper 5.4.6), tag. Packet i uses counter + i. lengths[i] =
 * message bytes, or -EMSGSIZE when it does not fit in stride. Returns count,
 * or -errno (-EBADF: key destroyed, -EINVAL: bad sizes, -EIO: OpenSSL failed).
 */
static napi_value aead_seal(napi_env env, napi_callback_info info) {
  napi_value argv[9];
  int64_t counter;
  uint32_t receiver;
  int32_t count, mtu, stride;
  size_t out_len, lengths_len, plen;
  if (get_args(env, info, 9, argv)) return NULL;
  aead_key_t *k = get_key(env, argv[0]);
  if (k == NULL) return NULL;
  if (napi_get_value_uint32(env, argv[1], &receiver) != napi_ok ||
      napi_get_value_int64(env, argv[2], &counter) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "expected numbers");
    return NULL;
  }
  if (get_i32(env, argv[4], &count) || get_i32(env, argv[5], &mtu)) return NULL;
  uint8_t *out = get_bytes(env, argv[6], &out_len, napi_uint8_array);
  if (out == NULL || get_i32(env, argv[7], &stride)) return NULL;
  int32_t *lengths = get_bytes(env, argv[8], &lengths_len, napi_int32_array);
  if (lengths == NULL) return NULL;
  if (k->seal == NULL) return make_int(env, -EBADF);
  if (count < 0 || stride < TRANSPORT_HEADER + TAG || counter < 0 || counter > MAX_SAFE_COUNTER - count ||
      (size_t)count > lengths_len || (size_t)count * (size_t)stride > out_len) {
    return make_int(env, -EINVAL);
  }
  uint8_t nonce[12] = {0};
  for (int32_t i = 0; i < count; i++) {
    const uint8_t *p = element_bytes(env, argv[3], (uint32_t)i, &plen);
    if (p == NULL) return NULL;
    size_t padded = (plen + 15) & ~(size_t)15;
    if (padded > (size_t)mtu) padded = plen > (size_t)mtu ? plen : (size_t)mtu;
    size_t total = TRANSPORT_HEADER + padded + TAG;
    if (total > (size_t)stride) {
      lengths[i] = -EMSGSIZE;
      continue;
    }
    uint8_t *m = out + (size_t)i * (size_t)stride;
    uint64_t n = (uint64_t)counter + (uint64_t)i;
    put_le32(m, MESSAGE_TRANSPORT);
    put_le32(m + 4, receiver);
    put_le64(m + 8, n);
    put_le64(nonce + 4, n);
    uint8_t *c = m + TRANSPORT_HEADER;
    int done = 0, part = 0;
    if (ossl.init(k->seal, NULL, NULL, NULL, nonce, 1) != 1 ||
        (plen > 0 && ossl.update(k->seal, c, &done, p, (int)plen) != 1) ||
        (padded > plen && ossl.update(k->seal, c + done, &part, ZEROS, (int)(padded - plen)) != 1)) {
      return make_int(env, -EIO);
    }
    done += part;
    if (ossl.final(k->seal, c + done, &part) != 1 ||
        ossl.ctx_ctrl(k->seal, EVP_CTRL_AEAD_GET_TAG, TAG, c + padded) != 1) {
      return make_int(env, -EIO);
    }
    lengths[i] = (int32_t)total;
  }
  return make_int(env, count);
}

/*
 * aeadOpen(keys, messages, count, out, stride, lengths, counters): opens
 * transport message i with keys[i] (an AEAD key, or anything else to skip it:
 * lengths[i] = -ENOKEY) into out[i * stride]. lengths[i] = plaintext bytes
 * (padding included), or -EINVAL (shorter than header + tag, or longer than
 * stride + 32), -EBADF (key destroyed), -ERANGE (counter >= 2^53), -EBADMSG
 * (the tag did not verify; OpenSSL compares it in constant time). counters[i]
 * = the message's counter. Nothing but out, lengths and counters is written.
 * Returns how many opened, or -EINVAL for bad sizes.
 */
static napi_value aead_open(napi_env env, napi_callback_info info) {
  napi_value argv[7], keyv;
  int32_t count, stride;
  size_t out_len, lengths_len, counters_len, mlen;
  if (get_args(env, info, 7, argv) || get_i32(env, argv[2], &count)) return NULL;
  uint8_t *out = get_bytes(env, argv[3], &out_len, napi_uint8_array);
  if (out == NULL || get_i32(env, argv[4], &stride)) return NULL;
  int32_t *lengths = get_bytes(env, argv[5], &lengths_len, napi_int32_array);
  if (lengths == NULL) return NULL;
  double *counters = get_bytes(env, argv[6], &counters_len, napi_float64_array);
  if (counters == NULL) return NULL;
  if (!resolve()) return make_int(env, -ENOSYS);
  if (count < 0 || stride < 0 || (size_t)count > lengths_len || (size_t)count > counters_len ||
      (size_t)count * (size_t)stride > out_len) {
    return make_int(env, -EINVAL);
  }
  uint8_t nonce[12] = {0};
  int opened = 0;
  for (int32_t i = 0; i < count; i++) {
    const uint8_t *m = element_bytes(env, argv[1], (uint32_t)i, &mlen);
    if (m == NULL) return NULL;
    aead_key_t *k = napi_get_element(env, argv[0], (uint32_t)i, &keyv) == napi_ok ? as_key(env, keyv) : NULL;
    if (k == NULL) {
      lengths[i] = -ENOKEY;
      continue;
    }
    counters[i] = -1;
    if (mlen < TRANSPORT_HEADER + TAG || mlen - TRANSPORT_HEADER - TAG > (size_t)stride) {
      lengths[i] = -EINVAL;
      continue;
    }
    if (k->open == NULL) {
      lengths[i] = -EBADF;
      continue;
    }
    uint64_t n = get_le64(m + 8);
    if (n >= (uint64_t)MAX_SAFE_COUNTER) {
      lengths[i] = -ERANGE;
      continue;
    }
    counters[i] = (double)n;
    size_t clen = mlen - TRANSPORT_HEADER - TAG;
    uint8_t *p = out + (size_t)i * (size_t)stride;
    put_le64(nonce + 4, n);
    int done = 0, part = 0;
    if (ossl.init(k->open, NULL, NULL, NULL, nonce, 0) != 1 ||
        ossl.ctx_ctrl(k->open, EVP_CTRL_AEAD_SET_TAG, TAG, (void *)(m + mlen - TAG)) != 1 ||
        (clen > 0 && ossl.update(k->open, p, &done, m + TRANSPORT_HEADER, (int)clen) != 1) ||
        ossl.final(k->open, p + done, &part) != 1) {
      /* Do not hand out unauthenticated plaintext. */
      ossl.cleanse(p, clen);
      lengths[i] = -EBADMSG;
      continue;
    }
    lengths[i] = (int32_t)clen;
    opened++;
  }
  return make_int(env, opened);
}

const vt_function vt_aead_functions[] = {
    {"aeadAvailable", aead_available},
    {"aeadKey", aead_key},
    {"aeadKeyDestroy", aead_key_destroy},
    {"aeadSeal", aead_seal},
    {"aeadOpen", aead_open},
    {NULL, NULL},
};
