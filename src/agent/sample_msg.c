/*
 * sample_msg.c - JSON encoding and strict decoding of the host.sample
 * message (sample_msg.h). Decoding treats the message as outside input:
 * a wrong type or a negative counter is an error, never a silent zero.
 */
#include "agent/sample_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *jcount(uint64_t v)
{
    return json_integer(v > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)v);
}

/* Reads o[k] as a counter (integer >= 0). 0: absent, 1: read, -1: bad. */
static int get_count(json_t *o, const char *k, uint64_t *out, struct yerr *err)
{
    json_t *x = json_object_get(o, k);
    if (!x)
        return 0;
    if (!json_is_integer(x) || json_integer_value(x) < 0) {
        yerr_set(err, YE_INVALID_ARGUMENT, "sample: \"%s\" must be a counter (integer >= 0)", k);
        return -1;
    }
    *out = (uint64_t)json_integer_value(x);
    return 1;
}

/* All of keys[] in o (an object) or none; -1 when o is not an object or
 * only some are there. Returns 1 when all were read. */
static int get_group(json_t *o, const char *what, const char *const *keys, uint64_t **outs,
                     size_t n, struct yerr *err)
{
    if (!o)
        return 0;
    if (!json_is_object(o)) {
        yerr_set(err, YE_INVALID_ARGUMENT, "sample: \"%s\" must be an object", what);
        return -1;
    }
    size_t got = 0;
    for (size_t i = 0; i < n; i++) {
        int r = get_count(o, keys[i], outs[i], err);
        if (r < 0)
            return -1;
        got += (size_t)r;
    }
    if (got != n) {
        yerr_set(err, YE_INVALID_ARGUMENT, "sample: \"%s\" lacks a counter", what);
        return -1;
    }
    return 1;
}

static bool vm_id_ok(const char *id)
{
    return id && id[0] && strlen(id) <= 36 && strspn(id, "0123456789abcdef-") == strlen(id);
}

/* ---- arguments ---- */

json_t *sample_args_encode(const struct sample_target *t, size_t n, int deadline_ms)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:s,s:i}", "vm", t[i].vm, "pid", (int)t[i].pid));
    json_t *a = json_pack("{s:o}", "vms", arr);
    if (a && deadline_ms > 0)
        json_object_set_new(a, "deadline_ms", json_integer(deadline_ms));
    return a;
}

int sample_args_decode(json_t *args, struct sample_target **out, size_t *n, int *deadline_ms,
                       struct yerr *err)
{
    *out = NULL;
    *n = 0;
    *deadline_ms = SAMPLE_DEADLINE_MS;
    if (!json_is_object(args))
        return yerr_set(err, YE_INVALID_ARGUMENT, "host.sample: arguments must be an object");
    const char *k;
    json_t *v;
    json_object_foreach(args, k, v)
    {
        if (strcmp(k, "vms") && strcmp(k, "deadline_ms"))
            return yerr_set(err, YE_INVALID_ARGUMENT, "host.sample: unknown argument \"%.32s\"", k);
    }
    json_t *dl = json_object_get(args, "deadline_ms");
    if (dl) {
        if (!json_is_integer(dl) || json_integer_value(dl) < 1 ||
            json_integer_value(dl) > SAMPLE_DEADLINE_MAX)
            return yerr_set(err, YE_INVALID_ARGUMENT, "host.sample: \"deadline_ms\" must be 1..%d",
                            SAMPLE_DEADLINE_MAX);
        *deadline_ms = (int)json_integer_value(dl);
    }
    json_t *vms = json_object_get(args, "vms");
    if (!vms)
        return 0;
    if (!json_is_array(vms) || json_array_size(vms) > SAMPLE_MAX_VMS)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "host.sample: \"vms\" must be an array of at most %d", SAMPLE_MAX_VMS);
    size_t cnt = json_array_size(vms);
    if (cnt == 0)
        return 0;
    struct sample_target *t = calloc(cnt, sizeof *t);
    if (!t)
        return yerr_set(err, YE_INTERNAL, "host.sample: out of memory");
    size_t i;
    json_array_foreach(vms, i, v)
    {
        const char *id = json_string_value(json_object_get(v, "vm"));
        json_t *pid = json_object_get(v, "pid");
        if (!json_is_object(v) || !vm_id_ok(id) || !json_is_integer(pid) ||
            json_integer_value(pid) < 1 || json_integer_value(pid) > INT32_MAX ||
            json_object_size(v) != 2) {
            free(t);
            return yerr_set(err, YE_INVALID_ARGUMENT,
                            "host.sample: vms[%zu] must be {\"vm\": id, \"pid\": n > 0}", i);
        }
        snprintf(t[i].vm, sizeof t[i].vm, "%s", id);
        t[i].pid = (pid_t)json_integer_value(pid);
    }
    *out = t;
    *n = cnt;
    return 0;
}

