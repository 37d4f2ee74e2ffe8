/*
 * hosts_join.c - an agent joining the controller (POST /v1/cluster/join):
 * every fact it reports checked (ctl_host_join_parse, pure), the join token
 * compared in constant time, the row made or, on a re-join with its host
 * id, updated (id, VMs and maintenance kept); and the authentication of
 * its later requests (X-Yun-Host + its credential).
 */
#include "ctl/hosts_int.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/version.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A string member: required ones must be there; at most max-1 bytes. */
static int get_str(json_t *body, const char *key, bool required, char *dst, size_t max,
                   struct yerr *err)
{
    json_t *v = json_object_get(body, key);
    if (!v) {
        if (required)
            return yerr_set(err, YE_INVALID_ARGUMENT, "%s: missing", key);
        dst[0] = 0;
        return 0;
    }
    const char *s = json_string_value(v);
    if (!s)
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s: not a string", key);
    if (strlen(s) >= max || strlen(s) != json_string_length(v))
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s: longer than %zu characters", key, max - 1);
    if (required && !*s)
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s: empty", key);
    snprintf(dst, max, "%s", s);
    return 0;
}

static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

static bool uuid_like(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !strchr("0123456789abcdef", s[i]))
            return false;
    }
    return true;
}

static int parse_labels(json_t *v, char *out, size_t max, struct yerr *err)
{
    out[0] = 0;
    if (!v)
        return 0;
    if (!json_is_object(v))
        return yerr_set(err, YE_INVALID_ARGUMENT, "labels: not an object of strings");
    if (json_object_size(v) > 32)
        return yerr_set(err, YE_INVALID_ARGUMENT, "labels: more than 32");
    size_t off = 0;
    const char *k;
    json_t *val;
    json_object_foreach(v, k, val)
    {
        const char *s = json_string_value(val);
        if (!s || !config_label_ok(k, strlen(k), s, strlen(s)))
            return yerr_set(err, YE_INVALID_ARGUMENT,
                            "labels: '%.64s' is not key [A-Za-z0-9_./-]{1,63} with a value "
                            "[A-Za-z0-9_.-]{0,63}",
                            k);
        int w = snprintf(out + off, max - off, "%s%s=%s", off ? "," : "", k, s);
        if (w < 0 || (size_t)w >= max - off)
            return yerr_set(err, YE_INVALID_ARGUMENT, "labels: longer than %zu characters",
                            max - 1);
        off += (size_t)w;
    }
    return 0;
}

