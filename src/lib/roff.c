/*
 * roff.c - man(7) escaping and the page header (roff.h).
 */
#include "lib/roff.h"

void roff_puts(FILE *f, const char *s)
{
    int bol = 1;
    for (; *s; s++) {
        if (bol && (*s == '.' || *s == '\''))
            fputs("\\&", f);
        bol = *s == '\n';
        if (*s == '\\')
            fputs("\\e", f);
        else if (*s == '-')
            fputs("\\-", f);
        else
            fputc(*s, f);
    }
}

void roff_header(FILE *f, const char *name, int section, const char *version, const char *summary)
{
    fputs(".TH \"", f);
    for (const char *p = name; *p; p++)
        fputc(*p >= 'a' && *p <= 'z' ? *p - 32 : *p, f);
    fprintf(f, "\" \"%d\" \"\" \"yun ", section);
    roff_puts(f, version);
    fputs("\" \"yun manual\"\n.SH NAME\n", f);
    roff_puts(f, name);
    fputs(" \\- ", f);
    roff_puts(f, summary);
    fputs("\n", f);
}
