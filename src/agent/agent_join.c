/*
 * agent_join.c - the agent joining its controllers and heartbeating them
 * (agent_join.h): the join with this host's facts, cluster.json, the
 * heartbeat with usage, re-joins, failover between controller URLs and
 * following the leader. A controller that answers garbage or 404 is not a
 * yun controller: logged clearly, the next URL tried, retried later.
 */
#include "agent/agent_join.h"
#include "agent/agent_remote.h"
#include "lib/config.h"
#include "lib/hclient.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/version.h"

#include <errno.h>
#include <stdarg.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_URLS          16
#define JOIN_RETRY_MS     500
#define JOIN_RETRY_MAX_MS 8000

struct agent_join {
    struct event_base *base;
    const struct yun_config *cfg;
    char token[256];
    char run[40];
    char host_id[37];
    char credential[65];
    char urls[MAX_URLS][256];
    int nurls, cur;
    struct hclient *hc; /* for urls[cur] */
    struct hclient_req *req;
    struct event *timer;
    bool joined;
    int heartbeat_ms;
    int retry_ms;
    char last_error[256]; /* logged once until it changes */
    json_t *facts;        /* the join body without token, run and host_id */
    int cpus;             /* the host's, for cpu_load */
    char cluster_json[300];
    agent_join_fn on_joined;
    void *on_joined_ctx;
    agent_renew_fn on_renewed;
    void *on_renewed_ctx;
    int64_t hb_sent; /* monotonic ms the heartbeat in flight was sent */
};

static void schedule(struct agent_join *j, int ms);

static void report(struct agent_join *j, bool warn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void report(struct agent_join *j, bool warn, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!strcmp(msg, j->last_error)) {
        log_debug("%s", msg);
        return;
    }
    snprintf(j->last_error, sizeof j->last_error, "%s", msg);
    if (warn)
        log_warn("%s", msg);
    else
        log_err("%s", msg);
}

static int add_url(struct agent_join *j, const char *u, size_t n)
{
    if (n == 0 || n >= sizeof j->urls[0])
        return -1;
    for (int i = 0; i < j->nurls; i++)
        if (strlen(j->urls[i]) == n && !strncmp(j->urls[i], u, n))
            return i;
    if (j->nurls == MAX_URLS)
        return -1;
    snprintf(j->urls[j->nurls], sizeof j->urls[0], "%.*s", (int)n, u);
    return j->nurls++;
}

/* The "controllers" a join's answer or cluster.json lists: each http://
 * URL among them (the others are skipped). */
static void add_controllers(struct agent_join *j, json_t *list)
{
    size_t i;
    json_t *u;
    json_array_foreach(list, i, u)
    {
        const char *s = json_string_value(u);
        if (s && !strncmp(s, "http://", 7))
            add_url(j, s, strlen(s));
    }
}

static int use_url(struct agent_join *j, int i)
{
    if (j->req) {
        hclient_cancel(j->req);
        j->req = NULL;
    }
    if (j->hc)
        hclient_free(j->hc);
    j->cur = i;
    j->hc = hclient_new(j->base, j->urls[i]);
    if (!j->hc) {
        report(j, false, "join: controller URL %s cannot be used (a numeric address is needed)",
               j->urls[i]);
        return -1;
    }
    return 0;
}

static void next_url(struct agent_join *j)
{
    if (j->nurls > 1)
        use_url(j, (j->cur + 1) % j->nurls);
}

/* ---- cluster.json ---- */

static void load_cluster_json(struct agent_join *j)
{
    json_error_t je;
    json_t *o = json_load_file(j->cluster_json, 0, &je);
    if (!o)
        return;
    const char *id = json_string_value(json_object_get(o, "host_id"));
    const char *cred = json_string_value(json_object_get(o, "credential"));
    if (id && strlen(id) == 36 && cred && strlen(cred) == 64) {
        snprintf(j->host_id, sizeof j->host_id, "%s", id);
        snprintf(j->credential, sizeof j->credential, "%s", cred);
    } else {
        log_warn("%s: no valid host_id and credential: joining as a new host", j->cluster_json);
    }
    add_controllers(j, json_object_get(o, "controllers"));
    json_decref(o);
}

