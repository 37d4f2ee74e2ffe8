/*
 * notify.c - the notification worker thread.
 *
 * The loop thread queues jobs under a mutex; the worker takes one, tries it
 * up to cfg.retries times with exponential backoff, and after each attempt
 * pushes a result and writes one byte to a pipe that the loop watches.
 */
#include "monitor/notify.h"

#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct job {
    struct job *next;
    char channel[256];
    char rule[64];
    char *json, *subject, *text;
};

struct result {
    struct result *next;
    char channel[256];
    char rule[64];
    int attempt;
    bool ok, final;
    char detail[256];
};

struct notifier {
    struct notify_config cfg;
    notify_result_cb cb;
    void *ctx;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    struct job *head, *tail;
    struct result *results, *results_tail;
    int pipe_r, pipe_w;
    struct event *ev;
};

static void job_free(struct job *j)
{
    free(j->json);
    free(j->subject);
    free(j->text);
    free(j);
}

static void push_result(struct notifier *n, const struct job *j, int attempt, bool ok, bool final,
                        const char *detail)
{
    struct result *r = calloc(1, sizeof(*r));
    if (!r)
        return;
    snprintf(r->channel, sizeof(r->channel), "%s", j->channel);
    snprintf(r->rule, sizeof(r->rule), "%s", j->rule);
    r->attempt = attempt;
    r->ok = ok;
    r->final = final;
    snprintf(r->detail, sizeof(r->detail), "%s", detail);
    pthread_mutex_lock(&n->mu);
    if (n->results_tail)
        n->results_tail->next = r;
    else
        n->results = r;
    n->results_tail = r;
    pthread_mutex_unlock(&n->mu);
    (void)!write(n->pipe_w, "r", 1);
}

/* ---- the three transports ---- */

struct upload {
    const char *data;
    size_t len, off;
};

static size_t read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
    struct upload *u = arg;
    size_t room = size * nitems, left = u->len - u->off;
    size_t n = left < room ? left : room;
    memcpy(buf, u->data + u->off, n);
    u->off += n;
    return n;
}

static size_t discard_cb(char *p, size_t s, size_t n, void *arg)
{
    return s * n;
}

static bool http_post(struct notifier *n, const char *url, const char *body, const char *ctype,
                      char *detail, size_t dlen)
{
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(detail, dlen, "curl_easy_init failed");
        return false;
    }
    struct curl_slist *h = NULL;
    char ct[128];
    snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
    h = curl_slist_append(h, ct);
    h = curl_slist_append(h, "User-Agent: yund");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)n->cfg.timeout_s);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_cb);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        snprintf(detail, dlen, "%s", curl_easy_strerror(rc));
        return false;
    }
    snprintf(detail, dlen, "HTTP %ld", status);
    return status >= 200 && status < 300;
}

static bool send_email(struct notifier *n, const struct job *j, const char *to, char *detail,
                       size_t dlen)
{
    if (!n->cfg.smtp_url[0]) {
        snprintf(detail, dlen, "smtp_url is not configured");
        return false;
    }
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    const char *from = n->cfg.smtp_from[0] ? n->cfg.smtp_from : "yund@localhost";
    char *msg = NULL;
    if (asprintf(&msg,
                 "Date: %s\r\nFrom: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%ld.%d@yund>\r\n"
                 "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n",
                 date, from, to, j->subject ? j->subject : "yun alert", (long)now, (int)getpid(),
                 j->text ? j->text : "") < 0) {
        snprintf(detail, dlen, "out of memory");
        return false;
    }
    CURL *c = curl_easy_init();
    struct curl_slist *rcpt = curl_slist_append(NULL, to);
    struct upload up = {msg, strlen(msg), 0};
    char from_addr[160];
    snprintf(from_addr, sizeof(from_addr), "<%s>", from);
    curl_easy_setopt(c, CURLOPT_URL, n->cfg.smtp_url);
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, from_addr);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(c, CURLOPT_READDATA, &up);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)n->cfg.timeout_s);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(c, CURLOPT_USE_SSL,
                     n->cfg.smtp_starttls ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_NONE);
    if (n->cfg.smtp_user[0]) {
        curl_easy_setopt(c, CURLOPT_USERNAME, n->cfg.smtp_user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, n->cfg.smtp_password);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(c);
    free(msg);
    snprintf(detail, dlen, "%s",
             rc == CURLE_OK ? "accepted by SMTP server" : curl_easy_strerror(rc));
    return rc == CURLE_OK;
}

