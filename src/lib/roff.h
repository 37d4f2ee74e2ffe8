/*
 * roff.h - writing man(7) text: the escaping both man pages (yund --man,
 * yun __man) share, so a help line prints the same in either.
 */
#ifndef YUN_LIB_ROFF_H
#define YUN_LIB_ROFF_H

#include <stdio.h>

/* s with roff's specials escaped: backslash, a leading '.' or '\'', '-'. */
void roff_puts(FILE *f, const char *s);

/* ".TH NAME SECTION DATE SOURCE MANUAL" and ".SH NAME" with its line. */
void roff_header(FILE *f, const char *name, int section, const char *version, const char *summary);

#endif