int ctl_host_join_parse(json_t *body, struct host_join *j, struct yerr *err)
{
    memset(j, 0, sizeof *j);
    if (!body || !json_is_object(body))
        return yerr_set(err, YE_INVALID_ARGUMENT, "the body must be a JSON object");
    json_t *proto = json_object_get(body, "protocol");
    if (!json_is_integer(proto))
        return yerr_set(err, YE_INVALID_ARGUMENT, "protocol: an integer is needed");
    if (json_integer_value(proto) != YUN_PROTOCOL)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "protocol: this agent speaks protocol %lld, this controller (yun %s) "
                        "speaks protocol %d only: install the same yun version on both",
                        (long long)json_integer_value(proto), yun_version(), YUN_PROTOCOL);
    if (get_str(body, "token", true, j->token, sizeof j->token, err) < 0 ||
        get_str(body, "host_id", false, j->host_id, sizeof j->host_id, err) < 0 ||
        get_str(body, "name", true, j->name, sizeof j->name, err) < 0 ||
        get_str(body, "address", true, j->address, sizeof j->address, err) < 0 ||
        get_str(body, "agent_url", true, j->agent_url, sizeof j->agent_url, err) < 0 ||
        get_str(body, "run", true, j->run, sizeof j->run, err) < 0 ||
        get_str(body, "accel", true, j->accel, sizeof j->accel, err) < 0 ||
        get_str(body, "cpu_model", false, j->cpu_model, sizeof j->cpu_model, err) < 0 ||
        get_str(body, "cpu_flags", false, j->cpu_flags, sizeof j->cpu_flags, err) < 0 ||
        get_str(body, "cpu_models", false, j->cpu_models, sizeof j->cpu_models, err) < 0 ||
        get_str(body, "vms_dir", true, j->vms_dir, sizeof j->vms_dir, err) < 0 ||
        get_str(body, "images_dir", true, j->images_dir, sizeof j->images_dir, err) < 0)
        return -1;
    if (j->host_id[0] && !uuid_like(j->host_id))
        return yerr_set(err, YE_INVALID_ARGUMENT, "host_id: not a host id");
    if (!config_host_name_ok(j->name))
        return yerr_set(err, YE_INVALID_ARGUMENT, "name: '%s' is not [a-z0-9][a-z0-9.-]{0,62}",
                        j->name);
    if (strpbrk(j->address, " /\t") || !printable(j->address))
        return yerr_set(err, YE_INVALID_ARGUMENT, "address: not a host address");
    if (strncmp(j->agent_url, "http://", 7) || !j->agent_url[7] || strpbrk(j->agent_url, " \t") ||
        !printable(j->agent_url))
        return yerr_set(err, YE_INVALID_ARGUMENT, "agent_url: not an http:// URL");
    if (!printable(j->run) || !printable(j->cpu_model) || !printable(j->cpu_flags))
        return yerr_set(err, YE_INVALID_ARGUMENT, "run, cpu_model, cpu_flags: control characters");
    if (!config_cpu_models_ok(j->cpu_models))
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "cpu_models: not a ','-separated list of CPU model names");
    if (strcmp(j->accel, "kvm") && strcmp(j->accel, "tcg"))
        return yerr_set(err, YE_INVALID_ARGUMENT, "accel: '%s' is not kvm or tcg", j->accel);
    json_t *cpus = json_object_get(body, "cpus"), *mem = json_object_get(body, "memory");
    if (!json_is_integer(cpus) || json_integer_value(cpus) < 1 || json_integer_value(cpus) > 65536)
        return yerr_set(err, YE_INVALID_ARGUMENT, "cpus: a whole number in 1..65536");
    if (!json_is_integer(mem) || json_integer_value(mem) <= 0)
        return yerr_set(err, YE_INVALID_ARGUMENT, "memory: a positive number of bytes");
    j->cpus = (int)json_integer_value(cpus);
    j->memory = (uint64_t)json_integer_value(mem);
    if (j->vms_dir[0] != '/' || j->images_dir[0] != '/' || !printable(j->vms_dir) ||
        !printable(j->images_dir))
        return yerr_set(err, YE_INVALID_ARGUMENT, "vms_dir, images_dir: absolute paths");
    return parse_labels(json_object_get(body, "labels"), j->labels, sizeof j->labels, err);
}

/* The token, compared in time that depends only on the controller's. */
static bool token_ok(const struct ctl_hosts *h, const char *given)
{
    size_t lg = strlen(given);
    unsigned char diff = (unsigned char)(lg != h->token_len);
    for (size_t i = 0; i < h->token_len; i++)
        diff |= (unsigned char)(h->token[i] ^ (i < lg ? given[i] : 0));
    return diff == 0 && h->token_len >= 16;
}

static void fill_row(struct host_rec *r, const struct host_join *j)
{
    snprintf(r->name, sizeof r->name, "%s", j->name);
    snprintf(r->address, sizeof r->address, "%s", j->address);
    snprintf(r->agent_url, sizeof r->agent_url, "%s", j->agent_url);
    r->cpus = j->cpus;
    r->memory = j->memory;
    snprintf(r->accel, sizeof r->accel, "%s", j->accel);
    snprintf(r->cpu_model, sizeof r->cpu_model, "%s", j->cpu_model);
    snprintf(r->cpu_flags, sizeof r->cpu_flags, "%s", j->cpu_flags);
    snprintf(r->cpu_models, sizeof r->cpu_models, "%s", j->cpu_models);
    snprintf(r->labels, sizeof r->labels, "%s", j->labels);
    snprintf(r->run, sizeof r->run, "%s", j->run);
    snprintf(r->vms_dir, sizeof r->vms_dir, "%s", j->vms_dir);
    snprintf(r->images_dir, sizeof r->images_dir, "%s", j->images_dir);
    snprintf(r->state, sizeof r->state, "%s", r->maintenance ? "maintenance" : "up");
    r->updated_at = now_ms();
}

