/*
 * fuzz_trace_csv.c - the long CSV trace format (vm,timestamp,cpu%) as
 * sim/trace.c reads it, and the trace it makes.
 */
#include "fuzz.h"

#include "sim/sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sim_trace t;
    char err[256] = "";
    FILE *f = fuzz_stream(data, size);
    int rc = sim_trace_read_csv(f, "fuzz.csv", 300, &t, err, sizeof(err));
    fclose(f);
    if (rc < 0) {
        FUZZ_ASSERT(err[0] && !t.u && !t.names && !t.nvms);
        return 0;
    }
    FUZZ_ASSERT(t.nvms >= 1 && t.nsteps >= 1 && t.nsteps <= SIM_TRACE_MAX_STEPS);
    FUZZ_ASSERT((long long)t.nvms * t.nsteps <= SIM_TRACE_MAX_CELLS);
    for (int v = 0; v < t.nvms; v++) {
        FUZZ_ASSERT(t.names && t.names[v]);
        for (int s = 0; s < t.nsteps; s++)
            FUZZ_ASSERT(sim_trace_u(&t, v, s) >= 0 && sim_trace_u(&t, v, s) <= 1.0);
    }
    sim_trace_free(&t);
    return 0;
}
