/*
 * alert_payload.h - what a notification says: the webhook body in
 * Alertmanager's webhook format (version 4, so existing receivers work) and
 * the subject/text used for email and SMS. Pure functions.
 */
#ifndef YUN_ALERT_PAYLOAD_H
#define YUN_ALERT_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "monitor/alert_rule.h"

struct alert_note {
    char object[72]; /* "vm/web1" or "host" */
    double value;
    int64_t starts_at, ends_at; /* ms; ends_at 0 while firing */
    bool resolved;
};

/* Returns malloc'd JSON text. */
char *alert_webhook_json(const struct alert_rule *r, const struct alert_note *notes, int n,
                         const char *hostname, const char *external_url);
/* Subject and body text for email/SMS; malloc'd into *subject and *text. */
void alert_message_text(const struct alert_rule *r, const struct alert_note *notes, int n,
                        char **subject, char **text);
/* RFC 3339 in UTC with milliseconds; "0001-01-01T00:00:00Z" for 0. */
void rfc3339_ms(int64_t ms, char *buf, size_t len);

#endif