static int save_cluster_json(struct agent_join *j)
{
    json_t *ctls = json_array();
    for (int i = 0; i < j->nurls; i++)
        json_array_append_new(ctls, json_string(j->urls[i]));
    json_t *o = json_pack("{s:s,s:s,s:o}", "host_id", j->host_id, "credential", j->credential,
                          "controllers", ctls);
    char *text = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
    json_decref(o);
    if (!text)
        return -1;
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s.tmp", j->cluster_json);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t len = strlen(text);
    bool ok = fd >= 0 && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    memset(text, 0, len);
    free(text);
    if (!ok || rename(tmp, j->cluster_json) < 0) {
        log_err("cannot write %s: %s", j->cluster_json, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* ---- usage and facts ---- */

static double read_load(void)
{
    FILE *f = fopen("/proc/loadavg", "r");
    double l = 0;
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = 0;
        fclose(f);
    }
    return l >= 0 ? l : 0;
}

static uint64_t read_mem_used(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return 0;
    char line[256];
    unsigned long long total = 0, avail = 0, v;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "MemTotal: %llu kB", &v) == 1)
            total = v;
        else if (sscanf(line, "MemAvailable: %llu kB", &v) == 1)
            avail = v;
    }
    fclose(f);
    return total > avail ? (uint64_t)(total - avail) << 10 : 0;
}

/* The first "model name" and "flags" of /proc/cpuinfo (flags cut at a
 * word to fit). */
static void read_cpu(char *model, size_t mlen, char *flags, size_t flen)
{
    model[0] = flags[0] = 0;
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0 && (!model[0] || !flags[0])) {
        line[strcspn(line, "\n")] = 0;
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        const char *v = colon + 1 + (colon[1] == ' ');
        if (!model[0] && !strncmp(line, "model name", 10))
            snprintf(model, mlen, "%s", v);
        else if (!flags[0] && !strncmp(line, "flags", 5)) {
            snprintf(flags, flen, "%s", v);
            if (strlen(v) >= flen) {
                char *sp = strrchr(flags, ' ');
                if (sp)
                    *sp = 0;
            }
        }
    }
    free(line);
    fclose(f);
}

static json_t *make_facts(const struct yun_config *cfg, json_t *hf, char *err, size_t errlen)
{
    char addr[64], port[16];
    const char *colon = strrchr(cfg->agent_listen, ':');
    snprintf(port, sizeof port, "%s", colon ? colon + 1 : "7781");
    if (cfg->agent_address[0])
        snprintf(addr, sizeof addr, "%s", cfg->agent_address);
    else
        snprintf(addr, sizeof addr, "%.*s", colon ? (int)(colon - cfg->agent_listen) : 0,
                 cfg->agent_listen);
    if (!addr[0] || !strcmp(addr, "0.0.0.0") || !strcmp(addr, "[::]") || !strcmp(addr, "::")) {
        snprintf(err, errlen,
                 "agent_listen %s is every address: set agent_address, the address "
                 "controllers reach this host at",
                 cfg->agent_listen);
        return NULL;
    }
    char url[160], model[128], flags[1024];
    snprintf(url, sizeof url, "http://%s:%s", addr, port);
    read_cpu(model, sizeof model, flags, sizeof flags);
    const char *accel = json_string_value(json_object_get(hf, "accel"));
    const char *vms = json_string_value(json_object_get(hf, "vms_dir"));
    const char *images = json_string_value(json_object_get(hf, "images_dir"));
    const char *models = json_string_value(json_object_get(hf, "cpu_models"));
    json_t *o = json_pack(
        "{s:i,s:s,s:s,s:s,s:O,s:O,s:s,s:s,s:s,s:o,s:s,s:s,s:s}", "protocol", YUN_PROTOCOL, "name",
        cfg->host_name, "address", addr, "agent_url", url, "cpus", json_object_get(hf, "cpus"),
        "memory", json_object_get(hf, "memory"), "accel", accel ? accel : "", "cpu_model", model,
        "cpu_flags", flags, "labels", config_labels_json(cfg->host_labels), "vms_dir",
        vms ? vms : "", "images_dir", images ? images : "", "cpu_models", models ? models : "");
    if (!o)
        snprintf(err, errlen, "host.facts without cpus or memory");
    return o;
}

/* ---- the exchanges ---- */

/* A standby's {"error":{"code":"not_leader","leader":URL}}: true when the
 * leader's URL was taken. */
