/*
 * fuzz_sample_msg.c - the host.sample message (agent/sample_msg.c) as the
 * monitor takes it from an agent (a reply) and as an agent takes it from
 * the controller (arguments), and as a pushed "host.sample" event (a
 * reply plus "at", sample_push_decode): a message accepted once is accepted again,
 * equal, from its own encoding; a refused one always says why.
 */
#include "fuzz.h"

#include "agent/sample_msg.h"

#include <jansson.h>

static void reply(json_t *j)
{
    struct host_counters h, h2;
    struct vm_counters_raw *v = NULL, *v2 = NULL;
    size_t n = 0, n2 = 0;
    struct yerr err = {0};
    if (sample_reply_decode(j, &h, &v, &n, &err) < 0) {
        FUZZ_ASSERT(err.code == YE_INVALID_ARGUMENT && err.message[0] && !v);
        return;
    }
    json_t *vms = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(vms, sample_vm_encode(&v[i]));
    json_t *back = sample_reply_encode(sample_host_encode(&h), vms);
    FUZZ_ASSERT(sample_reply_decode(back, &h2, &v2, &n2, &err) == 0);
    FUZZ_ASSERT(n2 == n && h2.clk_tck == h.clk_tck && h2.have_cpu == h.have_cpu &&
                h2.cpu_total == h.cpu_total && h2.have_net == h.have_net &&
                h2.have_ksm == h.have_ksm && h2.have_ksmd == h.have_ksmd &&
                h2.ksm_saved_bytes == h.ksm_saved_bytes && h2.ksmd_ticks == h.ksmd_ticks &&
                (!h.have_ksm || h.ksm_run <= 2));
    for (size_t i = 0; i < n; i++)
        FUZZ_ASSERT(!strcmp(v[i].vm, v2[i].vm) && v[i].pid == v2[i].pid &&
                    v[i].nvcpu == v2[i].nvcpu && v[i].cpu_ticks == v2[i].cpu_ticks &&
                    v[i].have_blk == v2[i].have_blk && v[i].wr_ns == v2[i].wr_ns &&
                    v[i].have_swap == v2[i].have_swap && v[i].swap == v2[i].swap);
    json_decref(back);
    free(v);
    free(v2);
}

static void pushed(json_t *j)
{
    struct host_counters h, h2;
    struct vm_counters_raw *v = NULL, *v2 = NULL;
    size_t n = 0, n2 = 0;
    int64_t at = 0, at2 = 0;
    struct yerr err = {0};
    if (sample_push_decode(j, &at, &h, &v, &n, &err) < 0) {
        FUZZ_ASSERT(err.code != 0 && err.message[0] && !v);
        return;
    }
    FUZZ_ASSERT(at >= 1 && (!h.have_mem || h.mem_available <= h.mem_total) &&
                (!h.have_cpu || h.cpu_busy <= h.cpu_total));
    json_t *vms = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(vms, sample_vm_encode(&v[i]));
    json_t *rep = sample_reply_encode(sample_host_encode(&h), vms);
    json_t *back = sample_push_encode(rep, at);
    FUZZ_ASSERT(sample_push_decode(back, &at2, &h2, &v2, &n2, &err) == 0);
    FUZZ_ASSERT(at2 == at && n2 == n && h2.mem_total == h.mem_total);
    json_decref(back);
    json_decref(rep);
    free(v);
    free(v2);
}

static void args(json_t *j)
{
    struct sample_target *t = NULL, *t2 = NULL;
    size_t n = 0, n2 = 0;
    int dl = 0, dl2 = 0;
    struct yerr err = {0};
    if (sample_args_decode(j, &t, &n, &dl, &err) < 0) {
        FUZZ_ASSERT(err.code == YE_INVALID_ARGUMENT && err.message[0] && !t);
        return;
    }
    FUZZ_ASSERT(dl >= 1 && dl <= SAMPLE_DEADLINE_MAX);
    json_t *back = sample_args_encode(t, n, dl);
    FUZZ_ASSERT(sample_args_decode(back, &t2, &n2, &dl2, &err) == 0);
    FUZZ_ASSERT(n2 == n && dl2 == dl);
    for (size_t i = 0; i < n; i++)
        FUZZ_ASSERT(!strcmp(t[i].vm, t2[i].vm) && t[i].pid == t2[i].pid && t[i].pid > 0);
    json_decref(back);
    free(t);
    free(t2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (!j)
        return 0;
    reply(j);
    pushed(j);
    args(j);
    json_decref(j);
    return 0;
}
