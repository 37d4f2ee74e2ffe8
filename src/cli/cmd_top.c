/*
 * cmd_top.c - `yun top` (a live view of every host and the VMs with their
 * host, busiest first, refreshed every interval; q quits; -o json prints
 * /v1/stats instead) and `yun vm stats NAME`.
 */
#include "cli/cli.h"
#include "lib/util.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static double num(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : 0;
}

static int by_cpu(const void *a, const void *b)
{
    double x = num(*(json_t *const *)a, "cpu"), y = num(*(json_t *const *)b, "cpu");
    return x < y ? 1 : x > y ? -1 : 0;
}

static void render(json_t *s, int rows)
{
    json_t *h = json_object_get(s, "host");
    char used[16], avail[16];
    cli_fmt_bytes((long long)num(h, "mem_used"), used, sizeof(used));
    cli_fmt_bytes((long long)num(h, "mem_available"), avail, sizeof(avail));
    json_t *vms = json_object_get(s, "vms");
    size_t n = json_array_size(vms), running = 0;
    json_t **sorted = calloc(n ? n : 1, sizeof(*sorted));
    for (size_t i = 0; i < n; i++) {
        sorted[i] = json_array_get(vms, i);
        running += !strcmp(json_string_value(json_object_get(sorted[i], "state")), "running");
    }
    qsort(sorted, n, sizeof(*sorted), by_cpu);
    printf("\033[H\033[2Jyun top - %s   cpu %5.1f%%   load %.2f   mem %s used, %s free   yund "
           "%.1f%%\n",
           json_string_value(json_object_get(s, "hostname")), num(h, "cpu"), num(h, "load1"), used,
           avail, num(json_object_get(s, "yund"), "cpu"));
    /* every host of the cluster (one line each) */
    json_t *hosts = json_object_get(s, "hosts");
    size_t nh = json_array_size(hosts);
    printf("\033[7m%-20s %7s %7s %10s %10s %10s %10s\033[0m\n", "HOST", "CPU%", "LOAD", "MEM USED",
           "MEM FREE", "NET RX/s", "NET TX/s");
    for (size_t i = 0; i < nh; i++) {
        json_t *o = json_array_get(hosts, i);
        char mu[16], ma[16], rx[16], tx[16];
        cli_fmt_bytes((long long)num(o, "mem_used"), mu, sizeof(mu));
        cli_fmt_bytes((long long)num(o, "mem_available"), ma, sizeof(ma));
        cli_fmt_bytes((long long)num(o, "net_rx_bps"), rx, sizeof(rx));
        cli_fmt_bytes((long long)num(o, "net_tx_bps"), tx, sizeof(tx));
        const char *hn = json_string_value(json_object_get(o, "name"));
        printf("%-20s %6.1f%% %7.2f %10s %10s %10s %10s\n", hn ? hn : "?", num(o, "cpu"),
               num(o, "load1"), mu, ma, rx, tx);
    }
    printf("\nvms: %zu, %zu running        q quits\n\n", n, running);
    printf("\033[7m%-20s %-12s %-9s %4s %7s %6s %8s %10s %10s %8s\033[0m\n", "NAME", "HOST",
           "STATE", "CPUS", "CPU%", "WAIT", "RSS", "DISK R/s", "DISK W/s", "UPTIME");
    for (size_t i = 0; i < n && (int)i < rows - 7 - (int)nh; i++) {
        json_t *v = sorted[i];
        char rss[16], rd[16], wr[16], up[16];
        cli_fmt_bytes((long long)num(v, "mem_rss"), rss, sizeof(rss));
        cli_fmt_bytes((long long)num(v, "disk_read_bps"), rd, sizeof(rd));
        cli_fmt_bytes((long long)num(v, "disk_write_bps"), wr, sizeof(wr));
        cli_fmt_age((long long)num(v, "uptime_s"), up, sizeof(up));
        const char *vh = json_string_value(json_object_get(v, "host"));
        printf("%-20s %-12s %-9s %4lld %6.1f%% %5.1f%% %8s %10s %10s %8s\n",
               json_string_value(json_object_get(v, "name")), vh ? vh : "",
               json_string_value(json_object_get(v, "state")), (long long)num(v, "cpus"),
               num(v, "cpu"), num(v, "cpu_wait"), rss, rd, wr, up);
    }
    fflush(stdout);
    free(sorted);
}

