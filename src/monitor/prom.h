/*
 * prom.h - rendering the Prometheus text exposition for GET /metrics.
 */
#ifndef YUN_PROM_H
#define YUN_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "monitor/monitor.h"

/* Returns malloc'd text of *len bytes. */
char *prom_render(struct monitor *m, const struct vm_rec *vms, size_t n, int64_t api_requests,
                  size_t *len);

#endif
