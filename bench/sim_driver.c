/* sim_driver.c - stand-alone `yun`-like driver for the simulator benchmarks,
 * used by bench/sim.sh until (or instead of) `build/yun sim`: `sim_driver sim
 * run ...` behaves exactly like `yun sim run ...`. */
#include "sim/sim_cli.h"

int main(int argc, char **argv)
{
    return sim_cli_main(argc - 1, argv + 1);
}
