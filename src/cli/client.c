/*
 * client.c - a small blocking HTTP/1.1 client for yun -> yund: one request
 * per connection (Connection: close) over the Unix socket or TCP. Over TCP
 * --url (or YUN_URL) may list several controllers, A,B,C: the request goes
 * to the one that answered as the leader last, else to each in order; a
 * 503 not_leader naming the leader sends it there, one that cannot be
 * reached sends it to the next, and with several URLs it keeps trying
 * (a failover: a standby taking over) for up to FOLLOW_MS.
 */
#include "cli/cli.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define FOLLOW_MS     20000 /* how long a request looks for a leader among several URLs */
#define CONNECT_MS    3000
#define MAX_URLS      8
#define REPLY_WAIT_MS 5000 /* with several URLs: a controller silent this long is passed over */

static int connect_unix(const char *path, char *err, size_t el)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, el, "socket path too long: %s", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        snprintf(err, el, "cannot reach yund at %s: %s (is yund running?)", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* connect(2) bounded to CONNECT_MS (a cut network does not hang yun); the
 * socket is blocking again after it. 0, or -1 with errno. */
static int connect_wait(int fd, const struct sockaddr *sa, socklen_t len)
{
    if (connect(fd, sa, len) < 0) {
        if (errno != EINPROGRESS)
            return -1;
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int rc = poll(&pfd, 1, CONNECT_MS);
        if (rc == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
            return -1;
        if (soerr) {
            errno = soerr;
            return -1;
        }
    }
    return fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
}

static int connect_tcp(const char *url, char *hostbuf, size_t hl, char *err, size_t el)
{
    if (strncmp(url, "http://", 7)) {
        snprintf(err, el, "--url must start with http://");
        return -1;
    }
    char host[256], port[16] = "80";
    snprintf(host, sizeof(host), "%s", url + 7);
    char *slash = strchr(host, '/');
    if (slash)
        *slash = 0;
    snprintf(hostbuf, hl, "%s", host);
    char *colon = strrchr(host, ':');
    if (colon) {
        snprintf(port, sizeof(port), "%s", colon + 1);
        *colon = 0;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc) {
        snprintf(err, el, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *p = ai; p; p = p->ai_next) {
        fd = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, p->ai_protocol);
        if (fd >= 0 && connect_wait(fd, p->ai_addr, p->ai_addrlen) == 0)
            break;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0)
        snprintf(err, el, "cannot reach yund at %s: %s", url, strerror(errno));
    return fd;
}

/* One request to url (NULL: the Unix socket). 0 with a reply, -1 with err:
 * *unreached says the request never got there (connect failed, or with
 * reply_wait_ms no byte of a reply came in that long). */
static int http_once(const struct cli *c, const char *url, int reply_wait_ms, const char *method,
                     const char *path, const char *body, struct http_resp *r, char *err, size_t el,
                     bool *unreached)
{
    memset(r, 0, sizeof(*r));
    r->next_offset = -1;
    *unreached = false;
    char host[256] = "yund";
    int fd = url ? connect_tcp(url, host, sizeof(host), err, el) : connect_unix(c->socket, err, el);
    if (fd < 0) {
        *unreached = true;
        return -1;
    }
    if (reply_wait_ms > 0) {
        struct timeval tv = {reply_wait_ms / 1000, (reply_wait_ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    }
    size_t blen = body ? strlen(body) : 0;
    char head[1024];
    int n =
        snprintf(head, sizeof(head),
                 "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nUser-Agent: yun\r\n"
                 "Content-Length: %zu\r\n%s%s%s%s\r\n",
                 method, path, host, blen, blen ? "Content-Type: application/json\r\n" : "",
                 c->token[0] ? "Authorization: Bearer " : "", c->token, c->token[0] ? "\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof(head) || send_all(fd, head, (size_t)n) < 0 ||
        (blen && send_all(fd, body, blen) < 0)) {
        snprintf(err, el, "sending request: %s", strerror(errno));
        close(fd);
        return -1;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (len == cap) {
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb)
                break;
            buf = nb;
        }
        ssize_t got = read(fd, buf + len, cap - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && len == 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            snprintf(err, el, "no answer from %s in %d ms", url ? url : c->socket, reply_wait_ms);
            *unreached = true;
            free(buf);
            close(fd);
            return -1;
        }
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    buf[len] = 0;
    char *hend = strstr(buf, "\r\n\r\n");
    if (!hend || sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1) {
        snprintf(err, el, "malformed reply from yund");
        free(buf);
        return -1;
    }
    *hend = 0;
    for (char *line = strstr(buf, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        if (!strncasecmp(line + 2, "X-Yun-Next-Offset:", 18))
            r->next_offset = atoll(line + 2 + 18);
    }
    size_t body_off = (size_t)(hend + 4 - buf);
    r->len = len - body_off;
    r->body = malloc(r->len + 1);
    memcpy(r->body, buf + body_off, r->len);
    r->body[r->len] = 0;
    free(buf);
    return 0;
}

/* The URLs of a comma-separated list, in place; how many. */
static int split_urls(char *list, char **urls)
{
    int n = 0;
    for (char *save = NULL, *u = strtok_r(list, ",", &save); u && n < MAX_URLS;
         u = strtok_r(NULL, ",", &save))
        if (*u)
            urls[n++] = u;
    return n;
}

int cli_connect(const struct cli *c, const char *url, char *host, size_t hl, char *err, size_t el)
{
    if (!url) {
        snprintf(host, hl, "yund");
        return connect_unix(c->socket, err, el);
    }
    return connect_tcp(url, host, hl, err, el);
}

/* "leader" of a 503 not_leader reply (copied to out, "" for null), or
 * false when the reply is something else. */
static bool not_leader(const struct http_resp *r, char *out, size_t len)
{
    if (r->status != 503)
        return false;
    json_t *j = json_loads(r->body, 0, NULL);
    json_t *e = json_object_get(j, "error");
    bool is = e && !strcmp(json_string_value(json_object_get(e, "code")) ?: "", "not_leader");
    snprintf(out, len, "%s", is ? json_string_value(json_object_get(e, "leader")) ?: "" : "");
    json_decref(j);
    return is;
}

int cli_http(const struct cli *c, const char *method, const char *path, const char *body,
             struct http_resp *r, char *err, size_t el)
{
    bool unreached;
    if (!c->url[0])
        return http_once(c, NULL, 0, method, path, body, r, err, el, &unreached);
    /* the leader found by an earlier request of this run goes first */
    static char sticky[256];
    char list[sizeof(c->url)];
    snprintf(list, sizeof(list), "%s", c->url);
    char *urls[MAX_URLS];
    int n = split_urls(list, urls);
    if (n == 0) {
        snprintf(err, el, "--url is empty");
        return -1;
    }
    bool several = n > 1;
    /* long polls are held by the server: no reply timeout for them */
    int wait_ms = several && !strstr(path, "wait") ? REPLY_WAIT_MS : 0;
    int64_t until = monotonic_ms() + (several ? FOLLOW_MS : 0);
    char leader[256] = "", last_err[512] = "";
    bool have_503 = false;
    int hops = 0, follows = 0;
    struct http_resp held = {0};
    /* URLs that could not be reached in this call are passed over (a
     * standby may still name a leader that hangs) until all of them are */
    char bad[MAX_URLS + 2][256];
    int nbad = 0;
    for (;;) {
        /* one round: the sticky or named leader, then each URL */
        char round[MAX_URLS + 2][256];
        int k = 0;
        if (leader[0])
            snprintf(round[k++], sizeof(round[0]), "%s", leader);
        else if (sticky[0])
            snprintf(round[k++], sizeof(round[0]), "%s", sticky);
        for (int i = 0; i < n; i++)
            snprintf(round[k++], sizeof(round[0]), "%s", urls[i]);
        leader[0] = 0;
        int skipped = 0, tried = 0;
        for (int i = 0; i < k; i++) {
            bool dup = false;
            for (int j = 0; j < i; j++)
                dup |= !strcmp(round[i], round[j]);
            for (int j = 0; j < nbad && !dup; j++)
                if (!strcmp(round[i], bad[j])) {
                    dup = true;
                    skipped++;
                }
            if (dup)
                continue;
            tried++;
            if (http_once(c, round[i], wait_ms, method, path, body, r, err, el, &unreached) < 0) {
                if (!unreached)
                    goto give_up; /* it may have run: never sent twice */
                snprintf(last_err, sizeof(last_err), "%s", err);
                if (nbad < MAX_URLS + 2)
                    snprintf(bad[nbad++], sizeof(bad[0]), "%s", round[i]);
                continue;
            }
            char named[256];
            if (!not_leader(r, named, sizeof(named))) {
                snprintf(sticky, sizeof(sticky), "%s", round[i]);
                http_resp_free(&held);
                return 0;
            }
            /* a standby: keep its answer in case no leader is found */
            http_resp_free(&held);
            held = *r;
            have_503 = true;
            bool named_bad = false;
            for (int j = 0; j < nbad; j++)
                named_bad |= !strcmp(named, bad[j]);
            if (named[0] && strcmp(named, round[i]) && !leader[0] && !named_bad) {
                snprintf(leader, sizeof(leader), "%s", named);
                break; /* straight to the leader it names */
            }
        }
        if (skipped && !tried)
            nbad = 0; /* every one was passed over: all are tried again */
        /* a named leader is followed a few hops even past the deadline */
        if (monotonic_ms() >= until && (!leader[0] || ++hops > 3))
            break;
        if (!leader[0])
            cli_sleep_ms(300);
        else if (++follows > 1)
            cli_sleep_ms(100); /* standbys naming each other: not a busy loop */
    }
give_up:
    if (have_503) {
        if (r->body != held.body)
            http_resp_free(r);
        *r = held;
        return 0;
    }
    if (last_err[0] && !err[0])
        snprintf(err, el, "%s", last_err);
    return -1;
}

/* name percent-encoded for a URL path or query; malloc'd. */
char *cli_url_encode(const char *name)
{
    char *enc = malloc(strlen(name) * 3 + 1), *p = enc;
    if (!enc)
        return NULL;
    for (const unsigned char *s = (const unsigned char *)name; *s; s++) {
        if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
            *s == '-' || *s == '_' || *s == '.')
            *p++ = (char)*s;
        else
            p += sprintf(p, "%%%02X", *s);
    }
    *p = 0;
    return enc;
}

void http_resp_free(struct http_resp *r)
{
    free(r->body);
    r->body = NULL;
}

json_t *cli_call(const struct cli *c, const char *method, const char *path, json_t *body,
                 int *exit_code)
{
    char err[512];
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct http_resp r;
    int rc = cli_http(c, method, path, text, &r, err, sizeof(err));
    free(text);
    if (rc < 0) {
        fprintf(stderr, "yun: %s\n", err);
        *exit_code = EXIT_CONN;
        return NULL;
    }
    json_t *j = json_loads(r.body, 0, NULL);
    if (r.status < 200 || r.status > 299) {
        const char *msg =
            json_string_value(json_object_get(json_object_get(j, "error"), "message"));
        fprintf(stderr, "yun: %s\n", msg ? msg : "request failed");
        if (!msg)
            fprintf(stderr, "yun: HTTP %d\n", r.status);
        json_decref(j);
        http_resp_free(&r);
        *exit_code = EXIT_API;
        return NULL;
    }
    http_resp_free(&r);
    if (!j) {
        fprintf(stderr, "yun: yund replied with malformed JSON\n");
        *exit_code = EXIT_API;
    }
    return j;
}

int cli_done(const struct cli *c, json_t *r, const char *fmt, const char *name)
{
    if (c->json)
        cli_print_json(r);
    else
        printf(fmt, name);
    json_decref(r);
    return 0;
}

void cli_print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s) {
        puts(s);
        free(s);
    }
}

void cli_fmt_age(long long s, char *buf, size_t len)
{
    if (s <= 0)
        snprintf(buf, len, "-");
    else if (s < 120)
        snprintf(buf, len, "%llds", s);
    else if (s < 7200)
        snprintf(buf, len, "%lldm", s / 60);
    else if (s < 172800)
        snprintf(buf, len, "%lldh", s / 3600);
    else
        snprintf(buf, len, "%lldd", s / 86400);
}

void cli_fmt_time(long long ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

void cli_fmt_bytes(long long b, char *buf, size_t len)
{
    const char *u = "BKMGTP";
    double v = (double)b;
    int i = 0;
    while (v >= 1024 && i < 5) {
        v /= 1024;
        i++;
    }
    if (i == 0)
        snprintf(buf, len, "%lldB", b);
    else
        snprintf(buf, len, v < 10 && v != (double)(long long)v ? "%.1f%c" : "%.0f%c", v, u[i]);
}

void cli_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}