/* ---- host ---- */

json_t *sample_host_encode(const struct host_counters *h)
{
    json_t *j = json_pack("{s:I}", "clk_tck", (json_int_t)h->clk_tck);
    if (!j)
        return NULL;
    if (h->have_cpu)
        json_object_set_new(
            j, "cpu",
            json_pack("{s:o,s:o}", "busy", jcount(h->cpu_busy), "total", jcount(h->cpu_total)));
    if (h->have_mem)
        json_object_set_new(j, "memory",
                            json_pack("{s:o,s:o}", "total", jcount(h->mem_total), "available",
                                      jcount(h->mem_available)));
    if (h->have_load)
        json_object_set_new(j, "load1", json_real(h->load1));
    if (h->ncpus > 0)
        json_object_set_new(j, "ncpus", json_integer(h->ncpus));
    if (h->have_disk)
        json_object_set_new(j, "disk",
                            json_pack("{s:o,s:o}", "read_bytes", jcount(h->disk_rd_bytes),
                                      "write_bytes", jcount(h->disk_wr_bytes)));
    if (h->have_net)
        json_object_set_new(j, "net",
                            json_pack("{s:o,s:o,s:o,s:o}", "rx_bytes", jcount(h->net_rx_bytes),
                                      "tx_bytes", jcount(h->net_tx_bytes), "rx_packets",
                                      jcount(h->net_rx_packets), "tx_packets",
                                      jcount(h->net_tx_packets)));
    if (h->have_ksm) {
        json_t *k =
            json_pack("{s:o,s:o,s:o,s:o}", "run", jcount(h->ksm_run), "pages_shared",
                      jcount(h->ksm_pages_shared), "pages_sharing", jcount(h->ksm_pages_sharing),
                      "saved_bytes", jcount(h->ksm_saved_bytes));
        if (k && h->have_ksmd)
            json_object_set_new(k, "cpu_ticks", jcount(h->ksmd_ticks));
        json_object_set_new(j, "ksm", k);
    }
    return j;
}

/* "ksm": the four counters together, cpu_ticks optional, nothing else;
 * run is 0, 1 or 2 (the values the kernel takes). */
static int ksm_decode(json_t *k, struct host_counters *h, struct yerr *err)
{
    static const char *const ksm_k[] = {"run", "pages_shared", "pages_sharing", "saved_bytes"};
    uint64_t *ksm_o[] = {&h->ksm_run, &h->ksm_pages_shared, &h->ksm_pages_sharing,
                         &h->ksm_saved_bytes};
    int r = get_group(k, "ksm", ksm_k, ksm_o, 4, err);
    if (r <= 0)
        return r;
    if (h->ksm_run > 2)
        return yerr_set(err, YE_INVALID_ARGUMENT, "sample: ksm \"run\" must be 0, 1 or 2");
    if ((r = get_count(k, "cpu_ticks", &h->ksmd_ticks, err)) < 0)
        return -1;
    h->have_ksmd = r;
    if (json_object_size(k) != 4u + (unsigned)r)
        return yerr_set(err, YE_INVALID_ARGUMENT, "sample: \"ksm\" has an unknown member");
    h->have_ksm = true;
    return 1;
}