static void append_escaped(char **out, size_t *len, size_t *cap, const char *s, bool json)
{
    for (; *s; s++) {
        char tmp[8];
        const char *piece = tmp;
        unsigned char ch = (unsigned char)*s;
        if (json) {
            if (ch == '"' || ch == '\\')
                snprintf(tmp, sizeof(tmp), "\\%c", ch);
            else if (ch < 0x20)
                snprintf(tmp, sizeof(tmp), "\\u%04x", ch);
            else
                snprintf(tmp, sizeof(tmp), "%c", ch);
        } else {
            if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                ch == '-' || ch == '_' || ch == '.' || ch == '~')
                snprintf(tmp, sizeof(tmp), "%c", ch);
            else
                snprintf(tmp, sizeof(tmp), "%%%02X", ch);
        }
        size_t pl = strlen(piece);
        if (*len + pl + 1 > *cap) {
            *cap = (*cap + pl + 1) * 2;
            *out = realloc(*out, *cap);
        }
        memcpy(*out + *len, piece, pl);
        *len += pl;
        (*out)[*len] = 0;
    }
}

char *notify_sms_body(const char *tmpl, const char *to, const char *message)
{
    bool json = tmpl[0] == '{';
    size_t cap = strlen(tmpl) + 64, len = 0;
    char *out = calloc(1, cap);
    for (const char *p = tmpl; *p;) {
        const char *val = NULL;
        size_t skip = 1;
        if (!strncmp(p, "{to}", 4)) {
            val = to;
            skip = 4;
        } else if (!strncmp(p, "{message}", 9)) {
            val = message;
            skip = 9;
        }
        if (val) {
            append_escaped(&out, &len, &cap, val, json);
        } else {
            if (len + 2 > cap) {
                cap *= 2;
                out = realloc(out, cap);
            }
            out[len++] = *p;
            out[len] = 0;
        }
        p += skip;
    }
    return out;
}

static bool deliver(struct notifier *n, const struct job *j, char *detail, size_t dlen)
{
    if (!strncmp(j->channel, "webhook:", 8))
        return http_post(n, j->channel + 8, j->json ? j->json : "{}", "application/json", detail,
                         dlen);
    if (!strncmp(j->channel, "email:", 6))
        return send_email(n, j, j->channel + 6, detail, dlen);
    if (!strncmp(j->channel, "sms:", 4)) {
        if (!n->cfg.sms_url[0]) {
            snprintf(detail, dlen, "sms_url is not configured");
            return false;
        }
        const char *tmpl = n->cfg.sms_body[0] ? n->cfg.sms_body : "to={to}&message={message}";
        char *body = notify_sms_body(tmpl, j->channel + 4, j->text ? j->text : "");
        bool ok =
            http_post(n, n->cfg.sms_url, body,
                      tmpl[0] == '{' ? "application/json" : "application/x-www-form-urlencoded",
                      detail, dlen);
        free(body);
        return ok;
    }
    snprintf(detail, dlen, "unknown channel type");
    return false;
}

