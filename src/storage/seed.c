/*
 * seed.c - building NoCloud seed images for cloud-init.
 */
#include "storage/seed.h"
#include "lib/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define USER_DATA_MAX (64 * 1024)

int seed_validate(const char *hostname, const char *user_data, const char *ssh_keys, char *err,
                  size_t len)
{
    if (hostname && *hostname) {
        size_t n = strlen(hostname);
        bool ok = n <= 63 && isalnum((unsigned char)hostname[0]);
        for (size_t i = 0; ok && i < n; i++)
            ok = isalnum((unsigned char)hostname[i]) || hostname[i] == '-' || hostname[i] == '.';
        if (!ok) {
            snprintf(err, len, "hostname '%.63s' is not a valid host name", hostname);
            return -1;
        }
    }
    if (user_data) {
        if (strlen(user_data) > USER_DATA_MAX) {
            snprintf(err, len, "user-data is larger than %d bytes", USER_DATA_MAX);
            return -1;
        }
        /* the formats cloud-init recognises by their first line */
        static const char *const heads[] = {
            "#cloud-config", "#!", "#include", "#cloud-boothook", "Content-Type:",
            "#part-handler", NULL};
        bool ok = false;
        for (const char *const *h = heads; *h && !ok; h++)
            ok = !strncmp(user_data, *h, strlen(*h));
        if (!ok) {
            snprintf(err, len,
                     "user-data must start with #cloud-config, #! or another cloud-init "
                     "header");
            return -1;
        }
    }
    if (ssh_keys) {
        const char *p = ssh_keys;
        int keys = 0;
        while (*p) {
            const char *nl = strchr(p, '\n');
            size_t n = nl ? (size_t)(nl - p) : strlen(p);
            if (n > 0 && !(n == 1 && p[0] == '\r')) {
                if (strncmp(p, "ssh-", 4) && strncmp(p, "ecdsa-", 6) && strncmp(p, "sk-", 3)) {
                    snprintf(err, len, "ssh key %d does not look like an OpenSSH public key",
                             keys + 1);
                    return -1;
                }
                for (size_t i = 0; i < n; i++)
                    if ((unsigned char)p[i] < 0x20 && p[i] != '\r') {
                        snprintf(err, len, "ssh key %d has a control character", keys + 1);
                        return -1;
                    }
                keys++;
            }
            p += n + (nl ? 1 : 0);
        }
    }
    return 0;
}

/* YAML double-quoted scalar (JSON string syntax is valid YAML). */
static void put_quoted(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c >= 0x20)
            fputc(c, f);
    }
    fputc('"', f);
}

char *seed_meta_data(const char *instance_id, const char *hostname, const char *ssh_keys)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    fprintf(f, "instance-id: %s\n", instance_id);
    if (hostname && *hostname)
        fprintf(f, "local-hostname: %s\n", hostname);
    if (ssh_keys && *ssh_keys) {
        fprintf(f, "public-keys:\n");
        const char *p = ssh_keys;
        while (*p) {
            const char *nl = strchr(p, '\n');
            size_t n = nl ? (size_t)(nl - p) : strlen(p);
            while (n && (p[n - 1] == '\r' || p[n - 1] == ' '))
                n--;
            if (n) {
                fprintf(f, "  - ");
                put_quoted(f, p, n);
                fputc('\n', f);
            }
            p += (nl ? (size_t)(nl - p) + 1 : strlen(p));
        }
    }
    fclose(f);
    return buf;
}

int seed_files(const char *vmdir, const char *instance_id, const char *hostname,
               const char *user_data, const char *ssh_keys, struct seed_paths *p, char *err,
               size_t errlen)
{
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/seed", vmdir);
    snprintf(p->meta, sizeof(p->meta), "%s/meta-data", dir);
    snprintf(p->user, sizeof(p->user), "%s/user-data", dir);
    snprintf(p->iso, sizeof(p->iso), "%s/seed.iso", vmdir);
    if (mkdir_p(dir, 0700) < 0) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    char *md = seed_meta_data(instance_id, hostname, ssh_keys);
    const char *ud = user_data && *user_data ? user_data : "#cloud-config\n{}\n";
    int rc = 0;
    if (!md || write_file_atomic(p->meta, md, strlen(md), 0600) < 0 ||
        write_file_atomic(p->user, ud, strlen(ud), 0600) < 0) {
        snprintf(err, errlen, "cannot write the seed files: %s", strerror(errno));
        rc = -1;
    }
    free(md);
    return rc;
}

void seed_argv(const char *genisoimage, struct seed_paths *p, char *argv[11])
{
    char *const a[] = {(char *)genisoimage, "-quiet", "-output", p->iso,  "-volid", "cidata",
                       "-joliet",           "-rock",  p->user,   p->meta, NULL};
    memcpy(argv, a, sizeof a);
}
