/*
 * qga.c - guest agent client: sync, then one command, bounded by a timeout.
 */
#include "compute/qga.h"
#include "compute/qmp.h"
#include "lib/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int send_cmd(int fd, const char *command, json_t *args, char *err, size_t errlen)
{
    char *text = qmp_message(command, args, -1);
    int rc = text && send_all(fd, text, strlen(text)) == 0 ? 0 : -1;
    free(text);
    if (rc < 0)
        snprintf(err, errlen, "guest agent write: %s", strerror(errno));
    return rc;
}

/* Reads lines until a reply (return or error) arrives. */
static int read_reply(struct liner *l, json_t **ret, char *err, size_t errlen)
{
    for (;;) {
        char *line = liner_next(l, err, errlen);
        if (!line)
            return -1;
        /* guest-sync-delimited's 0xff marker may precede the JSON */
        char *p = line;
        while (*p == '\xff')
            p++;
        int rc = qmp_parse_reply(p, ret, err, errlen);
        free(line);
        if (rc <= 0)
            return rc;
    }
}

int qga_command(const char *sock_path, const char *command, json_t *args, json_t **ret,
                int no_reply, int timeout_ms, char *err, size_t errlen)
{
    if (ret)
        *ret = NULL;
    int fd = qmp_unix_connect(sock_path, err, errlen);
    if (fd < 0)
        return -1;
    struct liner l = {.fd = fd, .deadline = monotonic_ms() + timeout_ms};
    int rc = -1;
    json_int_t id = (json_int_t)(now_ms() & 0x3fffffff) ^ (json_int_t)getpid();
    json_t *sync = json_pack("{s:I}", "id", id);
    json_t *sret = NULL;
    if (send_cmd(fd, "guest-sync-delimited", sync, err, errlen) == 0) {
        /* skip stale replies left by an earlier client until ours comes */
        while (read_reply(&l, &sret, err, errlen) == 0) {
            int ok = json_is_integer(sret) && json_integer_value(sret) == id;
            json_decref(sret);
            sret = NULL;
            if (ok) {
                rc = 0;
                break;
            }
        }
    }
    json_decref(sync);
    if (rc == 0) {
        rc = send_cmd(fd, command, args, err, errlen);
        if (rc == 0 && !no_reply)
            rc = read_reply(&l, ret, err, errlen);
    } else if (strstr(err, "timed out")) {
        snprintf(err, errlen, "the guest agent does not answer (is qemu-guest-agent running?)");
    }
    free(l.buf);
    close(fd);
    return rc;
}

unsigned char *base64_decode(const char *in, size_t *out_len)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t len = strlen(in);
    unsigned char *out = malloc(len / 4 * 3 + 4);
    if (!out)
        return NULL;
    size_t n = 0;
    unsigned v = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '=')
            break;
        const char *p = strchr(tbl, in[i]);
        if (!p || !in[i])
            continue; /* skip whitespace and anything else */
        v = (v << 6) | (unsigned)(p - tbl);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)((v >> bits) & 0xff);
        }
    }
    out[n] = 0;
    *out_len = n;
    return out;
}
