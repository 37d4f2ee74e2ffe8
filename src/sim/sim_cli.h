/* sim_cli.h - entry point of `yun sim ...`; argv[0] is "sim". */
#ifndef YUN_SIM_CLI_H
#define YUN_SIM_CLI_H

/* Returns the process exit status: 0 on success, 2 on bad usage/input, 1 on failure. */
int sim_cli_main(int argc, char **argv);

#endif
