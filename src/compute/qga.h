/*
 * qga.h - talking to the QEMU guest agent inside a VM (virtio-serial port
 * org.qemu.guest_agent.0, exposed by QEMU as DIR/qga.sock).
 *
 * The agent speaks QMP-like JSON lines but has no greeting, and a previous
 * client may have left a half-read reply in the channel; every exchange
 * therefore starts with guest-sync-delimited, which flushes the channel and
 * proves the agent is alive.
 */
#ifndef YUN_QGA_H
#define YUN_QGA_H

#include <jansson.h>
#include <stddef.h>

/* One command; *ret gets the "return" value (new reference) when ret != NULL.
 * no_reply: commands like guest-shutdown that answer nothing on success. */
int qga_command(const char *sock_path, const char *command, json_t *args, json_t **ret,
                int no_reply, int timeout_ms, char *err, size_t errlen);

/* Decodes standard base64 (guest-exec output); returns malloc'd bytes. */
unsigned char *base64_decode(const char *in, size_t *out_len);

#endif
