/*
 * config.c - defaults, config file parsing and validation for yund.
 */
#include "lib/config.h"
#include "lib/util.h"

#include <ctype.h>
#include <limits.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Memory and log sizes: far beyond any host, far below where sums overflow. */
#define SIZE_SETTING_MAX (1ULL << 50)
#define CONFIG_MAX_DIRS  16

void config_defaults(struct yun_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->state_dir, sizeof(c->state_dir), "/var/lib/yun");
    snprintf(c->qemu_binary, sizeof(c->qemu_binary), "qemu-system-x86_64");
    snprintf(c->qemu_img, sizeof(c->qemu_img), "qemu-img");
    snprintf(c->accel, sizeof(c->accel), "auto");
    snprintf(c->log_level, sizeof(c->log_level), "info");
    c->cpu_overcommit = 4.0;
    c->mem_overcommit = 1.0;
    c->reserved_memory = 512ULL << 20;
    snprintf(c->placement_policy, sizeof(c->placement_policy), "spread");
    snprintf(c->ksm, sizeof(c->ksm), "auto");
    c->ksm_free_pct = 20.0;
    c->ksm_psi = 10.0;
    c->ksm_min_saving = 256ULL << 20;
    c->stop_timeout_s = 30;
    c->detach_timeout_s = 60;
    c->reconcile_interval_s = 10;
    c->max_body = 64 * 1024;
    c->max_connections = 256;
    c->sample_interval_s = 10;
    c->notify_retries = 4;
    c->notify_backoff_ms = 1000;
    c->notify_timeout_s = 10;
    c->log_max_size = 10ULL << 20;
    c->event_retention = 100000;
    c->event_max_age_s = 30 * 86400;
    c->console_log_max = 4ULL << 20;
    c->reset_loop_max = 5;
    c->reset_loop_window_s = 60;
    snprintf(c->external_url, sizeof(c->external_url), "http://localhost/");
    /* above systemd's container range (up to 0x6FFFFFFF) and below 2^31:
     * no real account or container mapping uses these */
    c->qemu_confine = 1;
    c->qemu_uid_min = 1900000000u;
    c->qemu_uid_max = 1900065535u;
    snprintf(c->qemu_uid_dir, sizeof(c->qemu_uid_dir), "/run/yun/uids");
    config_cluster_defaults(c);
    config_balloon_defaults(c);
}

static int set_str(char *dst, size_t len, const char *v, const char *key, char *err, size_t el)
{
    if (strlen(v) >= len) {
        snprintf(err, el, "%s: value longer than %zu characters", key, len - 1);
        return -1;
    }
    snprintf(dst, len, "%s", v);
    return 0;
}

int config_dirs_next(const char **cursor, char *out, size_t outlen)
{
    const char *p = *cursor;
    if (!*p)
        return 0;
    size_t n = strcspn(p, ":");
    snprintf(out, outlen, "%.*s", (int)n, p);
    *cursor = p[n] ? p + n + 1 : p + n;
    return 1;
}

/* import_dirs / export_dirs: absolute directories, no "." or "..", so that
 * judging a path by its components means what it says. */
static int set_dir_list(char *dst, size_t len, const char *v, const char *key, char *err, size_t el)
{
    if (!*v) {
        snprintf(err, el, "%s: give at least one absolute directory (':' separates them)", key);
        return -1;
    }
    char dir[PATH_MAX];
    const char *cur = v;
    int n = 0;
    while (config_dirs_next(&cur, dir, sizeof(dir))) {
        if (dir[0] != '/' || path_has_dot_component(dir) || strlen(dir) > 200) {
            snprintf(err, el,
                     "%s: '%.200s' is not an absolute directory without . or .. (at most 200 "
                     "characters)",
                     key, dir);
            return -1;
        }
        if (++n > CONFIG_MAX_DIRS) {
            snprintf(err, el, "%s: at most %d directories", key, CONFIG_MAX_DIRS);
            return -1;
        }
    }
    if (v[strlen(v) - 1] == ':') {
        snprintf(err, el, "%s: empty entry at the end of '%.200s'", key, v);
        return -1;
    }
    return set_str(dst, len, v, key, err, el);
}

/* An exchange directory must not open yund's own state to its users: it may
 * be neither the state directory nor above it, and within it only the
 * exchange directory qualifies. */
