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
 *
 * A full read (the whole list after a change, ?host=) is done off the
 * loop by the reader thread (vms_read.c, its own store connection): the
 * request is parked, not the loop, and the reply is put together on the
 * loop from the fragments when the rows come back. Requests that arrive
 * before a read has been handed to the thread share it; those arriving
 * after wait for the next one (or for the cache that read leaves).
 */
#include "api/api.h"
#include "api/vms_read.h"
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

/* A parked request waiting for a full read. */
struct lwait {
    struct api *a;
    struct hreq *req;
    char host[64]; /* ?host=, "" for the whole list */
    struct lwait *next;
};

struct vmlist {
    struct frag **slots; /* open addressing by id, cap a power of two */
    size_t cap, count;
    uint64_t mark;
    struct blob *whole; /* GET /v1/vms, valid while gen holds */
    uint64_t gen;
    struct vm_reader *reader; /* NULL until the first full read */
    bool no_reader;           /* it could not be had: read on the loop */
    struct lwait *reading;    /* answered by the read under way */
    struct lwait *waiting;    /* arrived after it was handed over */
    uint64_t read_gen;        /* the VM generation when it was handed over */
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

static void waiters_drop(struct lwait **head)
{
    while (*head) {
        struct lwait *w = *head;
        *head = w->next;
        hreq_set_closecb(w->req, NULL, NULL);
        reply_errorf(w->req, YE_UNAVAILABLE, "yund is shutting down");
        free(w);
    }
}

void vm_list_cache_free(struct api *a)
{
    struct vmlist *l = a->vmlist;
    if (!l)
        return;
    vm_reader_free(l->reader); /* joins the thread */
    waiters_drop(&l->reading);
    waiters_drop(&l->waiting);
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

/* ---- the full read, off the loop ---- */

static void on_rows(void *ctx, struct vm_rec *vms, size_t n, const char *err);

static bool unlink_waiter(struct lwait **head, struct lwait *w)
{
    for (; *head; head = &(*head)->next)
        if (*head == w) {
            *head = w->next;
            return true;
        }
    return false;
}

/* The client went away (or httpd is closing): the read goes on, its rows
 * still fill the cache. */
static void on_waiter_closed(struct hreq *req, void *arg)
{
    (void)req;
    struct lwait *w = arg;
    struct vmlist *l = w->a->vmlist;
    if (!unlink_waiter(&l->reading, w))
        unlink_waiter(&l->waiting, w);
    free(w);
}

/* Hands a read to the thread. Why it sees every write a client has been
 * told of: the loop commits a write on its own connection before it
 * replies, so such a write is committed before the client's next request
 * arrives, and this runs after that request arrived; the thread's query
 * starts after this call (vm_reader_start), and a query started after a
 * commit sees it (PostgreSQL READ COMMITTED takes its snapshot at the
 * statement's start; a SQLite WAL read transaction sees every commit made
 * before it began). The generation is taken now, before the read, so a
 * write landing during the read leaves the cache stale, never wrong. */
static void read_start(struct api *a, struct vmlist *l)
{
    l->read_gen = ctl_vm_generation(a->ctl);
    vm_reader_start(l->reader);
}

static void answer(struct api *a, struct vmlist *l, struct lwait *w, const struct vm_rec *vms,
                   size_t n, struct blob *whole, const char *err)
{
    hreq_set_closecb(w->req, NULL, NULL);
    if (err) {
        reply_errorf(w->req, YE_DATABASE, "database: %s", err);
        return;
    }
    if (!w->host[0]) {
        if (whole)
            send_blob(w->req, whole);
        else
            reply_errorf(w->req, YE_INTERNAL, "out of memory");
        return;
    }
    struct blob *b = list_text(a, l, vms, n, w->host, NULL);
    if (!b) {
        reply_errorf(w->req, YE_INTERNAL, "out of memory");
        return;
    }
    send_blob(w->req, b);
    blob_unref(b);
}

static void on_rows(void *ctx, struct vm_rec *vms, size_t n, const char *err)
{
    struct api *a = ctx;
    struct vmlist *l = a->vmlist;
    struct blob *whole = NULL;
    if (vms) {
        l->mark++;
        whole = list_text(a, l, vms, n, NULL, NULL);
        if (whole) {
            sweep(l);
            blob_unref(l->whole);
            l->whole = whole; /* the cache holds the reference */
            l->gen = l->read_gen;
        }
    }
    struct lwait *batch = l->reading;
    l->reading = NULL;
    while (batch) {
        struct lwait *w = batch;
        batch = w->next;
        answer(a, l, w, vms, n, whole, err);
        free(w);
    }
    free(vms);
    /* Those that came during the read: the cache, if no write has moved
     * the generation since the read was handed over; else the next read. */
    uint64_t gen = ctl_vm_generation(a->ctl);
    struct lwait **tail = &l->reading;
    while (l->waiting) {
        struct lwait *w = l->waiting;
        l->waiting = w->next;
        if (!w->host[0] && l->whole && l->gen == gen) {
            hreq_set_closecb(w->req, NULL, NULL);
            send_blob(w->req, l->whole);
            free(w);
            continue;
        }
        w->next = NULL;
        *tail = w;
        tail = &w->next;
    }
    if (l->reading)
        read_start(a, l);
}

/* Parks the request for a read by the thread: 0, or -1 when there is no
 * thread (the caller reads on the loop). */
static int read_park(struct api *a, struct vmlist *l, struct hreq *req, const char *host)
{
    if (!l->reader && !l->no_reader) {
        l->reader = vm_reader_new(a->ctl->base, a->ctl->store, on_rows, a);
        l->no_reader = !l->reader;
    }
    struct lwait *w = l->reader ? calloc(1, sizeof *w) : NULL;
    if (!w)
        return -1;
    w->a = a;
    w->req = req;
    snprintf(w->host, sizeof w->host, "%s", host ? host : "");
    bool busy = vm_reader_busy(l->reader);
    struct lwait **head = busy ? &l->waiting : &l->reading;
    while (*head)
        head = &(*head)->next;
    *head = w;
    hreq_set_closecb(req, on_waiter_closed, w);
    if (!busy)
        read_start(a, l);
    return 0;
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
    if (!limit && read_park(a, l, c->req, host) == 0)
        return;
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
