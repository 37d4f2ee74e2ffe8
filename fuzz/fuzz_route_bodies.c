/*
 * fuzz_route_bodies.c - libFuzzer target for the API's pure body checks:
 * the first byte picks a row of the route table that has a check_body, the
 * rest is parsed as JSON (as http.c does) and, when it is an object, handed
 * to that check. A check must return 0, or -1 with a 400 and a message.
 * The seeds in fuzz/corpus/route_bodies/ start with the row's index among
 * the rows with a check, in `yund --routes` order (0 image build, 1 image
 * import, 2 vm create, 3 snapshot, 4 exec, 5-9 volume create, clone,
 * resize, export, attach, 10 alert rule, 11 silence).
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/routes.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    static const struct route *rows[64];
    static size_t nrows;
    if (!nrows) {
        char err[256];
        size_t count;
        const struct route *t = route_table(&count, err, sizeof(err));
        if (!t)
            abort();
        for (size_t i = 0; i < count && nrows < 64; i++)
            if (t[i].check_body)
                rows[nrows++] = &t[i];
        if (!nrows)
            abort();
    }
    if (n < 1)
        return 0;
    const struct route *r = rows[d[0] % nrows];
    json_error_t je;
    json_t *body = json_loadb((const char *)d + 1, n - 1, JSON_REJECT_DUPLICATES, &je);
    if (!body)
        return 0;
    if (json_is_object(body)) {
        struct yerr err;
        memset(&err, 0, sizeof(err));
        int rc = r->check_body(body, &err);
        if (rc != 0 && (rc != -1 || yerr_status(&err) != 400 || !err.message[0]))
            abort();
    }
    json_decref(body);
    return 0;
}
