/*
 * ksm_policy.c - when KSM runs and how hard it scans (ksm_policy.h). Pure:
 * the agent's controller (agent/agent_ksm.c) does the reading and writing.
 *
 * auto: KSM starts when free memory (MemAvailable) falls below free_pct of
 * MemTotal or PSI's memory "some" avg10 reaches psi_avg10, scans harder as
 * that pressure grows (four steps, so that small wobbles write nothing), and
 * stops when the pressure is relieved (KSM_FREE_MARGIN points above the
 * threshold, PSI under half of its). It also stops when it costs more than
 * it saves: once a full scan is done, the bytes it saves per CPU-second of
 * ksmd below min_saving for KSM_COSTLY_TICKS evaluations in a row, and then
 * stays off KSM_HOLDOFF_TICKS evaluations (hysteresis: no flapping between
 * a pressure that starts it and a cost that stops it). Stopping is run = 0:
 * the pages already merged stay merged (run = 2 would unmerge them all,
 * a burst of copies on a host that is short of memory).
 * on: run = 1 with the kernel's default tuning. off: nothing is decided.
 */
#include "agent/ksm_policy.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ksm_mode_parse(const char *s, enum ksm_mode *out)
{
    if (!strcmp(s, "auto"))
        *out = KSM_AUTO;
    else if (!strcmp(s, "on"))
        *out = KSM_ON;
    else if (!strcmp(s, "off"))
        *out = KSM_OFF;
    else
        return -1;
    return 0;
}

const char *ksm_mode_name(enum ksm_mode m)
{
    return m == KSM_ON ? "on" : m == KSM_OFF ? "off" : "auto";
}

static void set(struct ksm_state *st, struct ksm_decision *d, int run, unsigned pages,
                unsigned sleep, const char *why)
{
    d->run = run;
    d->pages_to_scan = pages;
    d->sleep_ms = sleep;
    d->reason = why;
    d->changed =
        !st->valid || st->run != run || st->pages_to_scan != pages || st->sleep_ms != sleep;
    st->valid = true;
    st->run = run;
    st->pages_to_scan = pages;
    st->sleep_ms = sleep;
}

/* 0..4: how hard to scan, from how far past the thresholds the host is. */
static int pressure_level(const struct ksm_tuning *t, const struct ksm_input *in, double free_pct)
{
    double p = 0;
    if (t->free_pct > 0 && free_pct < t->free_pct)
        p = (t->free_pct - free_pct) / t->free_pct;
    if (in->have_psi && t->psi_avg10 > 0 && in->psi_some_avg10 / (4 * t->psi_avg10) > p)
        p = in->psi_some_avg10 / (4 * t->psi_avg10);
    if (p > 1)
        p = 1;
    return (int)ceil(p * 4);
}

void ksm_decide(const struct ksm_tuning *t, const struct ksm_input *in, struct ksm_state *st,
                struct ksm_decision *d)
{
    if (t->mode == KSM_OFF) {
        *d = (struct ksm_decision){.run = -1, .reason = "ksm = off: left as the host has it"};
        return;
    }
    if (t->mode == KSM_ON) {
        set(st, d, 1, KSM_DEFAULT_PAGES, KSM_DEFAULT_SLEEP, "ksm = on");
        return;
    }
    double free_pct =
        in->mem_total ? 100.0 * (double)in->mem_available / (double)in->mem_total : 100.0;
    bool psi_high = in->have_psi && in->psi_some_avg10 >= t->psi_avg10;
    bool pressed = free_pct < t->free_pct || psi_high;
    bool relieved = free_pct >= t->free_pct + KSM_FREE_MARGIN &&
                    (!in->have_psi || in->psi_some_avg10 < t->psi_avg10 / 2);
    int lv = pressure_level(t, in, free_pct);
    unsigned pages = KSM_DEFAULT_PAGES + (unsigned)lv * (KSM_MAX_PAGES - KSM_DEFAULT_PAGES) / 4;
    unsigned sleep = KSM_DEFAULT_SLEEP - (unsigned)lv * (KSM_DEFAULT_SLEEP - KSM_MIN_SLEEP) / 4;

    if (st->valid && st->run == 1) {
        /* judged only once a whole scan had its chance to merge, and only
         * when ksmd costs something measurable (0.5 % of a CPU) */
        if (in->have_cpu && in->ksmd_cpu > 0.005 && in->full_scans > st->scans_at_start) {
            double per_cpu_s = (double)ksm_saved_bytes(in) / in->ksmd_cpu;
            st->costly = per_cpu_s < (double)t->min_saving ? st->costly + 1 : 0;
        }
        if (st->costly >= KSM_COSTLY_TICKS) {
            st->costly = 0;
            st->holdoff = KSM_HOLDOFF_TICKS;
            set(st, d, 0, st->pages_to_scan, st->sleep_ms, "it costs more CPU than it saves");
            return;
        }
        if (relieved) {
            set(st, d, 0, st->pages_to_scan, st->sleep_ms, "no memory pressure");
            return;
        }
        set(st, d, 1, pages, sleep, "memory pressure");
        return;
    }
    if (st->holdoff > 0) {
        st->holdoff--;
        set(st, d, 0, st->valid ? st->pages_to_scan : KSM_DEFAULT_PAGES,
            st->valid ? st->sleep_ms : KSM_DEFAULT_SLEEP, "held off: it cost more than it saved");
        return;
    }
    if (pressed) {
        st->costly = 0;
        st->scans_at_start = in->full_scans;
        set(st, d, 1, pages, sleep, "memory pressure");
        return;
    }
    set(st, d, 0, st->valid ? st->pages_to_scan : KSM_DEFAULT_PAGES,
        st->valid ? st->sleep_ms : KSM_DEFAULT_SLEEP, "no memory pressure");
}

int ksm_parse_psi(const char *text, double *avg10)
{
    if (!text)
        return -1;
    const char *p = strstr(text, "some avg10=");
    if (!p || (p != text && p[-1] != '\n'))
        return -1;
    p += strlen("some avg10=");
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    if (end == p || errno || !(v >= 0 && v <= 100) || (*end != ' ' && *end != '\n' && *end))
        return -1;
    *avg10 = v;
    return 0;
}

int ksm_parse_counter(const char *text, uint64_t *out)
{
    if (!text || *text < '0' || *text > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || (*end && strcmp(end, "\n")))
        return -1;
    *out = v;
    return 0;
}
