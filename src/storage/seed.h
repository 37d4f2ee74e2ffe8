/*
 * seed.h - cloud-init NoCloud seeds: an ISO 9660 volume labelled "cidata"
 * holding meta-data (instance id, hostname, SSH keys) and user-data, which
 * cloud-init in the guest finds by its label on first boot.
 */
#ifndef YUN_SEED_H
#define YUN_SEED_H

#include <stddef.h>

/* Checks what a user may put in a seed. 0, or -1 with a one-line reason. */
int seed_validate(const char *hostname, const char *user_data, const char *ssh_keys, char *err,
                  size_t errlen);
/* The meta-data document (malloc'd). ssh_keys: one key per line, may be NULL. */
char *seed_meta_data(const char *instance_id, const char *hostname, const char *ssh_keys);
/* The seed's source files, written by seed_files() under vmdir/seed, and
 * the ISO genisoimage makes of them (seed_argv: run it as a job). */
struct seed_paths {
    char iso[600], user[640], meta[640];
};
int seed_files(const char *vmdir, const char *instance_id, const char *hostname,
               const char *user_data, const char *ssh_keys, struct seed_paths *p, char *err,
               size_t errlen);
void seed_argv(const char *genisoimage, struct seed_paths *p, char *argv[11]);

#endif
