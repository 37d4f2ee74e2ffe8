/*
 * taskfmt.h - how yun shows a task (pure functions of a TASK object, see the
 * tasks contract in docs/api.yaml): progress line, progress column, final
 * states, id prefixes.
 */
#ifndef YUN_CLI_TASKFMT_H
#define YUN_CLI_TASKFMT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* succeeded, failed or cancelled */
bool cli_task_final(const char *state);
/* "4.2 GiB", "10 GiB", "512 B" */
void cli_fmt_iec(long long bytes, char *buf, size_t len);
/* 0..100, or -1 when the task's progress is not known */
int cli_task_percent(json_t *task);
/* "42%" or "-" */
void cli_task_progress(json_t *task, char *buf, size_t len);
/* "clone vol1  42%  4.2 GiB / 10 GiB" while it runs; with final, the state
 * instead of the percentage: "clone vol1  succeeded  10 GiB / 10 GiB". */
void cli_task_line(json_t *task, bool final, char *buf, size_t len);
/* How many tasks of the array have an id starting with prefix (a whole id
 * counts as one); *id is the task's id when exactly one does, else NULL. */
int cli_task_match(json_t *tasks, const char *prefix, const char **id);

#endif