static void *worker(void *arg)
{
    struct notifier *n = arg;
    bool curl_ready = false;
    pthread_mutex_lock(&n->mu);
    for (;;) {
        while (!n->head && !n->stopping)
            pthread_cond_wait(&n->cv, &n->mu);
        if (n->stopping)
            break;
        struct job *j = n->head;
        n->head = j->next;
        if (!n->head)
            n->tail = NULL;
        pthread_mutex_unlock(&n->mu);
        /* libcurl (and its TLS library) are set up on first use, on this
         * thread, the only one that uses curl: a yund that never notifies
         * never pays their memory. */
        if (!curl_ready)
            curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
        int delay = n->cfg.backoff_ms;
        bool stop = false;
        for (int attempt = 1; attempt <= n->cfg.retries && !stop; attempt++) {
            char detail[256];
            bool ok = deliver(n, j, detail, sizeof(detail));
            bool final = ok || attempt == n->cfg.retries;
            push_result(n, j, attempt, ok, final, detail);
            if (final)
                break;
            /* Back off, but wake at once when yund stops. */
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += delay / 1000;
            until.tv_nsec += (long)(delay % 1000) * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_mutex_lock(&n->mu);
            while (!n->stopping && pthread_cond_timedwait(&n->cv, &n->mu, &until) != ETIMEDOUT)
                ;
            stop = n->stopping;
            pthread_mutex_unlock(&n->mu);
            delay *= 2;
        }
        job_free(j);
        pthread_mutex_lock(&n->mu);
    }
    pthread_mutex_unlock(&n->mu);
    if (curl_ready)
        curl_global_cleanup();
    return NULL;
}

static void drain_results(evutil_socket_t fd, short what, void *arg)
{
    struct notifier *n = arg;
    char buf[256];
    while (read(n->pipe_r, buf, sizeof(buf)) > 0)
        ;
    pthread_mutex_lock(&n->mu);
    struct result *r = n->results;
    n->results = n->results_tail = NULL;
    pthread_mutex_unlock(&n->mu);
    while (r) {
        struct result *next = r->next;
        if (n->cb)
            n->cb(n->ctx, r->channel, r->rule, r->attempt, r->ok, r->final, r->detail);
        free(r);
        r = next;
    }
}

struct notifier *notifier_start(struct event_base *base, const struct notify_config *cfg,
                                notify_result_cb cb, void *ctx)
{
    struct notifier *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->cfg = *cfg;
    if (n->cfg.retries < 1)
        n->cfg.retries = 1;
    if (n->cfg.timeout_s < 1)
        n->cfg.timeout_s = 10;
    n->cb = cb;
    n->ctx = ctx;
    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
        free(n);
        return NULL;
    }
    n->pipe_r = p[0];
    n->pipe_w = p[1];
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->cv, NULL);
    n->ev = event_new(base, n->pipe_r, EV_READ | EV_PERSIST, drain_results, n);
    event_add(n->ev, NULL);
    if (pthread_create(&n->thread, NULL, worker, n) != 0) {
        event_free(n->ev);
        close(p[0]);
        close(p[1]);
        free(n);
        return NULL;
    }
    return n;
}

void notifier_stop(struct notifier *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->mu);
    n->stopping = true;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
    pthread_join(n->thread, NULL);
    drain_results(n->pipe_r, 0, n);
    for (struct job *j = n->head, *next; j; j = next) {
        next = j->next;
        if (n->cb)
            n->cb(n->ctx, j->channel, j->rule, 0, false, true, "yund stopped before delivery");
        job_free(j);
    }
    event_free(n->ev);
    close(n->pipe_r);
    close(n->pipe_w);
    pthread_mutex_destroy(&n->mu);
    pthread_cond_destroy(&n->cv);
    free(n);
}

int notifier_send(struct notifier *n, const char *channel, const char *rule, const char *json,
                  const char *subject, const char *text)
{
    struct job *j = calloc(1, sizeof(*j));
    if (!j)
        return -1;
    snprintf(j->channel, sizeof(j->channel), "%s", channel);
    snprintf(j->rule, sizeof(j->rule), "%s", rule);
    j->json = json ? strdup(json) : NULL;
    j->subject = subject ? strdup(subject) : NULL;
    j->text = text ? strdup(text) : NULL;
    pthread_mutex_lock(&n->mu);
    if (n->tail)
        n->tail->next = j;
    else
        n->head = j;
    n->tail = j;
    pthread_cond_signal(&n->cv);
    pthread_mutex_unlock(&n->mu);
    return 0;
}