int ctl_host_join(struct ctl *c, const struct host_join *j, char host_id[37], char credential[65],
                  struct yerr *err)
{
    if (!c->hosts || c->agent)
        return yerr_set(err, YE_UNAUTHORIZED, "this yund is not a controller: it takes no joins");
    if (!token_ok(c->hosts, j->token)) {
        log_warn("join of host %s from %s refused: wrong join token", j->name, j->address);
        return yerr_set(err, YE_UNAUTHORIZED, "wrong join token");
    }
    /* A host whose images_dir is the controller's reads the cluster's image
     * library itself (shared storage); any other has a library of its own,
     * and images are copied to it when a VM needs them (docs/cluster.md,
     * "Images"; ctl/images_fetch.c). */
    struct host_rec r, other;
    bool known = false, was_down = false;
    if (j->host_id[0]) {
        int rc = store_host_get(c->store, j->host_id, &r);
        if (rc < 0)
            return yerr_db(err, store_errmsg(c->store));
        known = rc == 0 && !strcmp(r.id, j->host_id);
    }
    int rc = store_host_get(c->store, j->name, &other);
    if (rc < 0)
        return yerr_db(err, store_errmsg(c->store));
    if (rc == 0 && !strcmp(other.name, j->name) && (!known || strcmp(other.id, r.id))) {
        log_warn("join of host %s from %s refused: the name is held by host %s", j->name,
                 j->address, other.id);
        return yerr_set(err, YE_CONFLICT, "host name %s is held by another host (%s)", j->name,
                        other.id);
    }
    if (!known) {
        memset(&r, 0, sizeof r);
        if (j->host_id[0])
            snprintf(r.id, sizeof r.id, "%s", j->host_id); /* its row was removed meanwhile */
        else
            uuid_generate_str(r.id);
        r.joined_at = now_ms();
    }
    was_down = known && !strcmp(r.state, "down");
    fill_row(&r, j);
    if (hosts_credential(c->hosts->token, c->hosts->token_len, r.id, credential) < 0 ||
        hosts_cred_hash(credential, r.cred_hash) < 0)
        return yerr_set(err, YE_INTERNAL, "cannot derive the host's credential");
    rc = known ? store_host_update(c->store, &r) : store_host_insert(c->store, &r);
    if (rc == STORE_CONFLICT)
        return yerr_set(err, YE_CONFLICT, "host name %s is held by another host", j->name);
    if (rc)
        return yerr_db(err, store_errmsg(c->store));
    if (store_host_renew(c->store, r.id, r.run, 0, 0, c->cfg->host_dead_after_ms, &r.lease_until) !=
        0)
        return yerr_db(err, store_errmsg(c->store));
    snprintf(host_id, 37, "%s", r.id);

    struct host_entry *e = hosts_find(c, r.id);
    bool reconnect = !e || !e->agent || strcmp(e->rec.agent_url, r.agent_url);
    if (!e) {
        e = hosts_add(c, &r);
        if (!e)
            return yerr_set(err, YE_INTERNAL, "out of memory");
    } else {
        was_down = was_down || !strcmp(e->rec.state, "down");
        hosts_update(c, e, &r);
    }
    if (reconnect)
        hosts_connect(c, e);
    ctl_place_invalidate(c);
    ctl_event(c, "host", r.name, known ? "rejoin" : "join", "ok",
              "host %s joined from %s (%d cpus, %llu MiB, %s)%s", r.name, r.address, r.cpus,
              (unsigned long long)(r.memory >> 20), r.accel,
              r.maintenance ? ": in maintenance" : "");
    if (known)
        ctl_vms_host_up(c, r.id); /* its agent restarted: a reconcile pass for it */
    if (was_down)
        ctl_event(c, "host", r.name, "up", "ok", "host %s is up again", r.name);
    return 0;
}

int ctl_host_auth(struct ctl *c, const char *host_id, const char *credential, struct yerr *err)
{
    if (!c->hosts || c->agent || !host_id || !credential)
        return yerr_set(err, YE_UNAUTHORIZED, "missing X-Yun-Host or credential");
    struct host_entry *e = hosts_find(c, host_id);
    if (!e) {
        /* joined through another controller, before this one led */
        struct host_rec r;
        int rc = store_host_get(c->store, host_id, &r);
        if (rc < 0)
            return yerr_db(err, store_errmsg(c->store));
        if (rc || strcmp(r.id, host_id) || !r.agent_url[0])
            return yerr_set(err, YE_UNAUTHORIZED, "unknown host %.40s: join again", host_id);
        e = hosts_add(c, &r);
        if (!e)
            return yerr_set(err, YE_INTERNAL, "out of memory");
        hosts_connect(c, e);
    }
    char hash[65];
    if (strlen(credential) != 64 || hosts_cred_hash(credential, hash) < 0 ||
        strlen(e->rec.cred_hash) != 64 || !hosts_ct_equal(hash, e->rec.cred_hash, 64))
        return yerr_set(err, YE_UNAUTHORIZED, "wrong credential for host %s", e->rec.name);
    return 0;
}
