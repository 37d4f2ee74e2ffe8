/*
 * fuzz_qmp_reply.c - what QEMU (and the guest agent) send back on a blocking
 * connection (compute/qmp.c): the line reader over a descriptor, then each
 * line through qmp_parse_reply, also with the guest agent's 0xFF
 * delimiters in front, and the shapes callers read out of a reply.
 */
#include "fuzz.h"

#include "compute/qmp.h"
#include "lib/util.h"

#include <sys/mman.h>
#include <unistd.h>

static void use_reply(const char *line)
{
    json_t *ret = NULL;
    char err[256] = "";
    int rc = qmp_parse_reply(line, &ret, err, sizeof(err));
    FUZZ_ASSERT(rc >= -1 && rc <= 1);
    if (rc == 0) {
        FUZZ_ASSERT(ret);
        /* qmp_query_status and the guest-sync check read these */
        (void)json_string_value(json_object_get(ret, "status"));
        (void)json_integer_value(ret);
        json_decref(ret);
    } else {
        FUZZ_ASSERT(!ret);
        if (rc < 0)
            FUZZ_ASSERT(err[0]);
    }
    /* without a place for the value, as qmp_capabilities is sent */
    (void)qmp_parse_reply(line, NULL, err, sizeof(err));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A memfd stands in for the socket: liner_next polls and reads it, and
     * its end is the connection closing. */
    int fd = memfd_create("qmp", MFD_CLOEXEC);
    FUZZ_ASSERT(fd >= 0);
    FUZZ_ASSERT(fuzz_write_all(fd, data, size) == 0);
    FUZZ_ASSERT(lseek(fd, 0, SEEK_SET) == 0);
    struct liner l = {.fd = fd, .deadline = monotonic_ms() + 2000};
    char err[256];
    char *line;
    int lines = 0;
    while ((line = liner_next(&l, err, sizeof(err)))) {
        lines++;
        use_reply(line);
        const char *p = line; /* qga's read_reply skips the sync markers */
        while (*p == '\xff')
            p++;
        if (p != line)
            use_reply(p);
        free(line);
    }
    FUZZ_ASSERT(lines <= (int)size);
    free(l.buf);
    close(fd);
    return 0;
}
