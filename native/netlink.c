/*
 * NETLINK_ROUTE sockets: open/bind, send, receive. Messages are built and
 * parsed in TypeScript (src/device/rtnetlink.ts).
 */
#include "addon.h"

#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

/* nlOpen(groups): a non-blocking NETLINK_ROUTE socket bound to the multicast
 * `groups` bitmask (RTMGRP_LINK = 1 for link events; 0 for requests). */
static napi_value nl_open(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t groups;
  if (get_args(env, info, 1, argv) || get_i32(env, argv[0], &groups)) return NULL;
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  if (fd < 0) return make_int(env, -errno);
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = (uint32_t)groups;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(fd);
    return make_int(env, -e);
  }
  return make_int(env, fd);
}

/* nlSend(fd, message): one datagram to the kernel. */
static napi_value nl_send(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  size_t len;
  if (get_args(env, info, 2, argv) || get_i32(env, argv[0], &fd)) return NULL;
  uint8_t *data = get_bytes(env, argv[1], &len, napi_uint8_array);
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
  napi_value argv[2];
  int32_t fd;
  size_t len;
  if (get_args(env, info, 2, argv) || get_i32(env, argv[0], &fd)) return NULL;
  uint8_t *data = get_bytes(env, argv[1], &len, napi_uint8_array);
  if (data == NULL) return NULL;
  ssize_t n;
  do n = recv(fd, data, len, MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  return make_int(env, n < 0 ? -errno : n);
}

const vt_function vt_netlink_functions[] = {
    {"nlOpen", nl_open}, {"nlSend", nl_send}, {"nlRecv", nl_recv}, {NULL, NULL},
};
