/*
 * vectun native addon: the system calls TypeScript cannot make itself.
 *
 * Syscalls, readiness (uv_poll) and batch draining only; no packet parsing and
 * no policy (offload negotiation, error mapping and events live in
 * src/device/). Every function returns a non-negative result or -errno, so
 * TypeScript can build VectunErrors with errno and syscall.
 * node-api only (ABI-stable); the signatures are declared in src/device/native.ts.
 */
#include "addon.h"

/* One table per file: tun.c, netlink.c, poll.c, udp.c, aead.c. */
static const vt_function *const tables[] = {vt_tun_functions, vt_netlink_functions, vt_poll_functions, vt_udp_functions,
                                            vt_aead_functions};

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
    for (const vt_function *f = tables[t]; f->name != NULL; f++) {
      napi_value fn;
      CHECK(napi_create_function(env, f->name, NAPI_AUTO_LENGTH, f->fn, NULL, &fn));
      CHECK(napi_set_named_property(env, exports, f->name, fn));
    }
  }
  return exports;
}