static int check_dir_list(const struct yun_config *c, const char *list, const char *key, char *err,
                          size_t el)
{
    char dir[PATH_MAX], exch[PATH_MAX];
    snprintf(exch, sizeof(exch), "%s/exchange", c->state_dir);
    const char *cur = list;
    while (config_dirs_next(&cur, dir, sizeof(dir))) {
        if (path_beneath(dir, c->state_dir)) {
            snprintf(err, el, "%s: %s holds yund's state directory %s", key, dir, c->state_dir);
            return -1;
        }
        if (path_beneath(c->state_dir, dir) && !path_beneath(exch, dir)) {
            snprintf(err, el, "%s: %s is inside yund's state directory (only %s may be)", key, dir,
                     exch);
            return -1;
        }
    }
    return 0;
}

static int set_double(double *dst, const char *v, double min, double max, const char *key,
                      char *err, size_t el)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    /* written so that NaN (which compares false with everything) fails too */
    if (errno || end == v || *end || !(d >= min && d <= max)) {
        snprintf(err, el, "%s: '%s' is not a number in %g..%g", key, v, min, max);
        return -1;
    }
    *dst = d;
    return 0;
}

/* "30d", "12h", "90m", "45s" or plain seconds. */
static int parse_duration_s(const char *v, uint64_t *out)
{
    static const struct {
        char unit;
        uint64_t mult;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
    size_t n = strlen(v);
    uint64_t mult = 1;
    char num[32];
    if (n == 0 || n >= sizeof(num))
        return -1;
    snprintf(num, sizeof(num), "%s", v);
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (num[n - 1] == units[i].unit) {
            mult = units[i].mult;
            num[n - 1] = 0;
        }
    uint64_t u;
    if (parse_u64(num, 0, UINT64_MAX / 86400, &u) < 0)
        return -1;
    *out = u * mult;
    return 0;
}

int config_set(struct yun_config *c, const char *key, const char *v, char *err, size_t el)
{
    uint64_t u;
    if (!strcmp(key, "state_dir"))
        return set_str(c->state_dir, sizeof(c->state_dir), v, key, err, el);
    if (!strcmp(key, "socket"))
        return set_str(c->socket_path, sizeof(c->socket_path), v, key, err, el);
    if (!strcmp(key, "listen"))
        return set_str(c->listen_tcp, sizeof(c->listen_tcp), v, key, err, el);
    if (!strcmp(key, "token_file"))
        return set_str(c->token_file, sizeof(c->token_file), v, key, err, el);
    if (!strcmp(key, "qemu"))
        return set_str(c->qemu_binary, sizeof(c->qemu_binary), v, key, err, el);
    if (!strcmp(key, "qemu_img"))
        return set_str(c->qemu_img, sizeof(c->qemu_img), v, key, err, el);
    if (!strcmp(key, "image_builder"))
        return set_str(c->image_builder, sizeof(c->image_builder), v, key, err, el);
    static const struct {
        const char *key;
        size_t off, len;
    } strs[] = {
        {"smtp_url", offsetof(struct yun_config, smtp_url), sizeof(c->smtp_url)},
        {"smtp_from", offsetof(struct yun_config, smtp_from), sizeof(c->smtp_from)},
        {"smtp_user", offsetof(struct yun_config, smtp_user), sizeof(c->smtp_user)},
        {"smtp_password_file", offsetof(struct yun_config, smtp_password_file),
         sizeof(c->smtp_password_file)},
        {"sms_url", offsetof(struct yun_config, sms_url), sizeof(c->sms_url)},
        {"sms_body", offsetof(struct yun_config, sms_body), sizeof(c->sms_body)},
        {"external_url", offsetof(struct yun_config, external_url), sizeof(c->external_url)},
        {"image_cache", offsetof(struct yun_config, image_cache), sizeof(c->image_cache)},
        {"store", offsetof(struct yun_config, store), sizeof(c->store)},
    };
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        if (!strcmp(key, strs[i].key))
            return set_str((char *)c + strs[i].off, strs[i].len, v, key, err, el);
    static const struct {
        const char *key;
        size_t off;
        uint64_t min, max;
    } ints[] = {
        {"sample_interval", offsetof(struct yun_config, sample_interval_s), 1, 3600},
        {"smtp_starttls", offsetof(struct yun_config, smtp_starttls), 0, 1},
        {"notify_retries", offsetof(struct yun_config, notify_retries), 1, 20},
        {"notify_backoff_ms", offsetof(struct yun_config, notify_backoff_ms), 1, 600000},
        {"notify_timeout", offsetof(struct yun_config, notify_timeout_s), 1, 300},
        {"reset_loop_window", offsetof(struct yun_config, reset_loop_window_s), 1, 3600},
    };
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
        if (!strcmp(key, ints[i].key)) {
            if (parse_u64(v, ints[i].min, ints[i].max, &u) < 0) {
                snprintf(err, el, "%s: '%s' is not a whole number in %llu..%llu", key, v,
                         (unsigned long long)ints[i].min, (unsigned long long)ints[i].max);
                return -1;
            }
            *(int *)((char *)c + ints[i].off) = (int)u;
            return 0;
        }
    if (!strcmp(key, "log_max_size")) {
        if (parse_size(v, &u) < 0 || u > SIZE_SETTING_MAX) {
            snprintf(err, el,
                     "log_max_size: '%s' is not a size such as 10M, at most 1P (0 = never "
                     "rotate)",
                     v);
            return -1;
        }
        c->log_max_size = u;
        return 0;
    }
    if (!strcmp(key, "import_dirs"))
        return set_dir_list(c->import_dirs, sizeof(c->import_dirs), v, key, err, el);
    if (!strcmp(key, "export_dirs"))
        return set_dir_list(c->export_dirs, sizeof(c->export_dirs), v, key, err, el);
    if (!strcmp(key, "event_retention")) {
        if (parse_u64(v, 0, 1000000000, &u) < 0 || (u > 0 && u < 100)) {
            snprintf(err, el,
                     "event_retention: '%s' is not a number of events in 100..1000000000 "
                     "(0 = keep all)",
                     v);
            return -1;
        }
        c->event_retention = (int64_t)u;
        return 0;
    }
    if (!strcmp(key, "event_max_age")) {
        if (parse_duration_s(v, &u) < 0 || u > 100ULL * 365 * 86400) {
            snprintf(err, el,
                     "event_max_age: '%s' is not a duration such as 30d, 12h or 3600 "
                     "(seconds; 0 = no limit)",
                     v);
            return -1;
        }
        c->event_max_age_s = (int64_t)u;
        return 0;
    }
    if (!strcmp(key, "reset_loop_max")) {
        if (parse_u64(v, 0, 64, &u) < 0 || u == 1) {
            snprintf(err, el, "reset_loop_max: '%s' is not a number of resets in 2..64 (0 = off)",
                     v);
            return -1;
        }
        c->reset_loop_max = (int)u;
        return 0;
    }
    if (!strcmp(key, "console_log_max")) {
        /* At most 64M: a cut copies up to half of it, on the event loop. */
        if (parse_size(v, &u) < 0 || (u > 0 && u < (16 << 10)) || u > (64ULL << 20)) {
            snprintf(err, el,
                     "console_log_max: '%s' is not a size in 16K..64M such as 4M "
                     "(0 = never cut)",
                     v);
            return -1;
        }
        c->console_log_max = u;
        return 0;
    }
    if (!strcmp(key, "qemu_uid_min") || !strcmp(key, "qemu_uid_max")) {
        /* 0 is root and (uid_t)-1 means "no change" to setuid */
        if (parse_u64(v, 1000, 4294967294u, &u) < 0) {
            snprintf(err, el, "%s: '%s' is not a uid in 1000..4294967294", key, v);
            return -1;
        }
        *(!strcmp(key, "qemu_uid_min") ? &c->qemu_uid_min : &c->qemu_uid_max) = (uint32_t)u;
        return 0;
    }
    if (!strcmp(key, "qemu_confine")) {
        if (parse_u64(v, 0, 1, &u) < 0) {
            snprintf(err, el, "qemu_confine: '%s' is not 0 or 1", v);
            return -1;
        }
        c->qemu_confine = (int)u;
        return 0;
    }
    if (!strcmp(key, "images_dir")) {
        if (v[0] != '/' || strlen(v) > 200 || strstr(v, "/../") || strstr(v, "/./")) {
            snprintf(err, el, "images_dir: '%s' is not an absolute path (at most 200 characters)",
                     v);
            return -1;
        }
        return set_str(c->images_dir, sizeof(c->images_dir), v, key, err, el);
    }
    if (!strcmp(key, "qemu_uid_dir")) {
        if (v[0] != '/') {
            snprintf(err, el, "qemu_uid_dir: '%s' is not an absolute path", v);
            return -1;
        }
        return set_str(c->qemu_uid_dir, sizeof(c->qemu_uid_dir), v, key, err, el);
    }
    if (!strcmp(key, "log_file"))
        return set_str(c->log_file, sizeof(c->log_file), v, key, err, el);
    if (!strcmp(key, "log_level")) {
        if (strcmp(v, "error") && strcmp(v, "warn") && strcmp(v, "info") && strcmp(v, "debug")) {
            snprintf(err, el, "log_level: '%s' is not one of error, warn, info, debug", v);
            return -1;
        }
        return set_str(c->log_level, sizeof(c->log_level), v, key, err, el);
    }
    if (!strcmp(key, "accel")) {
        if (strcmp(v, "auto") && strcmp(v, "kvm") && strcmp(v, "tcg")) {
            snprintf(err, el, "accel: '%s' is not one of auto, kvm, tcg", v);
            return -1;
        }
        return set_str(c->accel, sizeof(c->accel), v, key, err, el);
    }
    if (!strcmp(key, "cpu_overcommit"))
        return set_double(&c->cpu_overcommit, v, 0.1, 64, key, err, el);
    if (!strcmp(key, "memory_overcommit"))
        return set_double(&c->mem_overcommit, v, 0.1, 16, key, err, el);
    if (!strcmp(key, "host_cpus")) {
        if (parse_u64(v, 0, 4096, &u) < 0) {
            snprintf(err, el, "host_cpus: '%s' is not a whole number in 0..4096", v);
            return -1;
        }
        c->host_cpus = (int)u;
        return 0;
    }
    if (!strcmp(key, "host_memory") || !strcmp(key, "reserved_memory") ||
        !strcmp(key, "memory_margin")) {
        if (parse_size(v, &u) < 0 || u > SIZE_SETTING_MAX) {
            snprintf(err, el, "%s: '%s' is not a size such as 512M or 16G, at most 1P", key, v);
            return -1;
        }
        if (!strcmp(key, "host_memory"))
            c->host_memory = u;
        else if (!strcmp(key, "memory_margin"))
            c->memory_margin = u;
        else
            c->reserved_memory = u;
        return 0;
    }
    if (!strcmp(key, "stop_timeout") || !strcmp(key, "reconcile_interval") ||
        !strcmp(key, "detach_timeout")) {
        if (parse_u64(v, 1, 3600, &u) < 0) {
            snprintf(err, el, "%s: '%s' is not a number of seconds in 1..3600", key, v);
            return -1;
        }
        if (!strcmp(key, "stop_timeout"))
            c->stop_timeout_s = (int)u;
        else if (!strcmp(key, "detach_timeout"))
            c->detach_timeout_s = (int)u;
        else
            c->reconcile_interval_s = (int)u;
        return 0;
    }
    if (!strcmp(key, "max_body")) {
        if (parse_size(v, &u) < 0 || u < 1024 || u > (64ULL << 20)) {
            snprintf(err, el, "max_body: '%s' is not a size in 1K..64M", v);
            return -1;
        }
        c->max_body = (size_t)u;
        return 0;
    }
    if (!strcmp(key, "placement_policy")) {
        static const char *const pols[] = {"pack",   "spread",     "first-fit",  "round-robin",
                                           "random", "load-aware", "power-aware"};
        for (size_t i = 0; i < sizeof(pols) / sizeof(pols[0]); i++)
            if (!strcmp(v, pols[i]))
                return set_str(c->placement_policy, sizeof(c->placement_policy), v, key, err, el);
        snprintf(err, el,
                 "placement_policy: '%s' is not one of pack, spread, first-fit, round-robin, "
                 "random, load-aware, power-aware",
                 v);
        return -1;
    }
    if (!strcmp(key, "host_max_vms")) {
        if (parse_u64(v, 0, 1000000, &u) < 0) {
            snprintf(err, el, "host_max_vms: '%s' is not a whole number in 0..1000000", v);
            return -1;
        }
        c->host_max_vms = (int)u;
        return 0;
    }
    if (!strcmp(key, "ksm")) {
        if (strcmp(v, "auto") && strcmp(v, "on") && strcmp(v, "off")) {
            snprintf(err, el, "ksm: '%s' is not one of auto, on, off", v);
            return -1;
        }
        return set_str(c->ksm, sizeof(c->ksm), v, key, err, el);
    }
    if (!strcmp(key, "ksm_free_percent"))
        return set_double(&c->ksm_free_pct, v, 0, 90, key, err, el);
    if (!strcmp(key, "ksm_psi"))
        return set_double(&c->ksm_psi, v, 0.1, 100, key, err, el);
    if (!strcmp(key, "ksm_min_saving")) {
        if (parse_size(v, &u) < 0 || u > SIZE_SETTING_MAX) {
            snprintf(err, el,
                     "ksm_min_saving: '%s' is not a size such as 256M (bytes saved per CPU-second "
                     "of ksmd), at most 1P",
                     v);
            return -1;
        }
        c->ksm_min_saving = u;
        return 0;
    }
    if (!strcmp(key, "max_connections")) {
        if (parse_u64(v, 1, 65536, &u) < 0) {
            snprintf(err, el, "max_connections: '%s' is not a whole number in 1..65536", v);
            return -1;
        }
        c->max_connections = (int)u;
        return 0;
    }
    int rc = config_cluster_set(c, key, v, err, el);
    if (rc <= 0)
        return rc;
    if ((rc = config_balloon_set(c, key, v, err, el)) <= 0)
        return rc;
    snprintf(err, el, "unknown setting '%s'", key);
    return -1;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

int config_load_file(struct yun_config *c, const char *path, char *err, size_t el)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, el, "cannot read config %s: %s", path, strerror(errno));
        return -1;
    }
    int rc = config_load_stream(c, f, path, err, el);
    fclose(f);
    return rc;
}

