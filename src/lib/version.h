/*
 * version.h - yun's version (debian/changelog's, baked in by the Makefile),
 * the git commit it was built from, and the agent<->controller protocol
 * number: one place for yund --version, yun --version, GET /v1/version and
 * the join handshake.
 */
#ifndef YUN_LIB_VERSION_H
#define YUN_LIB_VERSION_H

/* The agent<->controller wire protocol; a controller refuses any other. */
#define YUN_PROTOCOL 1

const char *yun_version(void); /* "0.1.0" */
const char *yun_commit(void);  /* "b4c09f6", "unknown" outside git */

#endif
