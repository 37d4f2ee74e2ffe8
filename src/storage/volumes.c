/*
 * volumes.c - the directory pool's place and usage (see volumes.h). The
 * volume rows are the controller's: callers hand them in.
 */
#include "storage/volumes.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

void volume_pool_dir(const struct yun_config *cfg, char *buf, size_t len)
{
    snprintf(buf, len, "%s/pools/" VOLUME_POOL, cfg->state_dir);
}

int volumes_init(const struct yun_config *cfg, char *err, size_t errlen)
{
    char dir[512];
    volume_pool_dir(cfg, dir, sizeof(dir));
    if (mkdir_p(dir, 0700) < 0) {
        snprintf(err, errlen, "cannot create pool %s: %s", dir, strerror(errno));
        return -1;
    }
    /* the default import and export directory; ones the operator names
     * are the operator's to make */
    char exch[512];
    snprintf(exch, sizeof(exch), "%s/exchange", cfg->state_dir);
    const char *lists[] = {cfg->import_dirs, cfg->export_dirs};
    for (int i = 0; i < 2; i++) {
        char d[PATH_MAX];
        const char *cur = lists[i];
        while (config_dirs_next(&cur, d, sizeof(d))) {
            const char *rest = path_beneath(exch, d);
            if (rest && !*rest && mkdir_p(exch, 0700) < 0) {
                snprintf(err, errlen, "cannot create %s: %s", exch, strerror(errno));
                return -1;
            }
        }
    }
    return 0;
}

uint64_t volume_actual_size(const struct volume_rec *v)
{
    return file_size_on_disk(v->path);
}

void volume_pool_info(const struct yun_config *cfg, const struct volume_rec *vs, size_t n,
                      struct pool_info *p)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), VOLUME_POOL);
    volume_pool_dir(cfg, p->path, sizeof(p->path));
    struct statvfs sv;
    if (statvfs(p->path, &sv) == 0) {
        p->capacity = (uint64_t)sv.f_blocks * sv.f_frsize;
        p->available = (uint64_t)sv.f_bavail * sv.f_frsize;
    }
    for (size_t i = 0; i < n; i++) {
        p->allocation += volume_actual_size(&vs[i]);
        p->virtual_total += vs[i].virtual_size;
    }
    p->volumes = (int)n;
}

bool volume_inside_pool(const struct yun_config *cfg, const char *path, char *real, size_t len)
{
    char dir[512], rdir[PATH_MAX], r[PATH_MAX];
    volume_pool_dir(cfg, dir, sizeof(dir));
    if (!realpath(dir, rdir) || !realpath(path, r))
        return false;
    size_t l = strlen(rdir);
    snprintf(real, len, "%s", r);
    return !strncmp(r, rdir, l) && r[l] == '/';
}
