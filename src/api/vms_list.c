/*
 * vms_list.c - GET /v1/vms: the VM list, whole, paged (?limit=&after=) or
 * of one host (?host=), and its caches.
 *
 * Two caches, both only ever a copy of what the store holds:
 *  - each row's JSON object, kept with the row it was written from (and
 *    the host name and id it shows): a row read again that is byte for
 *    byte the same reuses its text, any difference writes it anew, so a
 *    list is never staler than the read it comes from;
 *  - the whole list's reply, kept while the store's VM generation holds
 *    (every write of a VM row through this process moves it); it is sent
 *    by reference, never copied per request.
 */
#include "api/api.h"
#include "ctl/hosts.h"
#include "lib/jsonw.h"
#include "lib/util.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_MAX 1000 /* ?limit= at most */

/* One row's JSON and what it was written from. */
struct frag {
    struct vm_rec rec;
    char host_name[64];
    char host_id[37];
    char *text;
    size_t len;
    uint64_t mark; /* the full read that last saw it */
};

/* A reply's text, shared by the cache and the replies being sent. */
struct blob {
    int refs;
    size_t len;
    char data[];
};

struct vmlist {
    struct frag **slots; /* open addressing by id, cap a power of two */
    size_t cap, count;
    uint64_t mark;
    struct blob *whole; /* GET /v1/vms, valid while gen holds */
    uint64_t gen;
};

static void blob_unref(struct blob *b)
{
    if (b && --b->refs == 0)
        free(b);
}

static void blob_done(const void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    blob_unref(arg);
}

static uint64_t id_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void frag_free(struct frag *f)
{
    if (f) {
        free(f->text);
        free(f);
    }
}

static struct frag **slot_of(struct vmlist *l, const char *id)
{
    size_t m = l->cap - 1, i = (size_t)id_hash(id) & m;
    while (l->slots[i] && strcmp(l->slots[i]->rec.id, id))
        i = (i + 1) & m;
    return &l->slots[i];
}

/* A table of cap slots holding the fragments that pass keep (all of them
 * when keep_mark is 0); the others are freed. -1 when out of memory (the
 * old table stays). */
static int table_rebuild(struct vmlist *l, size_t cap, uint64_t keep_mark)
{
    struct frag **ns = calloc(cap, sizeof *ns);
    if (!ns)
        return -1;
    struct frag **old = l->slots;
    size_t ocap = l->cap;
    l->slots = ns;
    l->cap = cap;
    l->count = 0;
    for (size_t i = 0; i < ocap; i++) {
        struct frag *f = old[i];
        if (!f)
            continue;
        if (keep_mark && f->mark != keep_mark) {
            frag_free(f);
            continue;
        }
        *slot_of(l, f->rec.id) = f;
        l->count++;
    }
    free(old);
    return 0;
}

static struct vmlist *list_of(struct api *a)
{
    if (!a->vmlist)
        a->vmlist = calloc(1, sizeof *a->vmlist);
    return a->vmlist;
}

void vm_list_cache_free(struct api *a)
{
    struct vmlist *l = a->vmlist;
    if (!l)
        return;
    for (size_t i = 0; i < l->cap; i++)
        frag_free(l->slots[i]);
    free(l->slots);
    blob_unref(l->whole);
    free(l);
    a->vmlist = NULL;
}

/* The row's JSON text: the cached one when nothing it shows has changed.
 * NULL when out of memory. */
static const struct frag *frag_get(struct api *a, struct vmlist *l, const struct vm_rec *vm)
{
    const char *hname = ctl_host_name(a->ctl, vm->host);
    const char *hid = vm->host[0] ? vm->host : ctl_local_host(a->ctl);
    if (l->count + 1 > l->cap / 2 && table_rebuild(l, l->cap ? l->cap * 2 : 1024, 0) < 0)
        return NULL;
    struct frag **sp = slot_of(l, vm->id);
    struct frag *f = *sp;
    if (f && !memcmp(&f->rec, vm, sizeof *vm) && !strcmp(f->host_name, hname) &&
        !strcmp(f->host_id, hid)) {
        f->mark = l->mark;
        return f;
    }
    struct jw w;
    jw_init(&w);
    vm_write_json(&w, a->ctl, vm, false);
    jw_obj_close(&w);
    if (w.oom) {
        jw_free(&w);
        return NULL;
    }
    if (!f) {
        f = calloc(1, sizeof *f);
        if (!f) {
            jw_free(&w);
            return NULL;
        }
        *sp = f;
        l->count++;
    }
    free(f->text);
    f->rec = *vm;
    snprintf(f->host_name, sizeof f->host_name, "%s", hname);
    snprintf(f->host_id, sizeof f->host_id, "%s", hid);
    f->text = w.buf; /* the fragment owns the text now */
    f->len = w.len;
    f->mark = l->mark;
    return f;
}

/* ?host=NAME|ID: the VMs on that host only. */
static bool on_host(struct ctl *ctl, const struct vm_rec *vm, const char *host)
{
    return ctl_host_same(ctl, vm->host, host) || !strcmp(ctl_host_name(ctl, vm->host), host);
}

