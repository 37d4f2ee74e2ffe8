/*
 * pool_files.c - removing files of a pool that nothing owns (a create that
 * died before its row, a copy's .part file whose task is gone).
 */
#include "storage/pool_files.h"

#include <dirent.h>
#include <stdbool.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int pool_remove_orphans(const char *dir, const char *const *known, size_t n, pool_orphan_fn fn,
                        void *ctx)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        bool owned = false;
        for (size_t i = 0; i < n && !owned; i++)
            owned = known[i] && !strcmp(known[i], de->d_name);
        struct stat st;
        if (owned || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            S_ISDIR(st.st_mode))
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) == 0) {
            removed++;
            if (fn)
                fn(ctx, de->d_name);
        }
    }
    closedir(d);
    return removed;
}
