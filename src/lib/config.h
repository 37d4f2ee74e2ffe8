/*
 * config.h - yund's settings: built-in defaults, then the config file
 * (key = value lines), then command-line flags. Every value is validated.
 */
#ifndef YUN_CONFIG_H
#define YUN_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

struct yun_config {
    char state_dir[256];
    /* the state of record: a SQLite file path, or a postgres:// URL;
     * "" = <state_dir>/yun.db */
    char store[512];
    char socket_path[256]; /* default <state_dir>/yund.sock */
    char listen_tcp[64];   /* "127.0.0.1:8470" or "" for none */
    char token_file[256];  /* bearer token for TCP clients */
    char qemu_binary[256];
    char qemu_img[256];
    char accel[8];           /* auto, kvm, tcg */
    char image_builder[256]; /* script that builds the tiny image */
    char log_level[8];
    char log_file[256];
    double cpu_overcommit;    /* vCPUs allowed per host CPU */
    double mem_overcommit;    /* guest memory allowed per byte of host memory */
    int host_cpus;            /* 0 = detect */
    uint64_t host_memory;     /* bytes, 0 = detect */
    uint64_t reserved_memory; /* bytes kept for the host */
    uint64_t memory_margin;   /* over memory_overcommit 1: kept free of the VMs' floors; 0 = 5 % */
    int stop_timeout_s;       /* ACPI powerdown grace before quit */
    int detach_timeout_s;     /* a guest's time to release a detached volume's device */
    int reconcile_interval_s;
    size_t max_body;     /* largest accepted request body */
    int max_connections; /* open API connections; more get 503 */
    /* monitor */
    int sample_interval_s; /* metrics sampling and alert evaluation */
    char smtp_url[256];
    char smtp_from[128];
    char smtp_user[128];
    char smtp_password_file[256];
    int smtp_starttls;
    char sms_url[256];
    char sms_body[512];
    int notify_retries;
    int notify_backoff_ms;
    int notify_timeout_s;
    char external_url[256];
    char image_cache[256]; /* cache of slow image builds (YUN_IMAGE_CACHE) */
    uint64_t log_max_size; /* rotate log_file beyond this size; 0 = never */
    /* Where volume and image imports may read and exports may write:
     * ':'-separated absolute directories, default <state_dir>/exchange. */
    char import_dirs[1024];
    char export_dirs[1024];
    /* growth limits (compute/vm_guard.c, console_log.c, the event log) */
    int64_t event_retention;  /* keep at most this many newest events; 0 = no limit */
    int64_t event_max_age_s;  /* drop events older than this; 0 = no limit */
    uint64_t console_log_max; /* cut a VM's console.log back past this size; 0 = never */
    int reset_loop_max;       /* this many guest resets ... 0 = no detection */
    int reset_loop_window_s;  /* ... within this many seconds is a reset loop */
    /* QEMU confinement (src/compute/confine.c) */
    int qemu_confine;      /* 1: each QEMU runs as its own uid, seccomp, no capabilities */
    uint32_t qemu_uid_min; /* the range VM uids (and gids) are taken from */
    uint32_t qemu_uid_max;
    char qemu_uid_dir[256]; /* machine-wide claims on those uids, shared by every yund */
    /* the image library: <state_dir>/images by default; in a cluster the same shared
     * directory (NFS, say) on the controller and every agent (docs/cluster.md) */
    char images_dir[300];
    /* the cluster (docs/cluster.md; config_cluster.c) */
    char role[16];         /* "all" (default), "controller" or "agent" */
    char host_name[64];    /* "" = the system's host name */
    char host_labels[512]; /* "k=v,k=v" */
    /* CPU models (sched/cpu_models.h): VMs' default ("auto" = the cluster
     * baseline, else a model name), and the models this host offers ("" =
     * every one its QEMU runs; else a ','-separated list it is cut to) */
    char cpu_model[64];
    char cpu_models[1024];
    char agent_listen[64];     /* ADDR:PORT the agent API listens on */
    char agent_address[64];    /* the address controllers use ("" = the listen address) */
    char join_token_file[256]; /* controller: the join token; agent: --token-file */
    char join_urls[1024];      /* agent: controllers to join, ','-separated (--join) */
    int heartbeat_ms;          /* agent heartbeat period */
    int host_dead_after_ms;    /* a lease lapsed this long: the host is down */
    char advertise_url[256];   /* controller: the URL agents and clients use for it */
    int leader_lease_ms;       /* the leader's lease */
    int fence_margin_ms;       /* agent: kill HA QEMUs this long before its lease ends */
    int ha_restart_margin_ms;  /* controller: restart HA VMs this long after a lease lapsed */
    /* placement (ctl/place.c): a src/sched policy name and a VM limit per host */
    char placement_policy[24];
    int host_max_vms; /* 0 = unlimited */
    /* KSM (agent/agent_ksm.c, agent/ksm_policy.c): "auto" (default), "on" or "off";
     * auto starts it below ksm_free_percent free memory or at ksm_psi (PSI memory
     * some avg10) and stops it when it saves under ksm_min_saving bytes per
     * CPU-second of ksmd */
    char ksm[8];
    double ksm_free_pct;
    double ksm_psi;
    uint64_t ksm_min_saving;
    /* the host's balloon policy (agent/agent_balloon.c; config_balloon.c) */
    int balloon_policy;             /* 1 on, 0 off */
    int balloon_interval_ms;        /* a round every this often */
    uint64_t balloon_host_reserve;  /* MemAvailable under this is pressure; 0 = 10 % of RAM */
    uint64_t balloon_guest_reserve; /* a guest keeps this available; 0 = max(32M, size/8) */
    int balloon_psi_some;           /* PSI memory some avg10 % that is pressure; 0 = ignore */
    int balloon_step_pct;           /* at most this % of a VM's memory per round */
};

