/*
 * NETLINK_ROUTE sockets: open/bind (in a given network namespace), send,
 * receive. Messages are built and parsed in TypeScript (src/device/rtnetlink.ts).
 */
#include "addon.h"
#include "netns.h"

#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

/* A non-blocking NETLINK_ROUTE socket of the calling thread's namespace,
 * bound to `groups`; fd or -errno. */
static int open_bound(uint32_t groups) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  if (fd < 0) return -errno;
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = groups;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

/* open_bound inside the namespace `netns_fd` (see netns.h for why). */
static int open_bound_in(int netns_fd, uint32_t groups) {
  int home = vt_netns_enter(netns_fd);
  if (home < 0) return home;
  int fd = open_bound(groups);
  vt_netns_leave(home, "vectun nlOpen");
  return fd;
}

/* nlOpen(groups, netnsFd): a non-blocking NETLINK_ROUTE socket bound to the
 * multicast `groups` bitmask (RTMGRP_LINK = 1 for link events; 0 for
 * requests), in the network namespace `netnsFd` (e.g. from tunNetns), or in
 * the caller's when it is -1 or left out. */
static napi_value nl_open(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  size_t argc = 2;
  int32_t groups, netns = -1;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "missing arguments");
    return NULL;
  }
  if (get_i32(env, argv[0], &groups) || (argc > 1 && get_i32(env, argv[1], &netns))) return NULL;
  return make_int(env, netns < 0 ? open_bound((uint32_t)groups) : open_bound_in(netns, (uint32_t)groups));
}

/* nlSend(fd, message): one datagram to the kernel. */
static napi_value nl_send(napi_env env, napi_callback_info info) {
  int32_t fd;
  size_t len;
  uint8_t *data = get_fd_bytes(env, info, &fd, &len);
  if (data == NULL) return NULL;
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  ssize_t n;
  do n = sendto(fd, data, len, 0, (struct sockaddr *)&sa, sizeof sa);
  while (n < 0 && errno == EINTR);
  return make_int(env, n < 0 ? -errno : n);
}

/* nlRecv(fd, buffer): one datagram, non-blocking; -EAGAIN when none. */
static napi_value nl_recv(napi_env env, napi_callback_info info) {
  int32_t fd;
  size_t len;
  uint8_t *data = get_fd_bytes(env, info, &fd, &len);
  if (data == NULL) return NULL;
  ssize_t n;
  do n = recv(fd, data, len, MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  return make_int(env, n < 0 ? -errno : n);
}

const vt_function vt_netlink_functions[] = {
    {"nlOpen", nl_open}, {"nlSend", nl_send}, {"nlRecv", nl_recv}, {NULL, NULL},
};
