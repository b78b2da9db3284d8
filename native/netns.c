/* Entering and leaving a network namespace around socket creation (netns.h). */
#define _GNU_SOURCE /* setns */
#include "netns.h"

#include "addon.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

int vt_netns_enter(int target_fd) {
  int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home < 0) return -errno;
  if (setns(target_fd, CLONE_NEWNET) < 0) {
    int e = errno;
    close(home);
    return -e;
  }
  return home;
}

void vt_netns_leave(int home_fd, const char *where) {
  if (setns(home_fd, CLONE_NEWNET) < 0) {
    /* Not reachable short of a kernel bug (the thread was just there, with
     * the privilege the first setns needed). */
    napi_fatal_error(where, NAPI_AUTO_LENGTH, "cannot return to the thread's network namespace", NAPI_AUTO_LENGTH);
  }
  close(home_fd);
}
