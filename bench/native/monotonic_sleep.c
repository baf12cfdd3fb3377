/* Preloaded before libfaketime into every process with a shifted clock (the sync
 * benchmark): agents, their chronyd, the probe.
 *
 * With FAKETIME_DONT_FAKE_MONOTONIC=1, libfaketime 0.9.10 fails clock_nanosleep on the
 * monotonic clocks with EINVAL (measured: 100 sleeps of 1 ms, 100 EINVAL), so Python's
 * time.sleep raises and subprocess.run with a time-out cannot wait. The monotonic
 * clocks are not shifted, so a sleep on one goes straight to the kernel; every other
 * clock keeps libfaketime's handling.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef int (*clock_nanosleep_fn)(clockid_t, int, const struct timespec *, struct timespec *);

int clock_nanosleep(clockid_t clock, int flags, const struct timespec *req, struct timespec *rem) {
    static clock_nanosleep_fn next;
    if (clock == CLOCK_MONOTONIC || clock == CLOCK_MONOTONIC_RAW || clock == CLOCK_BOOTTIME) {
        /* clock_nanosleep returns the error number rather than setting errno */
        return syscall(SYS_clock_nanosleep, clock, flags, req, rem) == 0 ? 0 : errno;
    }
    if (!next)
        next = (clock_nanosleep_fn)dlsym(RTLD_NEXT, "clock_nanosleep");
    return next(clock, flags, req, rem);
}
