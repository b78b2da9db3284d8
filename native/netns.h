/*
 * Creating a socket inside another network namespace. A socket belongs to the
 * namespace it was created in, for life (socket(7), network_namespaces(7)),
 * and membership is per thread (setns(2)), so the caller switches the calling
 * thread (the main thread or a worker's) in, creates the socket and switches
 * straight back.
 */
#ifndef VECTUN_NETNS_H
#define VECTUN_NETNS_H

/* Moves the calling thread into the namespace `target_fd` (not closed here).
 * Returns a descriptor of the namespace it came from, for vt_netns_leave, or
 * -errno (of the open of /proc/thread-self/ns/net or of setns) with the
 * thread where it was. */
int vt_netns_enter(int target_fd);

/* Moves the thread back into `home_fd` and closes it; aborts the process if
 * it cannot (`where` names the caller in the message): a thread left in the
 * wrong namespace would silently put every later socket there. errno is not
 * preserved, so save it before calling. */
void vt_netns_leave(int home_fd, const char *where);

#endif
