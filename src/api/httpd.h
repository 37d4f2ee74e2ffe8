/*
 * httpd.h - yund's HTTP server lives in src/lib/httpd.h now (the agent's
 * API serves with it too); this name stays for the API's files.
 */
#ifndef YUN_API_HTTPD_H
#define YUN_API_HTTPD_H
#include "lib/httpd.h"
#endif
