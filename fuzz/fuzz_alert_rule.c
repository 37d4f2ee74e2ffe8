/*
 * fuzz_alert_rule.c - alert rules as the API takes them (JSON into
 * monitor/alert_rule.c's validator): a rule accepted once is accepted again
 * from its own JSON, unchanged, and the state machine runs on it.
 */
#include "fuzz.h"

#include "monitor/alert_rule.h"

#include <jansson.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (!j)
        return 0;
    struct alert_rule r, r2;
    char err[256] = "";
    int rc = alert_rule_from_json(j, &r, err, sizeof(err));
    json_decref(j);
    if (rc < 0) {
        FUZZ_ASSERT(err[0]);
        return 0;
    }
    json_t *back = alert_rule_to_json(&r);
    FUZZ_ASSERT(back);
    rc = alert_rule_from_json(back, &r2, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "round trip refused: %s\n", err);
    FUZZ_ASSERT(rc == 0);
    json_t *again = alert_rule_to_json(&r2);
    FUZZ_ASSERT(json_equal(back, again));
    json_decref(back);
    json_decref(again);

    /* a few evaluations: values from the input's bytes */
    struct alert_inst a = {0};
    int64_t now = 1000000;
    for (size_t i = 0; i < size && i < 16; i++) {
        double v = (double)data[i] - 64;
        (void)alert_step(&r, &a, data[i] & 1, v, now);
        now += (int64_t)data[i] * 1000;
    }
    return 0;
}