static bool follow_leader(struct agent_join *j, json_t *reply)
{
    json_t *e = json_object_get(reply, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *leader = json_string_value(json_object_get(e, "leader"));
    if (!code || strcmp(code, "not_leader"))
        return false;
    if (!leader || strncmp(leader, "http://", 7)) {
        log_info("controller %s is a standby with no leader yet", j->urls[j->cur]);
        next_url(j);
        return true;
    }
    int i = add_url(j, leader, strlen(leader));
    if (i < 0)
        return false;
    log_info("controller %s is a standby: following the leader %s", j->urls[j->cur], leader);
    use_url(j, i);
    return true;
}

static void do_join(struct agent_join *j);

static void join_retry(struct agent_join *j)
{
    schedule(j, j->retry_ms);
    j->retry_ms = j->retry_ms * 2 > JOIN_RETRY_MAX_MS ? JOIN_RETRY_MAX_MS : j->retry_ms * 2;
}

static void on_join(void *ctx, int status, json_t *reply, const struct yerr *err)
{
    struct agent_join *j = ctx;
    j->req = NULL;
    const char *url = j->urls[j->cur];
    if (err && !reply) {
        report(j, true, "join: controller %s: %s%s", url, err->message,
               err->code == YE_BAD_GATEWAY ? " (not a yun controller?)" : "");
        next_url(j);
        join_retry(j);
        return;
    }
    if (follow_leader(j, reply)) {
        schedule(j, 0);
        return;
    }
    struct yerr e = {0};
    if (hclient_reply_error(status, reply, &e) < 0) {
        if (status == 404 || status == 405)
            report(j, false, "join: %s answered %d: not a yun controller", url, status);
        else
            report(j, false, "join refused by %s (%d): %s", url, status, e.message);
        if (status == 401 && j->host_id[0])
            log_info("join: a wrong token, or the controller's token changed");
        next_url(j);
        join_retry(j);
        return;
    }
    const char *id = json_string_value(json_object_get(reply, "host_id"));
    const char *cred = json_string_value(json_object_get(reply, "credential"));
    json_t *hb = json_object_get(reply, "heartbeat_ms");
    if (!id || strlen(id) != 36 || !cred || strlen(cred) != 64) {
        report(j, false,
               "join: %s answered without a host id and credential: not a yun "
               "controller",
               url);
        next_url(j);
        join_retry(j);
        return;
    }
    snprintf(j->host_id, sizeof j->host_id, "%s", id);
    snprintf(j->credential, sizeof j->credential, "%s", cred);
    if (json_is_integer(hb) && json_integer_value(hb) >= 50 && json_integer_value(hb) <= 60000)
        j->heartbeat_ms = (int)json_integer_value(hb);
    add_controllers(j, json_object_get(reply, "controllers"));
    save_cluster_json(j);
    j->joined = true;
    j->retry_ms = JOIN_RETRY_MS;
    j->last_error[0] = 0;
    log_info("joined controller %s as host %s (%s)", url, j->cfg->host_name, j->host_id);
    schedule(j, j->heartbeat_ms);
    if (j->on_joined)
        j->on_joined(j->on_joined_ctx, j->host_id, j->credential);
}

static void do_join(struct agent_join *j)
{
    json_t *body = json_deep_copy(j->facts);
    json_object_set_new(body, "token", json_string(j->token));
    json_object_set_new(body, "run", json_string(j->run));
    if (j->host_id[0])
        json_object_set_new(body, "host_id", json_string(j->host_id));
    j->req = hclient_request(j->hc, "POST", "/v1/cluster/join", body, NULL, NULL, 5000, on_join, j);
}

static void on_heartbeat(void *ctx, int status, json_t *reply, const struct yerr *err)
{
    struct agent_join *j = ctx;
    j->req = NULL;
    const char *url = j->urls[j->cur];
    if (err && !reply) {
        report(j, true, "heartbeat: controller %s: %s", url, err->message);
        next_url(j);
        schedule(j, j->heartbeat_ms);
        return;
    }
    if (follow_leader(j, reply)) {
        schedule(j, 0);
        return;
    }
    struct yerr e = {0};
    if (hclient_reply_error(status, reply, &e) < 0) {
        if (status == 401) {
            log_warn("heartbeat: %s does not know this host (%s): joining again", url, e.message);
            j->joined = false;
            schedule(j, 0);
            return;
        }
        report(j, true, "heartbeat: %s answered %d: %s", url, status, e.message);
        next_url(j);
        schedule(j, j->heartbeat_ms);
        return;
    }
    if (j->last_error[0]) {
        log_info("heartbeat: controller %s answers again", url);
        j->last_error[0] = 0;
    }
    /* the lease the controller granted, counted from when it was asked for */
    json_t *lease = json_object_get(reply, "lease_ms");
    if (j->on_renewed && json_is_integer(lease) && json_integer_value(lease) > 0)
        j->on_renewed(j->on_renewed_ctx, j->hb_sent, (int64_t)json_integer_value(lease));
    schedule(j, j->heartbeat_ms);
}

static void do_heartbeat(struct agent_join *j)
{
    char hdr[64];
    snprintf(hdr, sizeof hdr, "X-Yun-Host: %s", j->host_id);
    /* cpu_load: the fraction of the host's CPUs in use (the 1-minute load
     * over the CPU count), as placement reads it */
    json_t *body = json_pack("{s:s,s:f,s:I}", "run", j->run, "cpu_load",
                             read_load() / (j->cpus > 0 ? j->cpus : 1), "mem_used",
                             (json_int_t)read_mem_used());
    int timeout = j->heartbeat_ms < 1000 ? 1000 : j->heartbeat_ms;
    j->hb_sent = monotonic_ms();
    j->req = hclient_request(j->hc, "POST", "/v1/cluster/heartbeat", body, j->credential, hdr,
                             timeout, on_heartbeat, j);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct agent_join *j = arg;
    if (j->req || (!j->hc && use_url(j, j->cur) < 0)) {
        schedule(j, JOIN_RETRY_MAX_MS);
        return;
    }
    if (j->joined)
        do_heartbeat(j);
    else
        do_join(j);
}

static void schedule(struct agent_join *j, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(j->timer, &tv);
}

struct agent_join *agent_join_new(struct event_base *base, const struct yun_config *cfg,
                                  json_t *facts, char *err, size_t errlen)
{
    struct agent_join *j = calloc(1, sizeof *j);
    if (!j) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    j->base = base;
    j->cfg = cfg;
    j->heartbeat_ms = cfg->heartbeat_ms;
    j->retry_ms = JOIN_RETRY_MS;
    snprintf(j->run, sizeof j->run, "%s", agent_run_id());
    size_t len = 0;
    char *tok = read_file(cfg->join_token_file, sizeof j->token - 1, &len);
    if (!tok) {
        snprintf(err, errlen, "cannot read the token file %s", cfg->join_token_file);
        free(j);
        return NULL;
    }
    while (len && (tok[len - 1] == '\n' || tok[len - 1] == '\r' || tok[len - 1] == ' '))
        tok[--len] = 0;
    memcpy(j->token, tok, len);
    memset(tok, 0, len);
    free(tok);
    if (len < 16) {
        snprintf(err, errlen, "the join token in %s is shorter than 16 characters",
                 cfg->join_token_file);
        agent_join_free(j);
        return NULL;
    }
    for (const char *p = cfg->join_urls; *p;) {
        size_t n = strcspn(p, ",");
        add_url(j, p, n);
        p += n;
        if (*p == ',')
            p++;
    }
    snprintf(j->cluster_json, sizeof j->cluster_json, "%s/cluster.json", cfg->state_dir);
    load_cluster_json(j);
    j->facts = make_facts(cfg, facts, err, errlen);
    j->cpus = (int)json_integer_value(json_object_get(facts, "cpus"));
    j->timer = evtimer_new(base, on_timer, j);
    if (!j->facts || !j->timer || j->nurls == 0) {
        if (j->facts && j->timer)
            snprintf(err, errlen, "no controller URL to join");
        agent_join_free(j);
        return NULL;
    }
    use_url(j, 0);
    schedule(j, 0);
    return j;
}

void agent_join_free(struct agent_join *j)
{
    if (!j)
        return;
    if (j->req)
        hclient_cancel(j->req);
    if (j->hc)
        hclient_free(j->hc);
    if (j->timer)
        event_free(j->timer);
    json_decref(j->facts);
    memset(j->token, 0, sizeof j->token);
    memset(j->credential, 0, sizeof j->credential);
    free(j);
}

const char *agent_join_run(const struct agent_join *j)
{
    return j->run;
}

const char *agent_join_host_id(const struct agent_join *j)
{
    return j->host_id;
}

const char *agent_join_credential(const struct agent_join *j)
{
    return j->credential;
}

const char *agent_join_controller(const struct agent_join *j)
{
    return j->hc ? j->urls[j->cur] : "";
}

bool agent_join_joined(const struct agent_join *j)
{
    return j->joined;
}

void agent_join_on_joined(struct agent_join *j, agent_join_fn fn, void *ctx)
{
    j->on_joined = fn;
    j->on_joined_ctx = ctx;
}

void agent_join_on_renewed(struct agent_join *j, agent_renew_fn fn, void *ctx)
{
    j->on_renewed = fn;
    j->on_renewed_ctx = ctx;
}

size_t agent_join_urls(const struct agent_join *j, const char *urls[], size_t max)
{
    size_t n = 0;
    for (int i = 0; i < j->nurls && n < max; i++)
        urls[n++] = j->urls[i];
    return n;
}
