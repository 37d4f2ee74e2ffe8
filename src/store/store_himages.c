/*
 * store_himages.c - the image copies of hosts with a library of their own
 * (the host_images table, schema 10) and an image's checksums
 * (images.sha256), for ctl/images_fetch.c.
 */
#include "store/store_internal.h"
#include "lib/util.h"

#include <string.h>

int store_image_set_sha256(struct store *st, const char *id, const char *sha256)
{
    struct db_stmt *s = store_prep(st, "UPDATE images SET sha256=?2 WHERE id=?1");
    if (!s)
        return -1;
    db_bind_text(s, 1, id);
    db_bind_text(s, 2, sha256);
    return store_step_done(st, s, "set image checksum");
}

#define HI_COLS "host,image,name,sha256,bytes,fetched_at"

int store_host_image_put(struct store *st, const struct host_image_rec *r)
{
    struct db_stmt *s =
        store_prep(st, "INSERT INTO host_images(" HI_COLS ") VALUES(?1,?2,?3,?4,?5,?6) ON CONFLICT "
                       "(host, image) DO UPDATE SET name=?3, sha256=?4, bytes=?5, fetched_at=?6");
    if (!s)
        return -1;
    db_bind_text(s, 1, r->host);
    db_bind_text(s, 2, r->image);
    db_bind_text(s, 3, r->name);
    db_bind_text(s, 4, r->sha256);
    db_bind_int64(s, 5, (int64_t)r->bytes);
    db_bind_int64(s, 6, r->fetched_at);
    return store_step_done(st, s, "record a host's image copy");
}

static void read_hi(struct db_stmt *s, void *e)
{
    struct host_image_rec *r = e;
    memset(r, 0, sizeof *r);
    store_col_text(s, 0, r->host, sizeof r->host);
    store_col_text(s, 1, r->image, sizeof r->image);
    store_col_text(s, 2, r->name, sizeof r->name);
    store_col_text(s, 3, r->sha256, sizeof r->sha256);
    int64_t b = db_col_int64(s, 4);
    r->bytes = b > 0 ? (uint64_t)b : 0;
    r->fetched_at = db_col_int64(s, 5);
}

int store_host_image_get(struct store *st, const char *host, const char *image,
                         struct host_image_rec *out)
{
    struct db_stmt *s =
        store_prep(st, "SELECT " HI_COLS " FROM host_images WHERE host=?1 AND image=?2");
    if (!s)
        return -1;
    db_bind_text(s, 1, host);
    db_bind_text(s, 2, image);
    int rc = db_step(s), ret;
    if (rc == DB_ROW) {
        read_hi(s, out);
        ret = 0;
    } else if (rc == DB_DONE) {
        ret = STORE_NOTFOUND;
    } else {
        ret = store_fail(st, "get a host's image copy");
    }
    db_finish(s);
    return ret;
}

int store_host_image_list(struct store *st, const char *image, struct host_image_rec **out,
                          size_t *n)
{
    *out = NULL;
    *n = 0;
    struct db_stmt *s =
        store_prep(st, "SELECT " HI_COLS " FROM host_images WHERE image=?1 ORDER BY host");
    if (!s)
        return -1;
    db_bind_text(s, 1, image);
    return store_collect(st, s, sizeof(**out), read_hi, out, n, "list an image's host copies");
}

int store_host_image_delete(struct store *st, const char *host, const char *image)
{
    struct db_stmt *s = store_prep(st, "DELETE FROM host_images WHERE host=?1 AND image=?2");
    if (!s)
        return -1;
    db_bind_text(s, 1, host);
    db_bind_text(s, 2, image);
    return store_step_done(st, s, "delete a host's image copy");
}
