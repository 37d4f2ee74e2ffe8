/*
 * fuzz_config.c - yund's config file parser (lib/config.c): key = value
 * lines onto the defaults, then the consistency checks of config_finish.
 */
#include "fuzz.h"

#include "lib/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct yun_config c;
    config_defaults(&c);
    char err[512] = "";
    FILE *f = fuzz_stream(data, size);
    int rc = config_load_stream(&c, f, "fuzz.conf", err, sizeof(err));
    fclose(f);
    if (rc < 0) {
        FUZZ_ASSERT(err[0]); /* every refusal says why */
        return 0;
    }
    if (config_finish(&c, err, sizeof(err)) < 0) {
        FUZZ_ASSERT(err[0]);
        return 0;
    }
    /* a finished config is usable: a socket path, absolute dirs */
    FUZZ_ASSERT(c.socket_path[0] && c.state_dir[0] == '/');
    const char *cur = c.import_dirs;
    char dir[1024];
    while (config_dirs_next(&cur, dir, sizeof(dir)))
        FUZZ_ASSERT(dir[0] == '/');
    return 0;
}