int config_load_stream(struct yun_config *c, FILE *f, const char *path, char *err, size_t el)
{
    char line[1024], msg[512];
    int lineno = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *p = trim(line);
        if (!*p || *p == '#')
            continue;
        char *eq = strchr(p, '=');
        if (!eq) {
            snprintf(err, el, "%s:%d: expected 'key = value'", path, lineno);
            return -1;
        }
        *eq = 0;
        char *k = trim(p), *v = trim(eq + 1);
        if (config_set(c, k, v, msg, sizeof(msg)) < 0) {
            snprintf(err, el, "%s:%d: %s", path, lineno, msg);
            return -1;
        }
    }
    return 0;
}

int config_finish(struct yun_config *c, char *err, size_t el)
{
    /* no ':' either: the default import and export lists are made from it */
    if (c->state_dir[0] != '/' || strchr(c->state_dir, ':')) {
        snprintf(err, el, "state_dir must be an absolute path without ':', not '%s'", c->state_dir);
        return -1;
    }
    if (!c->socket_path[0] && snprintf_checked(c->socket_path, sizeof(c->socket_path),
                                               "%s/yund.sock", c->state_dir) < 0) {
        snprintf(err, el, "state_dir too long");
        return -1;
    }
    /* sun_path holds 108 bytes; per-VM sockets live deeper than yund.sock. */
    if (strlen(c->state_dir) > 60) {
        snprintf(err, el, "state_dir '%s' is longer than 60 characters: VM sockets would not fit",
                 c->state_dir);
        return -1;
    }
    if (!c->images_dir[0])
        snprintf(c->images_dir, sizeof(c->images_dir), "%s/images", c->state_dir);
    size_t il = strlen(c->images_dir);
    while (il > 1 && c->images_dir[il - 1] == '/')
        c->images_dir[--il] = 0;
    char exch[PATH_MAX];
    snprintf(exch, sizeof(exch), "%s/exchange", c->state_dir);
    if (!c->import_dirs[0])
        snprintf(c->import_dirs, sizeof(c->import_dirs), "%s", exch);
    if (!c->export_dirs[0])
        snprintf(c->export_dirs, sizeof(c->export_dirs), "%s", exch);
    if (check_dir_list(c, c->import_dirs, "import_dirs", err, el) < 0 ||
        check_dir_list(c, c->export_dirs, "export_dirs", err, el) < 0)
        return -1;
    if (c->qemu_uid_min > c->qemu_uid_max) {
        snprintf(err, el, "qemu_uid_min %u is above qemu_uid_max %u", c->qemu_uid_min,
                 c->qemu_uid_max);
        return -1;
    }
    if (c->listen_tcp[0] && !c->token_file[0]) {
        snprintf(err, el, "listen is set but token_file is not: TCP clients must authenticate");
        return -1;
    }
    if (c->store[0] && c->store[0] != '/' && strncmp(c->store, "postgres://", 11) &&
        strncmp(c->store, "postgresql://", 13)) {
        snprintf(err, el, "store: a postgres:// URL or an absolute SQLite file path");
        return -1;
    }
    return config_cluster_finish(c, err, el);
}
