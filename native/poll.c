/*
 * Readiness: one uv_poll watcher per descriptor, calling back into JS on the
 * loop thread.
 */
#include "addon.h"

#include <stdbool.h>
#include <stdlib.h>
#include <uv.h>


/* Freed when both the uv handle has closed and the JS external is gone. */
typedef struct {
  uv_poll_t handle;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  int closed;
  int handle_closed;
  int finalized;
} poller_t;

static void poller_freed(uv_handle_t *h) {
  poller_t *p = h->data;
  p->handle_closed = 1;
  if (p->finalized) free(p);
}

static void poller_close(poller_t *p) {
  if (p->closed) return;
  p->closed = 1;
  uv_poll_stop(&p->handle);
  napi_delete_reference(p->env, p->callback);
  napi_async_destroy(p->env, p->context);
  uv_close((uv_handle_t *)&p->handle, poller_freed);
}

static void poller_env_cleanup(void *arg) { poller_close(arg); }

/* Calls back (status, events) on the loop thread; status < 0 is a libuv
 * error, e.g. UV_EBADF after POLLERR (a deleted TUN device), which also stops
 * the watcher until pollSet is called again. */
static void poller_fired(uv_poll_t *h, int status, int events) {
  poller_t *p = h->data;
  napi_env env = p->env;
  napi_handle_scope scope;
  napi_value cb, recv, argv[2];
  if (p->closed || napi_open_handle_scope(env, &scope) != napi_ok) return;
  if (napi_get_reference_value(env, p->callback, &cb) == napi_ok && cb != NULL &&
      napi_get_global(env, &recv) == napi_ok && napi_create_int32(env, status, &argv[0]) == napi_ok &&
      napi_create_int32(env, events, &argv[1]) == napi_ok ) {
    napi_value result;
    if (napi_make_callback(env, p->context, recv, cb, 2, argv, &result) == napi_pending_exception) {
      napi_value err;
      napi_get_and_clear_last_exception(env, &err);
      napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void poller_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  poller_t *p = data;
  if (!p->closed) {
    napi_remove_env_cleanup_hook(env, poller_env_cleanup, p);
    poller_close(p);
  }
  p->finalized = 1;
  if (p->handle_closed) free(p);
}

/* pollCreate(fd, callback): an idle poller; pollSet starts it. */
static napi_value poll_create(napi_env env, napi_callback_info info) {
  napi_value argv[2], out, name;
  int32_t fd;
  uv_loop_t *loop;
  if (get_args(env, info, 2, argv) || get_i32(env, argv[0], &fd)) return NULL;
  CHECK(napi_get_uv_event_loop(env, &loop));
  poller_t *p = calloc(1, sizeof *p);
  if (p == NULL) return make_int(env, -ENOMEM);
  int r = uv_poll_init(loop, &p->handle, fd);
  if (r < 0) {
    free(p);
    return make_int(env, r); /* libuv errors are -errno on Linux */
  }
  p->handle.data = p;
  p->env = env;
  CHECK(napi_create_reference(env, argv[1], 1, &p->callback));
  CHECK(napi_create_string_utf8(env, "vectun:poll", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &p->context));
  CHECK(napi_add_env_cleanup_hook(env, poller_env_cleanup, p));
  CHECK(napi_create_external(env, p, poller_finalize, NULL, &out));
  return out;
}

static poller_t *get_poller(napi_env env, napi_value v) {
  void *p;
  if (napi_get_value_external(env, v, &p) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "expected a poller");
    return NULL;
  }
  return p;
}

/* pollSet(poller, events): 1 readable | 2 writable; 0 stops (an idle poller
 * does not keep the process alive). */
static napi_value poll_set(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t events;
  if (get_args(env, info, 2, argv)) return NULL;
  poller_t *p = get_poller(env, argv[0]);
  if (p == NULL || get_i32(env, argv[1], &events)) return NULL;
  if (p->closed) return make_int(env, -EBADF);
  int r = events == 0 ? uv_poll_stop(&p->handle) : uv_poll_start(&p->handle, events & (UV_READABLE | UV_WRITABLE), poller_fired);
  return make_int(env, r);
}

/* pollClose(poller): stops watching at once; call before closing the fd. */
static napi_value poll_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv)) return NULL;
  poller_t *p = get_poller(env, argv[0]);
  if (p == NULL) return NULL;
  if (!p->closed) {
    napi_remove_env_cleanup_hook(env, poller_env_cleanup, p);
    poller_close(p);
  }
  return make_int(env, 0);
}

/* pollRef(poller, ref): whether an active poller keeps the process alive. */
static napi_value poll_ref(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  bool ref;
  if (get_args(env, info, 2, argv)) return NULL;
  poller_t *p = get_poller(env, argv[0]);
  if (p == NULL) return NULL;
  CHECK(napi_get_value_bool(env, argv[1], &ref));
  if (!p->closed) {
    if (ref) uv_ref((uv_handle_t *)&p->handle);
    else uv_unref((uv_handle_t *)&p->handle);
  }
  return make_int(env, 0);
}

const vt_function vt_poll_functions[] = {
    {"pollCreate", poll_create}, {"pollSet", poll_set}, {"pollClose", poll_close}, {"pollRef", poll_ref}, {NULL, NULL},
};
