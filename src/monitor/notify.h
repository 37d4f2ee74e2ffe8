/*
 * notify.h - delivering alert notifications: webhook (HTTP POST of JSON in
 * Alertmanager's webhook format), email over SMTP (optional STARTTLS and
 * auth) and SMS through a configurable HTTP gateway. Delivery runs on one
 * worker thread with libcurl, so a slow receiver never stalls yund's loop;
 * every attempt's outcome comes back to the loop through a pipe.
 */
#ifndef YUN_NOTIFY_H
#define YUN_NOTIFY_H

#include <stdbool.h>

struct event_base;

struct notify_config {
    char smtp_url[256]; /* smtp://host:port or smtps:// */
    char smtp_from[128];
    char smtp_user[128];
    char smtp_password[128];
    bool smtp_starttls;
    char sms_url[256];
    char sms_body[512]; /* template with {to} and {message}; JSON if it starts with '{' */
    int retries;        /* attempts per notification */
    int backoff_ms;     /* first retry delay; doubles each time */
    int timeout_s;      /* per attempt */
};

/* Called on the loop thread after every attempt. final: no more attempts. */
typedef void (*notify_result_cb)(void *ctx, const char *channel, const char *rule, int attempt,
                                 bool ok, bool final, const char *detail);

struct notifier;
struct notifier *notifier_start(struct event_base *base, const struct notify_config *cfg,
                                notify_result_cb cb, void *ctx);
/* Stops the worker; undelivered notifications are reported as failed. */
void notifier_stop(struct notifier *n);
/* Queues one notification to one channel ("webhook:URL", "email:ADDR",
 * "sms:NUMBER"). json is the webhook body; subject/text serve email and SMS. */
int notifier_send(struct notifier *n, const char *channel, const char *rule, const char *json,
                  const char *subject, const char *text);
/* Expands an SMS template (exposed for tests). Returns malloc'd text. */
char *notify_sms_body(const char *tmpl, const char *to, const char *message);

#endif