int sample_host_decode(json_t *j, struct host_counters *h, struct yerr *err)
{
    memset(h, 0, sizeof *h);
    if (!json_is_object(j))
        return yerr_set(err, YE_INVALID_ARGUMENT, "sample: \"host\" must be an object");
    json_t *ck = json_object_get(j, "clk_tck");
    if (!json_is_integer(ck) || json_integer_value(ck) < 1 || json_integer_value(ck) > 1000000)
        return yerr_set(err, YE_INVALID_ARGUMENT, "sample: \"clk_tck\" must be 1..1000000");
    h->clk_tck = json_integer_value(ck);
    static const char *const cpu_k[] = {"busy", "total"}, *const mem_k[] = {"total", "available"},
                             *const disk_k[] = {"read_bytes", "write_bytes"},
                             *const net_k[] = {"rx_bytes", "tx_bytes", "rx_packets", "tx_packets"};
    uint64_t *cpu_o[] = {&h->cpu_busy, &h->cpu_total},
             *mem_o[] = {&h->mem_total, &h->mem_available},
             *disk_o[] = {&h->disk_rd_bytes, &h->disk_wr_bytes},
             *net_o[] = {&h->net_rx_bytes, &h->net_tx_bytes, &h->net_rx_packets,
                         &h->net_tx_packets};
    int r;
    if ((r = get_group(json_object_get(j, "cpu"), "cpu", cpu_k, cpu_o, 2, err)) < 0)
        return -1;
    h->have_cpu = r;
    if ((r = get_group(json_object_get(j, "memory"), "memory", mem_k, mem_o, 2, err)) < 0)
        return -1;
    h->have_mem = r;
    if ((r = get_group(json_object_get(j, "disk"), "disk", disk_k, disk_o, 2, err)) < 0)
        return -1;
    h->have_disk = r;
    if ((r = get_group(json_object_get(j, "net"), "net", net_k, net_o, 4, err)) < 0)
        return -1;
    h->have_net = r;
    json_t *nc = json_object_get(j, "ncpus");
    if (nc) {
        if (!json_is_integer(nc) || json_integer_value(nc) < 1 || json_integer_value(nc) > 65536)
            return yerr_set(err, YE_INVALID_ARGUMENT, "sample: \"ncpus\" must be 1..65536");
        h->ncpus = (int)json_integer_value(nc);
    }
    json_t *l = json_object_get(j, "load1");
    if (l) {
        if (!json_is_number(l) || json_number_value(l) < 0)
            return yerr_set(err, YE_INVALID_ARGUMENT, "sample: \"load1\" must be a number >= 0");
        h->load1 = json_number_value(l);
        h->have_load = true;
    }
    return ksm_decode(json_object_get(j, "ksm"), h, err) < 0 ? -1 : 0;
}

/* ---- one VM ---- */

static const char *const blk_k[] = {"rd_bytes",      "wr_bytes",         "rd_operations",
                                    "wr_operations", "rd_total_time_ns", "wr_total_time_ns"};

