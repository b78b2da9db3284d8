/*
 * Shared helpers of the vectun addon's C files: argument unpacking and the
 * -errno result convention. Each file exports one function table
 * (vt_function[]) that addon.c registers.
 */
#ifndef VECTUN_ADDON_H
#define VECTUN_ADDON_H
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <net/if.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
  const char *name;
  napi_callback fn;
} vt_function;

/* NULL-terminated tables, one per file. */
extern const vt_function vt_tun_functions[];
extern const vt_function vt_netlink_functions[];
extern const vt_function vt_poll_functions[];
extern const vt_function vt_udp_functions[];
extern const vt_function vt_aead_functions[];

#define CHECK(call)                                                              \
  do {                                                                           \
    if ((call) != napi_ok) {                                                     \
      napi_throw_error(env, "ERR_TUN_NATIVE", "node-api call failed: " #call);   \
      return NULL;                                                               \
    }                                                                            \
  } while (0)

static inline napi_value make_int(napi_env env, int64_t v) {
  napi_value out;
  if (napi_create_int64(env, v, &out) != napi_ok) return NULL;
  return out;
}

static inline int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "missing arguments");
    return -1;
  }
  return 0;
}

static inline int get_i32(napi_env env, napi_value v, int32_t *out) {
  if (napi_get_value_int32(env, v, out) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "expected a number");
    return -1;
  }
  return 0;
}

/* Bytes of a typed array of kind `want` and its element count; NULL only
 * after throwing. N-API may give no data pointer for an empty array (one
 * with no backing store); that array gets a valid pointer to nothing, so an
 * empty datagram or packet is sent as one rather than read as an error. */
static inline void *get_bytes(napi_env env, napi_value v, size_t *len, napi_typedarray_type want) {
  static double nothing; /* aligned for every element type */
  napi_typedarray_type type;
  size_t count;
  void *data;
  if (napi_get_typedarray_info(env, v, &type, &count, &data, NULL, NULL) != napi_ok || type != want) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "expected a typed array of the right kind");
    return NULL;
  }
  *len = count;
  return data != NULL ? data : (void *)&nothing;
}

/* The (fd, Uint8Array) arguments of nlSend, nlRecv and udpSockname; the
 * bytes, or NULL as get_bytes. */
static inline uint8_t *get_fd_bytes(napi_env env, napi_callback_info info, int32_t *fd, size_t *len) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv) || get_i32(env, argv[0], fd)) return NULL;
  return get_bytes(env, argv[1], len, napi_uint8_array);
}

static inline int get_name(napi_env env, napi_value v, char name[IFNAMSIZ]) {
  size_t n;
  memset(name, 0, IFNAMSIZ);
  if (napi_get_value_string_utf8(env, v, name, IFNAMSIZ, &n) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "expected a string");
    return -1;
  }
  return 0;
}

#endif