static int top(struct cli *c, const struct cli_args *a)
{
    uint64_t interval = 2, iterations = 0;
    const char *d = cli_val(a, "delay"), *n = cli_val(a, "iterations");
    if (d && parse_u64(d, 1, 3600, &interval) < 0) {
        fprintf(stderr, "yun: -d must be 1..3600 seconds, not '%s'\n", d);
        return EXIT_USAGE;
    }
    if (n && parse_u64(n, 0, 1000000, &iterations) < 0) {
        fprintf(stderr, "yun: -n must be 0..1000000 (0 = until q), not '%s'\n", n);
        return EXIT_USAGE;
    }
    bool tty = isatty(0);
    struct termios saved, raw;
    if (tty) {
        tcgetattr(0, &saved);
        raw = saved;
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        tcsetattr(0, TCSANOW, &raw);
        printf("\033[?25l"); /* hide the cursor */
    }
    int rc = 0;
    for (uint64_t it = 0; iterations == 0 || it < iterations; it++) {
        int code = 0;
        json_t *s = cli_call(c, "GET", "/v1/stats", NULL, &code);
        if (!s) {
            rc = code;
            break;
        }
        if (c->json) /* -o json: the figures as the API has them, one object a pass */
            cli_print_json(s);
        else
            render(s, 40);
        json_decref(s);
        if (iterations && it + 1 == iterations)
            break;
        struct pollfd pf = {0, POLLIN, 0};
        if (poll(&pf, 1, (int)interval * 1000) > 0) {
            char ch = 0;
            if (read(0, &ch, 1) <= 0 || ch == 'q' || ch == 'Q')
                break;
        }
    }
    if (tty) {
        printf("\033[?25h\n");
        tcsetattr(0, TCSANOW, &saved);
    }
    return rc;
}

int vm_stats(struct cli *c, const char *name)
{
    char path[600], *enc = cli_url_encode(name);
    snprintf(path, sizeof(path), "/v1/vms/%s/metrics", enc ? enc : "");
    free(enc);
    int code = 0;
    json_t *r = cli_call(c, "GET", path, NULL, &code);
    if (!r)
        return code;
    if (c->json) {
        cli_print_json(r);
    } else {
        json_t *m = json_object_get(r, "metrics");
        if (json_object_size(m) == 0)
            printf("no samples yet for %s (is it running?)\n", name);
        const char *k;
        json_t *v;
        json_object_foreach(m, k, v)
        {
            double x = json_number_value(v);
            char b[16];
            if (strstr(k, "bps") || !strcmp(k, "mem_rss") || !strcmp(k, "balloon")) {
                cli_fmt_bytes((long long)x, b, sizeof(b));
                printf("%-16s %s%s\n", k, b, strstr(k, "bps") ? "/s" : "");
            } else {
                printf("%-16s %.2f%s\n", k, x, !strncmp(k, "cpu", 3) ? "%" : "");
            }
        }
    }
    json_decref(r);
    return 0;
}

const struct cli_cmd cmd_top_entries[] = {
    {.words = "top",
     .summary = "live view of the host and VMs, busiest first (q quits)",
     .opts =
         (const struct cli_opt[]){
             {"delay", 'd', "SECONDS", CLI_K_TEXT, NULL, 0, "refresh every SECONDS (2)"},
             {"iterations", 'n', "N", CLI_K_TEXT, NULL, 0, "stop after N screens (0: until q)"},
             {0}},
     .run = top},
    {0},
};
