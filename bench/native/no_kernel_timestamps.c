/* Preloaded into a node's chronyd beside libfaketime (the sync benchmark).
 *
 * libfaketime shifts what clock_gettime() returns, but not the receive and transmit
 * timestamps the kernel attaches to packets (SO_TIMESTAMP*), which chronyd prefers:
 * it would then mix the shifted clock with the true one (seen: a +20 ms shift measured
 * as +10 ms with 20 ms of root delay). Refusing those socket options makes chronyd
 * fall back to its own timestamps, read through the shifted clock.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/socket.h>
#include <linux/net_tstamp.h>
#include <asm/socket.h>

typedef int (*setsockopt_fn)(int, int, int, const void *, socklen_t);

static int is_timestamping(int level, int name) {
    if (level != SOL_SOCKET)
        return 0;
    if (name == SO_TIMESTAMP || name == SO_TIMESTAMPNS || name == SO_TIMESTAMPING)
        return 1;
#ifdef SO_TIMESTAMP_NEW
    if (name == SO_TIMESTAMP_NEW || name == SO_TIMESTAMPNS_NEW || name == SO_TIMESTAMPING_NEW)
        return 1;
#endif
    return 0;
}

int setsockopt(int fd, int level, int name, const void *value, socklen_t len) {
    static setsockopt_fn real;
    if (is_timestamping(level, name)) {
        errno = ENOPROTOOPT;
        return -1;
    }
    if (!real)
        real = (setsockopt_fn)dlsym(RTLD_NEXT, "setsockopt");
    return real(fd, level, name, value, len);
}
