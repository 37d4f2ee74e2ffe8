/*
 * main.c - yund: wiring only. Parses flags and the config file, takes the
 * state-directory lock (one yund per state dir), then runs its role
 * (daemon.h: all-in-one, controller or agent) until SIGTERM/SIGINT. VMs
 * are left running on exit.
 */
#include "daemon/daemon.h"
#include "daemon/opts.h"
#include "daemon/sdnotify.h"
#include "lib/version.h"
#include "lib/failpoint.h"
#include "agent/agent_local.h"
#include "api/api.h"
#include "compute/engine.h"
#include "ctl/tasks_engine.h"
#include "lib/job.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/util.h"
#include "monitor/monitor.h"
#include "store/store.h"

#include <errno.h>
#include <malloc.h>
#include <event2/event.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    log_info("signal %d: stopping (VMs keep running)", (int)sig);
    event_base_loopexit(arg, NULL);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    sd_notify_send("RELOADING=1");
    log_reopen();
    log_info("SIGHUP: log file reopened");
    sd_notify_send("READY=1");
}

void daemon_signals_add(struct event_base *base, struct event *ev[3])
{
    ev[0] = evsignal_new(base, SIGTERM, on_signal, base);
    ev[1] = evsignal_new(base, SIGINT, on_signal, base);
    ev[2] = evsignal_new(base, SIGHUP, on_hup, NULL);
    for (int i = 0; i < 3; i++)
        if (ev[i])
            event_add(ev[i], NULL);
}

void daemon_signals_free(struct event *ev[3])
{
    for (int i = 0; i < 3; i++)
        if (ev[i])
            event_free(ev[i]);
}

void daemon_drain(struct event_base *base)
{
    /* Helpers still running (a copy) are ended and their operations rolled
     * back (their tasks fail) before yund goes; bounded to 3 s. */
    job_kill_all();
    int64_t until = monotonic_ms() + 3000;
    while (job_count() > 0 && monotonic_ms() < until) {
        struct timeval tick = {0, 100 * 1000};
        event_base_loopexit(base, &tick);
        event_base_loop(base, EVLOOP_ONCE);
    }
    for (int i = 0; i < 4; i++)
        event_base_loop(base, EVLOOP_NONBLOCK); /* the agent's replies */
}

static int take_lock(const char *state_dir)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/yund.lock", state_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        close(fd);
        errno = EWOULDBLOCK;
        return -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) == 0)
        (void)!write(fd, pid, (size_t)n);
    return fd;
}

/* Makes the state directory 0700; *old_mode is its previous mode when that
 * let anyone else in (0 when it was already private). */
