/* sim_cli_int.h - helpers shared by the `yun sim` subcommand files. */
#ifndef YUN_SIM_CLI_INT_H
#define YUN_SIM_CLI_INT_H

int sim_cli_fail(const char *msg, const char *arg); /* prints one line, returns 2 */
int sim_cli_long(const char *s, long lo, long hi, long *out);
int sim_cli_double(const char *s, double lo, double *out);
double sim_cli_now(void);
int sim_cli_place(int argc, char **argv);
int sim_cli_synth(int argc, char **argv);
int sim_cli_ilp(int argc, char **argv);

#endif
