/*
 * body_monitor.c - pure checks of the alert routes' bodies: a rule for
 * POST /v1/alert-rules and {"for"} | {"until"} for a rule's silence. No
 * store, no engine, no I/O (bodies.h).
 */
#include "api/bodies.h"

int alert_rule_body_from_json(json_t *b, struct alert_rule *r, struct yerr *err)
{
    char why[300];
    if (!b)
        return yerr_set(err, YE_INVALID_ARGUMENT, "a rule object is required");
    /* ids and timestamps are yund's to assign */
    json_object_del(b, "id");
    json_object_del(b, "created_at");
    json_object_del(b, "silenced_until");
    if (alert_rule_from_json(b, r, why, sizeof(why)) < 0)
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s", why);
    return 0;
}

int silence_body_from_json(json_t *b, struct silence_body *s, struct yerr *err)
{
    json_t *f = b ? json_object_get(b, "for") : NULL;
    json_t *u = b ? json_object_get(b, "until") : NULL;
    s->until_set = false;
    s->until = 0;
    s->for_s = 0;
    if (json_is_integer(u) && json_integer_value(u) >= 0) {
        s->until_set = true;
        s->until = json_integer_value(u);
        return 0;
    }
    if (!f)
        return yerr_set(err, YE_INVALID_ARGUMENT, "body {\"for\":\"1h\"} or {\"until\":MS}");
    /* reuse the rule parser's duration syntax through a tiny probe rule */
    json_t *probe = json_pack("{s:s,s:s,s:s,s:i,s:O}", "name", "probe", "metric", "cpu", "op", ">",
                              "threshold", 0, "for", f);
    struct alert_rule pr;
    char why[200];
    int ok = probe ? alert_rule_from_json(probe, &pr, why, sizeof(why)) : -1;
    json_decref(probe);
    if (ok < 0)
        return yerr_set(err, YE_INVALID_ARGUMENT, "for must be a duration such as 1h");
    s->for_s = pr.for_s;
    return 0;
}

int check_alert_rule_create(json_t *body, struct yerr *err)
{
    struct alert_rule r;
    return alert_rule_body_from_json(body, &r, err);
}

int check_alert_rule_silence(json_t *body, struct yerr *err)
{
    struct silence_body s;
    return silence_body_from_json(body, &s, err);
}
