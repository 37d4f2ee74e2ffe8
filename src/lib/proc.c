/*
 * proc.c - fork/exec of helper programs with captured output and a deadline.
 * No shell is ever involved, so names and paths from users cannot inject.
 */
#include "lib/proc.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CAP (1 << 20)

struct sink {
    char *buf;
    size_t len;
};

static void sink_read(int fd, struct sink *s, int *open_flag)
{
    char tmp[8192];
    ssize_t n = read(fd, tmp, sizeof(tmp));
    if (n <= 0) {
        if (n == 0 || (errno != EINTR && errno != EAGAIN))
            *open_flag = 0;
        return;
    }
    size_t take = (size_t)n;
    if (s->len + take > CAP)
        take = CAP - s->len;
    if (take) {
        char *nb = realloc(s->buf, s->len + take + 1);
        if (!nb)
            return;
        s->buf = nb;
        memcpy(s->buf + s->len, tmp, take);
        s->len += take;
        s->buf[s->len] = 0;
    }
}

int proc_run(char *const argv[], int timeout_ms, struct proc_result *res)
{
    return proc_run_ex(argv, timeout_ms, res, NULL, NULL);
}

int proc_run_ex(char *const argv[], int timeout_ms, struct proc_result *res,
                int (*pre_exec)(void *arg), void *arg)
{
    memset(res, 0, sizeof(*res));
    res->status = -1;
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) < 0)
        return -1;
    if (pipe2(pe, O_CLOEXEC) < 0) {
        close(po[0]);
        close(po[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(po[0]);
        close(po[1]);
        close(pe[0]);
        close(pe[1]);
        return -1;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(po[1], 1);
        dup2(pe[1], 2);
        /* A fresh process group so a timeout can kill helpers it spawned too. */
        setpgid(0, 0);
        signal(SIGPIPE, SIG_DFL);
        if (pre_exec && pre_exec(arg) != 0)
            _exit(126);
        execvp(argv[0], argv);
        const char *m = "exec failed: ";
        (void)!write(2, m, strlen(m));
        (void)!write(2, argv[0], strlen(argv[0]));
        (void)!write(2, "\n", 1);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    struct sink so = {0}, se = {0};
    int open_o = 1, open_e = 1;
    int64_t deadline = monotonic_ms() + timeout_ms;
    while (open_o || open_e) {
        struct pollfd pf[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
        int64_t left = deadline - monotonic_ms();
        if (left <= 0) {
            res->timed_out = 1;
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            break;
        }
        int n = poll(pf, 2, (int)left);
        if (n < 0 && errno != EINTR)
            break;
        if (n <= 0)
            continue;
        if (open_o && (pf[0].revents & (POLLIN | POLLHUP | POLLERR)))
            sink_read(po[0], &so, &open_o);
        if (open_e && (pf[1].revents & (POLLIN | POLLHUP | POLLERR)))
            sink_read(pe[0], &se, &open_e);
    }
    close(po[0]);
    close(pe[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    res->out = so.buf;
    res->err = se.buf;
    if (WIFEXITED(st))
        res->status = WEXITSTATUS(st);
    else if (WIFSIGNALED(st))
        res->status = 128 + WTERMSIG(st);
    return res->status;
}

void proc_result_free(struct proc_result *res)
{
    free(res->out);
    free(res->err);
    res->out = res->err = NULL;
}

void proc_last_line(const char *text, char *buf, size_t len)
{
    buf[0] = 0;
    if (!text)
        return;
    const char *end = text + strlen(text);
    while (end > text && (end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\r'))
        end--;
    const char *start = end;
    while (start > text && start[-1] != '\n')
        start--;
    size_t n = (size_t)(end - start);
    if (n >= len)
        n = len - 1;
    memcpy(buf, start, n);
    buf[n] = 0;
}
