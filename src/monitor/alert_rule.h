/*
 * alert_rule.h - alert rules and the alert state machine, as pure code.
 *
 * A rule watches one metric over a scope (one VM, every VM, or the host),
 * aggregates it over a window, compares with a threshold, and must hold for
 * `for` seconds before it fires:
 *
 *   inactive --cond--> pending --held for--> firing --!cond--> resolved
 *       ^                 |                     |  (repeat every repeat_s)
 *       +------!cond------+                     +--> notifications
 */
#ifndef YUN_ALERT_RULE_H
#define YUN_ALERT_RULE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "monitor/series.h"

enum cmp_op { OP_GT = 0, OP_GE, OP_LT, OP_LE, OP_EQ, OP_NE };
/* SCOPE_HOST: every host; SCOPE_HOST_NAMED: host:NAME, one host */
enum alert_scope { SCOPE_VM = 0, SCOPE_VMS, SCOPE_HOST, SCOPE_HOST_NAMED };
enum alert_state { AS_INACTIVE = 0, AS_PENDING, AS_FIRING, AS_RESOLVED };
enum alert_action { AA_NONE = 0, AA_FIRE, AA_RESOLVE, AA_REPEAT };

#define RULE_MAX_CHANNELS 8
#define RULE_MAX_LABELS   8

struct alert_rule {
    char id[37];
    char name[64];
    char metric[32];
    enum alert_scope scope;
    char target[64]; /* the VM (SCOPE_VM) or the host (SCOPE_HOST_NAMED) */
    enum agg agg;
    int window_s;
    enum cmp_op op;
    double threshold;
    int for_s;
    int repeat_s; /* 0 = notify once per firing */
    char severity[16];
    int nlabels;
    char label_k[RULE_MAX_LABELS][32];
    char label_v[RULE_MAX_LABELS][64];
    int nchannels;
    char channels[RULE_MAX_CHANNELS][256]; /* webhook:URL, email:ADDR, sms:NUMBER */
    int64_t silenced_until;
    int64_t created_at;
};

struct alert_inst {
    enum alert_state state;
    int64_t pending_since, fired_at, resolved_at, notified_at;
    double value;
    int64_t db_id;
};

/* Metrics a rule may watch, per scope (NULL-terminated lists). */
extern const char *const alert_vm_metrics[];
extern const char *const alert_host_metrics[];
bool alert_metric_known(enum alert_scope scope, const char *metric);
const char *alert_metrics_list(enum alert_scope scope);

/* Parses and validates a rule from the API's JSON. 0, or -1 with a reason. */
int alert_rule_from_json(json_t *j, struct alert_rule *r, char *err, size_t errlen);
/* The rule as JSON (what the API returns and the store keeps). */
json_t *alert_rule_to_json(const struct alert_rule *r);

bool alert_compare(double v, enum cmp_op op, double threshold);
const char *cmp_op_name(enum cmp_op op);
const char *alert_state_name(enum alert_state s);

/* One evaluation: advances *a given whether a value exists and what it is.
 * Returns what to notify (silences are the caller's business). */
enum alert_action alert_step(const struct alert_rule *r, struct alert_inst *a, bool have_value,
                             double value, int64_t now_ms);

#endif
