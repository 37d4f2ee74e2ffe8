/*
 * image_check.c - what an image needs of a VM that boots it.
 */
#include "storage/image_check.h"

int engine_image_memory_check(const struct image_rec *img, uint64_t memory_mb, struct yerr *err)
{
    if (!img->min_memory_mb || memory_mb >= img->min_memory_mb)
        return 0;
    return yerr_set(err, YE_INVALID_ARGUMENT,
                    "memory %llu MiB is below the %llu MiB image '%s' needs (with less its "
                    "guest does not boot)",
                    (unsigned long long)memory_mb, (unsigned long long)img->min_memory_mb,
                    img->name);
}
