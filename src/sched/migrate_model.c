/*
 * migrate_model.c - the pre-copy prediction (sched/migrate_model.h).
 *
 * Round 0 sends all of RAM; each next round sends what the guest dirtied
 * during the previous one (never more than RAM), at the bandwidth. When
 * what is left can be sent within the allowed downtime, the guest is
 * paused and the rest copied: that copy is the downtime. The rate at which
 * pages dirty is taken as constant (the measured one); with auto-converge
 * the guest's CPU, and so its dirtying, is throttled 20 % from the second
 * round and 10 % more each round after, up to 99 % (QEMU's defaults:
 * cpu-throttle-initial 20, cpu-throttle-increment 10). Pure.
 */
#include "sched/migrate_model.h"

#include <string.h>

int mig_model_predict(const struct mig_model_in *in, struct mig_model_out *out)
{
    memset(out, 0, sizeof *out);
    if (!(in->bandwidth_bps > 0) || in->dirty_bps < 0 || in->max_downtime_ms < 0)
        return -1;
    double bw = in->bandwidth_bps, ram = (double)in->ram_bytes;
    double allowed = (in->max_downtime_ms ? in->max_downtime_ms : 300) / 1e3;
    double t = in->setup_ms > 0 ? in->setup_ms / 1e3 : 0;
    double throttle = 0, left = ram;
    out->ratio = in->dirty_bps / bw;
    for (int r = 0; r <= MIG_MODEL_MAX_ROUNDS; r++) {
        double send = left / bw;
        if (left / bw <= allowed || ram == 0) {
            out->converges = true;
            out->rounds = r;
            out->downtime_ms = send * 1e3;
            out->total_ms = (t + send) * 1e3;
            out->bytes += left;
            out->throttle_pct = throttle * 100;
            return 0;
        }
        t += send;
        out->bytes += left;
        if (in->auto_converge && r >= 1)
            throttle = throttle == 0 ? 0.2 : (throttle + 0.1 > 0.99 ? 0.99 : throttle + 0.1);
        double dirtied = in->dirty_bps * (1 - throttle) * send;
        left = dirtied < ram ? dirtied : ram;
    }
    /* never small enough: the numbers of the last round say by how much */
    out->converges = false;
    out->rounds = MIG_MODEL_MAX_ROUNDS;
    out->total_ms = t * 1e3;
    out->downtime_ms = left / bw * 1e3;
    out->throttle_pct = throttle * 100;
    return 0;
}
