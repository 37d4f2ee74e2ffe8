/*
 * agent_netio.c - blocking socket I/O for the agents' threads that talk to
 * another host directly (agent_link.c's link measurement, agent_xfer.c's
 * file copy): waits in slices so a cancel flag set by the loop is seen
 * within NETIO_SLICE_MS, and every wait has a deadline (monotonic us).
 */
#include "agent/agent_local.h"
#include "lib/util.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#define NETIO_SLICE_MS 100

int netio_wait(atomic_bool *cancel, int fd, short ev, int64_t deadline)
{
    for (;;) {
        if (atomic_load(cancel))
            return -1;
        int64_t left = (deadline - monotonic_us()) / 1000;
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = ev};
        int r = poll(&p, 1, left < NETIO_SLICE_MS ? (int)left : NETIO_SLICE_MS);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

int netio_read_full(atomic_bool *cancel, int fd, void *buf, size_t n, int64_t deadline)
{
    size_t got = 0;
    while (got < n) {
        if (netio_wait(cancel, fd, POLLIN, deadline) <= 0)
            return -1;
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
            return -1;
        if (r > 0)
            got += (size_t)r;
    }
    return 0;
}

int netio_write_full(atomic_bool *cancel, int fd, const void *buf, size_t n, int64_t deadline)
{
    size_t put = 0;
    while (put < n) {
        if (netio_wait(cancel, fd, POLLOUT, deadline) <= 0)
            return -1;
        ssize_t r = send(fd, (const char *)buf + put, n - put, MSG_NOSIGNAL);
        if (r < 0 && errno != EINTR && errno != EAGAIN)
            return -1;
        if (r > 0)
            put += (size_t)r;
    }
    return 0;
}