json_t *sample_vm_encode(const struct vm_counters_raw *v)
{
    json_t *j = json_pack("{s:s,s:i}", "vm", v->vm, "pid", (int)v->pid);
    if (!j)
        return NULL;
    if (v->have_cpu)
        json_object_set_new(j, "cpu_ticks", jcount(v->cpu_ticks));
    if (v->have_rss)
        json_object_set_new(j, "rss", jcount(v->rss));
    if (v->nvcpu > 0) {
        json_t *a = json_array();
        for (int i = 0; i < v->nvcpu && i < SAMPLE_MAX_VCPUS; i++)
            json_array_append_new(a, jcount(v->vcpu_ticks[i]));
        json_object_set_new(j, "vcpu_ticks", a);
    }
    if (v->have_sched) {
        json_object_set_new(j, "vcpu_run_ns", jcount(v->vcpu_run_ns));
        json_object_set_new(j, "vcpu_wait_ns", jcount(v->vcpu_wait_ns));
    }
    if (v->have_blk) {
        const uint64_t vals[] = {v->rd_bytes, v->wr_bytes, v->rd_ops,
                                 v->wr_ops,   v->rd_ns,    v->wr_ns};
        json_t *b = json_object();
        for (size_t i = 0; i < 6; i++)
            json_object_set_new(b, blk_k[i], jcount(vals[i]));
        json_object_set_new(j, "blockstats", b);
    }
    if (v->have_balloon)
        json_object_set_new(j, "balloon", jcount(v->balloon));
    if (v->have_swap)
        json_object_set_new(j, "swap", jcount(v->swap));
    if (v->have_balloon_target)
        json_object_set_new(j, "balloon_target", jcount(v->balloon_target));
    if (v->qmp_timeout)
        json_object_set_new(j, "qmp_timeout", json_true());
    return j;
}

int sample_vm_decode(json_t *j, struct vm_counters_raw *v, struct yerr *err)
{
    memset(v, 0, sizeof *v);
    if (!json_is_object(j))
        return yerr_set(err, YE_INVALID_ARGUMENT, "sample: a VM's entry must be an object");
    const char *id = json_string_value(json_object_get(j, "vm"));
    json_t *pid = json_object_get(j, "pid");
    if (!vm_id_ok(id) || !json_is_integer(pid) || json_integer_value(pid) < 1 ||
        json_integer_value(pid) > INT32_MAX)
        return yerr_set(err, YE_INVALID_ARGUMENT, "sample: a VM's entry needs \"vm\" and \"pid\"");
    snprintf(v->vm, sizeof v->vm, "%s", id);
    v->pid = (pid_t)json_integer_value(pid);
    int r;
    if ((r = get_count(j, "cpu_ticks", &v->cpu_ticks, err)) < 0)
        return -1;
    v->have_cpu = r;
    if ((r = get_count(j, "rss", &v->rss, err)) < 0)
        return -1;
    v->have_rss = r;
    if ((r = get_count(j, "balloon", &v->balloon, err)) < 0)
        return -1;
    v->have_balloon = r;
    if ((r = get_count(j, "swap", &v->swap, err)) < 0)
        return -1;
    v->have_swap = r;
    if ((r = get_count(j, "balloon_target", &v->balloon_target, err)) < 0)
        return -1;
    v->have_balloon_target = r;
    int rr;
    if ((r = get_count(j, "vcpu_run_ns", &v->vcpu_run_ns, err)) < 0 ||
        (rr = get_count(j, "vcpu_wait_ns", &v->vcpu_wait_ns, err)) < 0)
        return -1;
    if (r != rr)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "sample: \"vcpu_run_ns\" and \"vcpu_wait_ns\" come together");
    v->have_sched = r;
    json_t *vt = json_object_get(j, "vcpu_ticks");
    if (vt) {
        if (!json_is_array(vt) || json_array_size(vt) > SAMPLE_MAX_VCPUS)
            return yerr_set(err, YE_INVALID_ARGUMENT,
                            "sample: \"vcpu_ticks\" must be an array of at most %d counters",
                            SAMPLE_MAX_VCPUS);
        size_t i;
        json_t *x;
        json_array_foreach(vt, i, x)
        {
            if (!json_is_integer(x) || json_integer_value(x) < 0)
                return yerr_set(err, YE_INVALID_ARGUMENT,
                                "sample: \"vcpu_ticks\" must hold counters");
            v->vcpu_ticks[i] = (uint64_t)json_integer_value(x);
        }
        v->nvcpu = (int)json_array_size(vt);
    }
    uint64_t *blk_o[] = {&v->rd_bytes, &v->wr_bytes, &v->rd_ops, &v->wr_ops, &v->rd_ns, &v->wr_ns};
    if ((r = get_group(json_object_get(j, "blockstats"), "blockstats", blk_k, blk_o, 6, err)) < 0)
        return -1;
    v->have_blk = r;
    json_t *to = json_object_get(j, "qmp_timeout");
    if (to && !json_is_boolean(to))
        return yerr_set(err, YE_INVALID_ARGUMENT, "sample: \"qmp_timeout\" must be a boolean");
    v->qmp_timeout = json_is_true(to);
    return 0;
}

