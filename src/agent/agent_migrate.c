/*
 * agent_migrate.c - the host's own part of a live migration that vm.launch
 * and vm.qmp do not cover: free TCP ports on the agent's address for the
 * incoming QEMU's NBD server and its migration stream. The controller
 * (ctl/migrate*.c) drives every QMP step through vm.qmp; the incoming QEMU
 * is vm.launch with "incoming": true (agent_launch.c: -incoming defer, no
 * cont). No store access.
 *
 *   host.ports {"count": 1..4} -> {"address": "A.B.C.D", "ports": [p, ...]}
 *              each port bound (port 0: the kernel picks) on the agent's
 *              address, read back and closed: free a moment ago, so several
 *              yunds on one machine never collide on a fixed number. The
 *              caller hands them to QEMU at once; a port taken meanwhile
 *              makes that QMP command fail, and the migration rolls back.
 *   vm.seed_read {"vm"} -> {"iso_b64", "size"}
 *              the VM's cloud-init seed ISO as it is (at most SEED_MAX
 *              bytes: a few hundred KiB in practice, read at once), which
 *              the target's vm.prepare writes back byte for byte: the guest
 *              may hold blocks of it in its page cache, so the target's copy
 *              must be the same bytes, not a new ISO of the same data.
 *   vm.disk_reclaim {"vm", "disk_dir"} -> {"uid"}
 *              a disk on a shared pool (POOL/vms/ID) given back to the uid
 *              the VM's QEMU runs as on this host: a move's target was
 *              given it before the switchover (its QEMU opens it by name),
 *              and when the move rolls back the source's QEMU, still
 *              running, must own it again (snapshots and merges open its
 *              layers by name). Only a QEMU this agent watches counts.
 */
#include "agent/agent_local.h"
#include "compute/confine.h"
#include "compute/engine.h"
#include "compute/qemu_argv.h"
#include "lib/base64.h"
#include "lib/config.h"
#include "lib/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define PORTS_MAX 4
#define SEED_MAX  (4 << 20)

void agent_own_address(const struct yun_config *cfg, char *out, size_t len)
{
    const char *colon = strrchr(cfg->agent_listen, ':');
    if (cfg->agent_address[0])
        snprintf(out, len, "%s", cfg->agent_address);
    else
        snprintf(out, len, "%.*s", colon ? (int)(colon - cfg->agent_listen) : 0, cfg->agent_listen);
    struct in_addr a;
    if (!out[0] || !strcmp(out, "0.0.0.0") || inet_pton(AF_INET, out, &a) != 1)
        snprintf(out, len, "127.0.0.1");
}

int agent_bind_any(const char *addr, int *port, char *why, size_t len)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || inet_pton(AF_INET, addr, &sa.sin_addr) != 1 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
        snprintf(why, len, "agent: no free port on %s: %s", addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

static void host_ports(struct agent_local *al, struct agent_op *op, json_t *args)
{
    json_t *cj = json_object_get(args, "count");
    json_int_t count = cj ? json_integer_value(cj) : 1;
    if ((cj && !json_is_integer(cj)) || count < 1 || count > PORTS_MAX) {
        agent_op_fail(op, YE_INVALID_ARGUMENT, "agent: host.ports takes a count of 1..%d",
                      PORTS_MAX);
        return;
    }
    char addr[64], why[256] = "";
    agent_own_address(al->cfg, addr, sizeof addr);
    int fds[PORTS_MAX], n = 0;
    json_t *ports = json_array();
    for (; n < count; n++) {
        int p = 0;
        if ((fds[n] = agent_bind_any(addr, &p, why, sizeof why)) < 0)
            break;
        json_array_append_new(ports, json_integer(p));
    }
    for (int i = 0; i < n; i++)
        close(fds[i]);
    if (n < count) {
        json_decref(ports);
        agent_op_fail(op, YE_UNAVAILABLE, "%s", why);
        return;
    }
    agent_op_reply(op, json_pack("{s:s,s:o}", "address", addr, "ports", ports), NULL);
}

static void vm_seed_read(struct agent_local *al, struct agent_op *op, json_t *args)
{
    struct engine *e = agent_op_host(al, op);
    const char *id = e ? agent_op_vm_id(op, args) : NULL;
    if (!id)
        return;
    struct vm_rec probe = {0};
    char path[600];
    snprintf(probe.id, sizeof probe.id, "%s", id);
    if (engine_vm_path(e, &probe, VMDIR_SEED, path, sizeof path) < 0) {
        agent_op_fail(op, YE_INTERNAL, "path too long");
        return;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        st.st_size > SEED_MAX) {
        int en = errno;
        if (fd >= 0)
            close(fd);
        agent_op_fail(op, fd < 0 && en == ENOENT ? YE_NOT_FOUND : YE_INTERNAL,
                      "agent: the seed of vm %s: %s", id,
                      fd < 0 ? strerror(en) : "not a regular file of 1..4 MiB");
        return;
    }
    unsigned char *buf = malloc((size_t)st.st_size);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    char *b64 = buf && got == (size_t)st.st_size ? base64_encode(buf, got) : NULL;
    free(buf);
    if (!b64) {
        agent_op_fail(op, YE_INTERNAL, "agent: the seed of vm %s could not be read", id);
        return;
    }
    json_t *r = json_pack("{s:s,s:I}", "iso_b64", b64, "size", (json_int_t)got);
    free(b64);
    agent_op_reply(op, r, NULL);
}

static void vm_disk_reclaim(struct agent_local *al, struct agent_op *op, json_t *args)
{
    struct engine *e = agent_op_host(al, op);
    const char *id = e ? agent_op_vm_id(op, args) : NULL;
    if (!id)
        return;
    const char *dd = json_string_value(json_object_get(args, "disk_dir"));
    size_t n = dd ? strlen(dd) : 0, il = strlen(id);
    struct vm_rec vm = {0};
    if (!dd || n >= sizeof vm.disk_dir || n < il + 6 || dd[0] != '/' ||
        path_has_dot_component(dd) || strchr(dd, ',') || strcmp(dd + n - il, id) ||
        strncmp(dd + n - il - 5, "/vms/", 5)) {
        agent_op_fail(op, YE_INVALID_ARGUMENT,
                      "agent: vm.disk_reclaim: disk_dir must be POOL/vms/ID");
        return;
    }
    struct vm_rt *rt = engine_rt_find(e, id);
    if (!rt || rt->pid <= 0 || !rt->uid) {
        agent_op_fail(op, YE_NOT_FOUND, "agent: vm %s has no confined qemu watched here", id);
        return;
    }
    snprintf(vm.id, sizeof vm.id, "%s", id);
    snprintf(vm.disk_dir, sizeof vm.disk_dir, "%s", dd);
    char why[400];
    if (vm_confine_give_disk(&vm, rt->uid, why, sizeof why) < 0) {
        agent_op_fail(op, YE_CONFINE_ERROR, "%s", why);
        return;
    }
    agent_op_reply(op, json_pack("{s:I}", "uid", (json_int_t)rt->uid), NULL);
}

const struct agent_verb_def agent_migrate_verbs[] = {
    {AV_HOST_PORTS, "host.ports", host_ports},
    {AV_VM_SEED_READ, "vm.seed_read", vm_seed_read},
    {AV_VM_DISK_RECLAIM, "vm.disk_reclaim", vm_disk_reclaim},
};
const size_t agent_migrate_verbs_count = sizeof agent_migrate_verbs / sizeof agent_migrate_verbs[0];
