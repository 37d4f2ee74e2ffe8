/*
 * fuzz_trace_planetlab.c - one PlanetLab trace file (one integer CPU% per
 * line) as sim/trace.c parses it.
 */
#include "fuzz.h"

#include "sim/sim.h"

#define MAX_SAMPLES 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint16_t out[MAX_SAMPLES];
    char *text = fuzz_cstr(data, size);
    char err[256] = "";
    int n = sim_trace_parse_planetlab("fuzz", text, out, MAX_SAMPLES, err, sizeof(err));
    FUZZ_ASSERT(n >= -1 && n <= MAX_SAMPLES);
    if (n < 0)
        FUZZ_ASSERT(err[0]);
    for (int i = 0; i < n; i++)
        FUZZ_ASSERT(out[i] <= 10000 && out[i] % 100 == 0);
    free(text);
    return 0;
}
