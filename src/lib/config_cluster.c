/*
 * config_cluster.c - the cluster's settings (docs/cluster.md): the role,
 * the host's name and labels, the agent's listen address, the join token
 * and controllers, heartbeat and lease timings (placement's settings are
 * ctl/place.c's, in config.c); and the
 * checks of a host name and a label list, which the controller also applies
 * to what an agent reports when it joins, and a label list as JSON.
 */
#include "lib/config.h"
#include "lib/util.h"

#include <ctype.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void config_cluster_defaults(struct yun_config *c)
{
    snprintf(c->role, sizeof c->role, "all");
    snprintf(c->cpu_model, sizeof c->cpu_model, "auto");
    snprintf(c->agent_listen, sizeof c->agent_listen, "0.0.0.0:7781");
    c->heartbeat_ms = 2000;
    c->host_dead_after_ms = 10000;
    c->fence_margin_ms = 1000;
    c->ha_restart_margin_ms = 2000;
    c->leader_lease_ms = 5000;
}

bool config_host_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 63 || !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '.' &&
            s[i] != '-')
            return false;
    return true;
}

static bool label_char(char ch, bool key)
{
    unsigned char u = (unsigned char)ch;
    return isalnum(u) || ch == '_' || ch == '.' || ch == '-' || (key && ch == '/');
}

bool config_label_ok(const char *k, size_t klen, const char *v, size_t vlen)
{
    if (klen < 1 || klen > 63 || vlen > 63)
        return false;
    for (size_t i = 0; i < klen; i++)
        if (!label_char(k[i], true))
            return false;
    for (size_t i = 0; i < vlen; i++)
        if (!label_char(v[i], false))
            return false;
    return true;
}

json_t *config_labels_json(const char *s)
{
    json_t *o = json_object();
    while (o && *s) {
        size_t len = strcspn(s, ",");
        const char *eq = memchr(s, '=', len);
        if (eq) {
            char k[128];
            snprintf(k, sizeof k, "%.*s", (int)(eq - s), s);
            json_object_set_new(o, k, json_stringn(eq + 1, len - (size_t)(eq - s) - 1));
        }
        s += len;
        if (*s == ',')
            s++;
    }
    return o;
}

bool config_labels_ok(const char *s)
{
    if (!*s)
        return true;
    int n = 0;
    while (*s) {
        size_t len = strcspn(s, ",");
        const char *eq = memchr(s, '=', len);
        if (!eq || !config_label_ok(s, (size_t)(eq - s), eq + 1, len - (size_t)(eq - s) - 1) ||
            ++n > 32)
            return false;
        s += len;
        if (*s == ',' && !*++s)
            return false; /* a trailing comma */
    }
    return true;
}

static bool http_url_ok(const char *u)
{
    return !strncmp(u, "http://", 7) && u[7] && !strpbrk(u, " \t\r\n,");
}

/* ADDR:PORT with a port in 1..65535. */
static bool listen_ok(const char *v)
{
    const char *colon = strrchr(v, ':');
    uint64_t port;
    return colon && colon != v && parse_u64(colon + 1, 1, 65535, &port) == 0;
}

static int set_ms(int *dst, const char *key, const char *v, uint64_t min, uint64_t max, char *err,
                  size_t el)
{
    uint64_t u;
    if (parse_u64(v, min, max, &u) < 0) {
        snprintf(err, el, "%s: '%s' is not a number of milliseconds in %llu..%llu", key, v,
                 (unsigned long long)min, (unsigned long long)max);
        return -1;
    }
    *dst = (int)u;
    return 0;
}

static int set_text(char *dst, size_t len, const char *key, const char *v, char *err, size_t el)
{
    if (strlen(v) >= len) {
        snprintf(err, el, "%s: value longer than %zu characters", key, len - 1);
        return -1;
    }
    snprintf(dst, len, "%s", v);
    return 0;
}

bool config_cpu_model_ok(const char *v)
{
    size_t n = strlen(v);
    if (n < 1 || n > 63)
        return false;
    for (const char *p = v; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
            return false;
    return true;
}

bool config_cpu_models_ok(const char *v)
{
    char one[64];
    for (const char *p = v; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len >= sizeof one)
            return false;
        memcpy(one, p, len);
        one[len] = 0;
        if (!config_cpu_model_ok(one))
            return false;
        p += len;
        if (*p == ',' && !*++p)
            return false;
    }
    return true;
}