static int tighten_state_dir(const char *dir, mode_t *old_mode)
{
    struct stat st;
    if (stat(dir, &st) < 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    if (!(st.st_mode & 077))
        return 0;
    if (chmod(dir, 0700) < 0)
        return -1;
    *old_mode = st.st_mode & 07777;
    return 0;
}

/* Every API connection, VM socket and log file is a descriptor; the usual
 * soft limit of 1024 is far below what a host with many VMs and clients
 * needs, and raising it to the hard limit needs no privilege. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rlim_t old = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        log_warn("cannot raise the open files limit from %llu: %s", (unsigned long long)old,
                 strerror(errno));
    else
        log_info("open files limit raised from %llu to %llu", (unsigned long long)old,
                 (unsigned long long)rl.rlim_max);
}

int main(int argc, char **argv)
{
    /* The state holds guests' disks, their consoles and the database: what
     * yund and its helpers create is for yund's user alone (the API socket sets its
     * own 0660 mode), and the directory itself is 0700. */
    umask(077);
    /* Large arrays (a pass's rows, a long list's reply) are mapped and given
     * back to the system when freed: a fixed threshold, since glibc's
     * sliding one would move them into the heap, where a pass over
     * thousands of rows every few seconds left yund's RSS twice its size. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    struct yun_config cfg;
    config_defaults(&cfg);
    char err[512];
    const char *env = getenv("YUN_STATE_DIR");
    if (env && config_set(&cfg, "state_dir", env, err, sizeof(err)) < 0) {
        fprintf(stderr, "yund: YUN_STATE_DIR: %s\n", err);
        return 2;
    }
    const char *role = NULL, *join = NULL, *token_file = NULL;
    const char *config_file = NULL, *store_spec = NULL;
    char *sets[64];
    int nsets = 0, daemon_mode = 0, verbose = 0, c;
    while ((c = getopt_long(argc, argv, yund_getopt_short(), yund_getopt_long(), NULL)) != -1) {
        switch (c) {
        case 's':
            if (config_set(&cfg, "state_dir", optarg, err, sizeof(err)) < 0) {
                fprintf(stderr, "yund: %s\n", err);
                return 2;
            }
            break;
        case 'c':
            config_file = optarg;
            break;
        case 'o':
            if (nsets == 64) {
                fprintf(stderr, "yund: too many --set\n");
                return 2;
            }
            sets[nsets++] = optarg;
            break;
        case 'd':
            daemon_mode = 1;
            break;
        case 'v':
            verbose = 1;
            break;
        case 'h':
            yund_usage(stdout);
            return 0;
        case 'V':
            printf("yund %s (commit %s, protocol %d)\n", yun_version(), yun_commit(), YUN_PROTOCOL);
            return 0;
        case 'M':
            yund_man(stdout);
            return 0;
        case 'S': /* after the config file and --set, like them validated */
            store_spec = optarg;
            break;
        case 'r': /* like --store: applied after the config file and --set */
            role = optarg;
            break;
        case 'j':
            join = optarg;
            break;
        case 't':
            token_file = optarg;
            break;
        case 'F': /* the crash points compiled in (sanitizer build), for tests */
            return failpoint_list(stdout) < 0 ? 1 : 0;
        case 'R': /* the route table (--routes=json: as JSON), for docs and tests */
            if (optarg && strcmp(optarg, "json")) {
                fprintf(stderr, "yund: --routes takes nothing or =json\n");
                return 2;
            }
            return route_table_print(stdout, optarg != NULL) < 0 ? 1 : 0;
        default:
            yund_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "yund: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    char default_conf[512];
    snprintf(default_conf, sizeof(default_conf), "%s/yund.conf", cfg.state_dir);
    if (!config_file && path_exists(default_conf))
        config_file = default_conf;
    if (config_file && config_load_file(&cfg, config_file, err, sizeof(err)) < 0) {
        fprintf(stderr, "yund: %s\n", err);
        return 2;
    }
    for (int i = 0; i < nsets; i++) {
        char *eq = strchr(sets[i], '=');
        if (!eq) {
            fprintf(stderr, "yund: --set takes KEY=VALUE, not '%s'\n", sets[i]);
            return 2;
        }
        *eq = 0;
        if (config_set(&cfg, sets[i], eq + 1, err, sizeof(err)) < 0) {
            fprintf(stderr, "yund: %s\n", err);
            return 2;
        }
    }
    if (store_spec && config_set(&cfg, "store", store_spec, err, sizeof(err)) < 0) {
        fprintf(stderr, "yund: %s\n", err);
        return 2;
    }
    if ((role && config_set(&cfg, "role", role, err, sizeof(err)) < 0) ||
        (join && config_set(&cfg, "join", join, err, sizeof(err)) < 0) ||
        (token_file && config_set(&cfg, "join_token_file", token_file, err, sizeof(err)) < 0)) {
        fprintf(stderr, "yund: %s\n", err);
        return 2;
    }
    if (verbose)
        snprintf(cfg.log_level, sizeof(cfg.log_level), "debug");
    if (config_finish(&cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "yund: %s\n", err);
        return 2;
    }
    if (mkdir_p(cfg.state_dir, 0700) < 0) {
        fprintf(stderr, "yund: cannot create %s: %s\n", cfg.state_dir, strerror(errno));
        return 1;
    }
    mode_t old_mode = 0;
    if (tighten_state_dir(cfg.state_dir, &old_mode) < 0) {
        fprintf(stderr, "yund: %s: %s\n", cfg.state_dir, strerror(errno));
        return 1;
    }
    int lock = take_lock(cfg.state_dir);
    if (lock < 0) {
        fprintf(stderr, "yund: %s: %s\n", cfg.state_dir,
                errno == EWOULDBLOCK ? "another yund is running on this state directory"
                                     : strerror(errno));
        return 1;
    }
    if (daemon_mode) {
        if (!cfg.log_file[0])
            snprintf(cfg.log_file, sizeof(cfg.log_file), "%s/yund.log", cfg.state_dir);
        if (daemon(0, 0) < 0) {
            fprintf(stderr, "yund: daemon: %s\n", strerror(errno));
            return 1;
        }
        /* The lock belongs to the child now; rewrite the pid in it. */
        char pid[32];
        int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
        if (ftruncate(lock, 0) == 0)
            (void)!pwrite(lock, pid, (size_t)n, 0);
    }
    enum log_level lvl = LOG_INFO;
    log_level_parse(cfg.log_level, &lvl);
    log_init(lvl, cfg.log_file, cfg.log_max_size);
    if (old_mode)
        log_warn("state directory %s was mode %04o: now 0700, its files are yund's alone",
                 cfg.state_dir, (unsigned)old_mode);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();

    int rc;
    if (!strcmp(cfg.role, "controller"))
        rc = role_controller(&cfg);
    else if (!strcmp(cfg.role, "agent"))
        rc = role_agent(&cfg);
    else
        rc = role_all(&cfg);
    log_close();
    close(lock);
    return rc;
}