/* {"vms":[...]} (and "next" when next is not NULL) of the rows on host
 * (NULL: all), as one blob with a reference held. NULL when out of memory. */
static struct blob *list_text(struct api *a, struct vmlist *l, const struct vm_rec *vms, size_t n,
                              const char *host, const char *next)
{
    const struct frag **fs = calloc(n ? n : 1, sizeof *fs);
    if (!fs)
        return NULL;
    size_t nf = 0, total = 16;
    for (size_t i = 0; i < n; i++) {
        if (host && !on_host(a->ctl, &vms[i], host))
            continue;
        if (!(fs[nf] = frag_get(a, l, &vms[i]))) {
            free(fs);
            return NULL;
        }
        total += fs[nf++]->len + 1;
    }
    struct jw nw;
    jw_init(&nw);
    if (next)
        jw_str(&nw, next);
    total += 10 + nw.len;
    struct blob *b = nw.oom ? NULL : malloc(sizeof *b + total);
    if (b) {
        char *p = b->data;
        memcpy(p, "{\"vms\":[", 8);
        p += 8;
        for (size_t i = 0; i < nf; i++) {
            if (i)
                *p++ = ',';
            memcpy(p, fs[i]->text, fs[i]->len);
            p += fs[i]->len;
        }
        *p++ = ']';
        if (next) {
            memcpy(p, ",\"next\":", 8);
            p += 8;
            memcpy(p, nw.buf, nw.len);
            p += nw.len;
        }
        memcpy(p, "}\n", 2);
        p += 2;
        b->len = (size_t)(p - b->data);
        b->refs = 1;
    }
    jw_free(&nw);
    free(fs);
    return b;
}

static void send_blob(struct hreq *req, struct blob *b)
{
    struct evbuffer *buf = evbuffer_new();
    if (!buf) {
        reply_errorf(req, YE_INTERNAL, "out of memory");
        return;
    }
    b->refs++; /* the reply's, dropped once libevent has sent it */
    if (evbuffer_add_reference(buf, b->data, b->len, blob_done, b) < 0)
        b->refs--;
    evhttp_add_header(hreq_output_headers(req), "Content-Type", "application/json");
    hreq_send(req, 200, buf);
    evbuffer_free(buf);
}

/* A full read of every row: the fragments it did not see are of rows gone. */
static void sweep(struct vmlist *l)
{
    if (l->count > 1024)
        table_rebuild(l, l->cap, l->mark); /* on failure they stay (harmless) */
}

void vm_list(struct route_ctx *c)
{
    struct api *a = c->api;
    struct yerr err = {0};
    const char *host = query_get(c, "host");
    const char *lim = query_get(c, "limit");
    const char *after = query_get(c, "after");
    if (host && (!host[0] || strlen(host) > 63)) {
        reply_errorf(c->req, YE_INVALID_ARGUMENT, "host must be a host's name or id");
        return;
    }
    uint64_t limit = 0;
    if (lim && parse_u64(lim, 1, PAGE_MAX, &limit) < 0) {
        reply_errorf(c->req, YE_INVALID_ARGUMENT, "limit must be a whole number from 1 to %d",
                     PAGE_MAX);
        return;
    }
    if (after && (!lim || strlen(after) > 63)) {
        reply_errorf(c->req, YE_INVALID_ARGUMENT,
                     lim ? "after must be a VM name (the last page's \"next\")"
                         : "after needs limit (a page: ?limit=N&after=NAME)");
        return;
    }
    struct vmlist *l = list_of(a);
    if (!l) {
        reply_errorf(c->req, YE_INTERNAL, "out of memory");
        return;
    }
    uint64_t gen = ctl_vm_generation(a->ctl);
    if (!host && !limit && l->whole && l->gen == gen) {
        send_blob(c->req, l->whole);
        return;
    }
    struct vm_rec *vms;
    size_t n;
    if (limit) {
        /* one more than asked: whether another page follows */
        if (ctl_vm_list_page(a->ctl, after, (size_t)limit + 1, &vms, &n, &err) < 0) {
            reply_error(c->req, &err);
            return;
        }
    } else if (ctl_vm_list(a->ctl, &vms, &n, &err) < 0) {
        reply_error(c->req, &err);
        return;
    }
    const char *next = NULL;
    if (limit && n > limit) {
        n = (size_t)limit;
        next = vms[n - 1].name;
    }
    if (!limit)
        l->mark++;
    struct blob *b = list_text(a, l, vms, n, host, next);
    if (b && !limit)
        sweep(l);
    free(vms);
    if (!b) {
        reply_errorf(c->req, YE_INTERNAL, "out of memory");
        return;
    }
    if (!host && !limit) {
        blob_unref(l->whole);
        l->whole = b; /* the cache holds the reference */
        l->gen = gen;
        send_blob(c->req, b);
        return;
    }
    send_blob(c->req, b);
    blob_unref(b);
}