int config_cluster_set(struct yun_config *c, const char *key, const char *v, char *err, size_t el)
{
    if (!strcmp(key, "role")) {
        if (strcmp(v, "all") && strcmp(v, "controller") && strcmp(v, "agent")) {
            snprintf(err, el, "role: '%s' is not one of all, controller, agent", v);
            return -1;
        }
        return set_text(c->role, sizeof c->role, key, v, err, el);
    }
    if (!strcmp(key, "host_name")) {
        if (*v && !config_host_name_ok(v)) {
            snprintf(err, el, "host_name: '%s' is not [a-z0-9][a-z0-9.-]{0,62}", v);
            return -1;
        }
        return set_text(c->host_name, sizeof c->host_name, key, v, err, el);
    }
    if (!strcmp(key, "host_labels")) {
        if (!config_labels_ok(v)) {
            snprintf(err, el, "host_labels: '%.200s' is not k=v,k=v (at most 32 labels)", v);
            return -1;
        }
        return set_text(c->host_labels, sizeof c->host_labels, key, v, err, el);
    }
    if (!strcmp(key, "cpu_model") || !strcmp(key, "cpu_models")) {
        bool one = !strcmp(key, "cpu_model");
        if (one ? !config_cpu_model_ok(v) : !config_cpu_models_ok(v)) {
            snprintf(err, el, "%s: '%.200s' is not %s", key, v,
                     one ? "auto or a CPU model name ([A-Za-z0-9._-], at most 63)"
                         : "a ','-separated list of CPU model names");
            return -1;
        }
        return one ? set_text(c->cpu_model, sizeof c->cpu_model, key, v, err, el)
                   : set_text(c->cpu_models, sizeof c->cpu_models, key, v, err, el);
    }
    if (!strcmp(key, "agent_listen") || !strcmp(key, "agent_address")) {
        bool listen = !strcmp(key, "agent_listen");
        if (listen ? !listen_ok(v) : (strpbrk(v, " /\t") != NULL)) {
            snprintf(err, el, "%s: '%s' is not %s", key, v, listen ? "ADDR:PORT" : "an address");
            return -1;
        }
        return listen ? set_text(c->agent_listen, sizeof c->agent_listen, key, v, err, el)
                      : set_text(c->agent_address, sizeof c->agent_address, key, v, err, el);
    }
    if (!strcmp(key, "join_token_file"))
        return set_text(c->join_token_file, sizeof c->join_token_file, key, v, err, el);
    if (!strcmp(key, "join")) {
        char one[1024];
        const char *p = v;
        if (!*v) {
            snprintf(err, el, "join: give one or more http:// controller URLs");
            return -1;
        }
        while (*p) {
            size_t n = strcspn(p, ",");
            snprintf(one, sizeof one, "%.*s", (int)n, p);
            if (!http_url_ok(one)) {
                snprintf(err, el, "join: '%.200s' is not an http:// URL", one);
                return -1;
            }
            p += n;
            if (*p == ',')
                p++;
        }
        return set_text(c->join_urls, sizeof c->join_urls, key, v, err, el);
    }
    if (!strcmp(key, "advertise_url")) {
        if (*v && !http_url_ok(v)) {
            snprintf(err, el, "advertise_url: '%s' is not an http:// URL", v);
            return -1;
        }
        return set_text(c->advertise_url, sizeof c->advertise_url, key, v, err, el);
    }
    if (!strcmp(key, "heartbeat_ms"))
        return set_ms(&c->heartbeat_ms, key, v, 50, 60000, err, el);
    if (!strcmp(key, "host_dead_after"))
        return set_ms(&c->host_dead_after_ms, key, v, 200, 3600000, err, el);
    if (!strcmp(key, "fence_margin_ms"))
        return set_ms(&c->fence_margin_ms, key, v, 0, 600000, err, el);
    if (!strcmp(key, "ha_restart_margin_ms"))
        return set_ms(&c->ha_restart_margin_ms, key, v, 1, 600000, err, el);
    if (!strcmp(key, "leader_lease_ms"))
        return set_ms(&c->leader_lease_ms, key, v, 200, 600000, err, el);
    return 1;
}

int config_cluster_finish(struct yun_config *c, char *err, size_t el)
{
    if (!c->host_name[0]) {
        char name[256] = "";
        if (gethostname(name, sizeof name - 1) < 0)
            name[0] = 0;
        name[strcspn(name, ".")] = 0; /* the short name */
        name[63] = 0;
        /* made a valid name: lower case, anything else a '-' */
        for (char *p = name; *p; p++) {
            *p = (char)tolower((unsigned char)*p);
            if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '-')
                *p = '-';
        }
        if (!config_host_name_ok(name))
            snprintf(name, sizeof name, "localhost");
        snprintf(c->host_name, sizeof c->host_name, "%s", name);
    }
    if (c->host_dead_after_ms <= c->heartbeat_ms) {
        snprintf(err, el, "host_dead_after (%d ms) must be longer than heartbeat_ms (%d ms)",
                 c->host_dead_after_ms, c->heartbeat_ms);
        return -1;
    }
    /* the old copy must be dead before the new one starts: the agent fences
     * fence_margin_ms before its lease ends, the controller restarts
     * ha_restart_margin_ms after it; both are read here so one file set
     * for a cluster is checked as a whole */
    if (c->ha_restart_margin_ms <= c->fence_margin_ms) {
        snprintf(err, el,
                 "ha_restart_margin_ms (%d ms) must be longer than fence_margin_ms (%d ms)",
                 c->ha_restart_margin_ms, c->fence_margin_ms);
        return -1;
    }
    if (c->fence_margin_ms >= c->host_dead_after_ms) {
        snprintf(err, el, "fence_margin_ms (%d ms) must be shorter than host_dead_after (%d ms)",
                 c->fence_margin_ms, c->host_dead_after_ms);
        return -1;
    }
    if (!strcmp(c->role, "agent")) {
        if (!c->join_urls[0] || !c->join_token_file[0]) {
            snprintf(err, el, "role agent needs --join URL and --token-file FILE");
            return -1;
        }
    } else if (!strcmp(c->role, "controller")) {
        if (!c->join_token_file[0]) {
            snprintf(err, el, "role controller needs join_token_file (the agents' join token)");
            return -1;
        }
        if (!c->listen_tcp[0]) {
            snprintf(err, el, "role controller needs listen (agents reach it over TCP)");
            return -1;
        }
    }
    return 0;
}
