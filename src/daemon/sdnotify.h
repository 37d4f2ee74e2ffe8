/*
 * sdnotify.h - systemd's readiness protocol (Type=notify): one datagram
 * such as "READY=1" to the socket $NOTIFY_SOCKET names. A few lines of our
 * own instead of libsystemd: nothing to link, and a no-op without systemd.
 */
#ifndef YUN_DAEMON_SDNOTIFY_H
#define YUN_DAEMON_SDNOTIFY_H

/* Sends state ("READY=1\nSTATUS=..."); 0 when sent or no $NOTIFY_SOCKET,
 * -1 on an error (logged by the caller if it cares). */
int sd_notify_send(const char *state);

/* READY=1 with MAINPID and a STATUS line. */
void sd_notify_ready(const char *status);

#endif
