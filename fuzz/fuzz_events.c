/*
 * fuzz_events.c - libFuzzer target for a pushed event batch as the
 * controller takes it (agent_remote_deliver): the bytes are the body of
 * POST /v1/cluster/events; a batch is taken (0, ack within the batch's seqs)
 * or refused (-1 with a 400), never anything else.
 */
#include <event2/event.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_remote.h"

static int events_seen;

static void on_event(void *ctx, const char *type, json_t *ev)
{
    if (!type || !json_is_object(ev))
        abort();
    events_seen++;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    static struct event_base *base;
    static struct agent *a;
    if (!base) {
        base = event_base_new();
        a = agent_remote_new(base, "http://127.0.0.1:9", "cred", "fuzz");
        if (!a || agent_subscribe(a, on_event, NULL) < 0)
            abort();
    }
    json_error_t je;
    json_t *body = json_loadb((const char *)d, n, JSON_DECODE_ANY, &je);
    if (!body)
        return 0;
    uint64_t ack = 0;
    struct yerr err;
    memset(&err, 0, sizeof(err));
    int rc = agent_remote_deliver(a, json_object_get(body, "events"),
                                  json_string_value(json_object_get(body, "run")), &ack, &err);
    if (rc != 0 && (rc != -1 || yerr_status(&err) != 400 || !err.message[0]))
        abort();
    json_decref(body);
    return 0;
}