/* ---- the reply ---- */

json_t *sample_reply_encode(json_t *host, json_t *vms)
{
    return json_pack("{s:o,s:o}", "host", host ? host : json_object(), "vms",
                     vms ? vms : json_array());
}

int sample_reply_decode(json_t *j, struct host_counters *h, struct vm_counters_raw **vms, size_t *n,
                        struct yerr *err)
{
    *vms = NULL;
    *n = 0;
    if (!json_is_object(j))
        return yerr_set(err, YE_INVALID_ARGUMENT, "sample: the reply must be an object");
    if (sample_host_decode(json_object_get(j, "host"), h, err) < 0)
        return -1;
    json_t *arr = json_object_get(j, "vms");
    if (!json_is_array(arr) || json_array_size(arr) > SAMPLE_MAX_VMS)
        return yerr_set(err, YE_INVALID_ARGUMENT, "sample: \"vms\" must be an array of at most %d",
                        SAMPLE_MAX_VMS);
    size_t cnt = json_array_size(arr);
    if (cnt == 0)
        return 0;
    struct vm_counters_raw *v = calloc(cnt, sizeof *v);
    if (!v)
        return yerr_set(err, YE_INTERNAL, "sample: out of memory");
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x)
    {
        if (sample_vm_decode(x, &v[i], err) < 0) {
            free(v);
            return -1;
        }
    }
    *vms = v;
    *n = cnt;
    return 0;
}

/* ---- the pushed event ---- */

#define SAMPLE_AT_MAX ((json_int_t)1 << 53)

json_t *sample_push_encode(json_t *reply, int64_t at)
{
    if (!json_is_object(reply))
        return NULL;
    json_t *j = json_deep_copy(reply);
    if (j)
        json_object_set_new(j, "at", json_integer((json_int_t)at));
    return j;
}

int sample_push_decode(json_t *j, int64_t *at, struct host_counters *h,
                       struct vm_counters_raw **vms, size_t *n, struct yerr *err)
{
    *vms = NULL;
    *n = 0;
    if (!json_is_object(j))
        return yerr_set(err, YE_INVALID_ARGUMENT, "sample: the event must be an object");
    json_t *a = json_object_get(j, "at");
    if (!json_is_integer(a) || json_integer_value(a) < 1 || json_integer_value(a) > SAMPLE_AT_MAX)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "sample: \"at\" must be the time it was read, ms since the epoch");
    struct vm_counters_raw *v = NULL;
    size_t cnt = 0;
    if (sample_reply_decode(j, h, &v, &cnt, err) < 0)
        return -1;
    if (h->have_mem && h->mem_available > h->mem_total) {
        free(v);
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "sample: memory \"available\" is more than its \"total\"");
    }
    if (h->have_cpu && h->cpu_busy > h->cpu_total) {
        free(v);
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "sample: cpu \"busy\" is more than its \"total\"");
    }
    for (size_t i = 0; i < cnt; i++)
        for (size_t k = i + 1; k < cnt; k++)
            if (!strcmp(v[i].vm, v[k].vm)) {
                yerr_set(err, YE_INVALID_ARGUMENT, "sample: vm %s is listed twice", v[i].vm);
                free(v);
                return -1;
            }
    *at = json_integer_value(a);
    *vms = v;
    *n = cnt;
    return 0;
}