void config_defaults(struct yun_config *c);
/* Reads key = value lines; unknown keys and bad values are errors naming the line. */
int config_load_file(struct yun_config *c, const char *path, char *err, size_t errlen);
/* The same from an open stream (path only names it in messages). */
int config_load_stream(struct yun_config *c, FILE *f, const char *path, char *err, size_t errlen);
/* Sets one key from a string (used by the file parser and --set KEY=VALUE). */
int config_set(struct yun_config *c, const char *key, const char *value, char *err, size_t errlen);
/* Fills derived defaults (socket path from state dir) and checks consistency. */
int config_finish(struct yun_config *c, char *err, size_t errlen);
/* Walks a ':'-separated directory list: copies the next entry into out and
 * returns 1, or returns 0 at the end. *cursor starts at the list. */
int config_dirs_next(const char **cursor, char *out, size_t outlen);

/* The cluster's settings (config_cluster.c): defaults, one key (1 when the
 * key is not one of them, 0 set, -1 bad value), and the checks at finish. */
void config_cluster_defaults(struct yun_config *c);
int config_cluster_set(struct yun_config *c, const char *key, const char *v, char *err, size_t el);
/* A CPU model name: [A-Za-z0-9._-]{1,63}; a list: such names ','-separated. */
bool config_cpu_model_ok(const char *v);
bool config_cpu_models_ok(const char *v);
int config_cluster_finish(struct yun_config *c, char *err, size_t el);
/* The balloon policy's settings (config_balloon.c): the same shape. */
void config_balloon_defaults(struct yun_config *c);
int config_balloon_set(struct yun_config *c, const char *key, const char *v, char *err, size_t el);
/* A host name: [a-z0-9][a-z0-9.-]{0,62}. */
bool config_host_name_ok(const char *s);
/* One label (key [A-Za-z0-9_./-]{1,63}, value [A-Za-z0-9_.-]{0,63}) and a
 * "k=v,k=v" list of at most 32. */
bool config_label_ok(const char *k, size_t klen, const char *v, size_t vlen);
bool config_labels_ok(const char *s);
/* "k=v,k=v" as a JSON object {"k": "v"} (a new reference; NULL when out
 * of memory): a host's labels in the join's body and in GET /v1/hosts. */
struct json_t;
struct json_t *config_labels_json(const char *s);

#endif
