/* The pipeline cache file (engine/vk.h, "pipeline cache"): loaded when a device context starts
 * its kernels, saved when a model's kernels are made.
 *
 * The file is input from outside the process: anything could be there (another driver's
 * cache after an upgrade, a truncated write, garbage, a link planted to make us read or write
 * elsewhere). So it is opened without following a symlink, must be a regular file of sane
 * size, and must carry VkPipelineCacheHeaderVersionOne naming this device (vendor, device,
 * pipelineCacheUUID) before a byte of it reaches the driver; otherwise it is ignored, and the
 * next save replaces it. Saves go to a unique temporary file renamed over the old one, so a
 * crash or a concurrent process leaves either the old file or the new one, never a mix, and
 * rename replaces a link at the path rather than writing through it.
 *
 * Measured on Mesa 22.3 lavapipe: vkGetPipelineCacheData returns the 32-byte header and nothing
 * else, so there the file saves no time (Mesa's own shader cache in ~/.cache/mesa_shader_cache
 * keeps lavapipe's LLVM code). GPU drivers keep their compiled code here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/vk_internal.h"

#define HEADER_BYTES 32u              /* sizeof(VkPipelineCacheHeaderVersionOne) */
#define MAX_FILE_BYTES (256u << 20)   /* larger is not a cache we wrote */

_Static_assert(sizeof(VkPipelineCacheHeaderVersionOne) == HEADER_BYTES, "header layout");

int vk_pipeline_cache_path(const vk_device_info *d, const char *dir, char *out, size_t len)
{
    char uuid[33];
    for (int i = 0; i < 16; i++)
        snprintf(uuid + 2 * i, 3, "%02x", d->pipeline_cache_uuid[i]);
    int n = snprintf(out, len, "%s/vkpipelines-%04x-%04x-%08x-%s.bin", dir, d->vendor_id,
                     d->device_id, d->driver_version_raw, uuid);
    return n > 0 && (size_t)n < len;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* 1 when data (n bytes) starts with a version-one header for device d. */
static int header_matches(const vk_device_info *d, const uint8_t *data, size_t n)
{
    if (n < HEADER_BYTES)
        return 0;
    uint32_t header_size = le32(data), version = le32(data + 4);
    return header_size >= HEADER_BYTES && header_size <= n &&
           version == VK_PIPELINE_CACHE_HEADER_VERSION_ONE && le32(data + 8) == d->vendor_id &&
           le32(data + 12) == d->device_id &&
           !memcmp(data + 16, d->pipeline_cache_uuid, VK_UUID_SIZE);
}

/* The file's contents when it is a regular file (not a link) of sane size with a header for d;
 * else NULL. Caller frees. */
static uint8_t *read_valid(const char *path, const vk_device_info *d, size_t *n)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return NULL;
    struct stat st;
    uint8_t *data = NULL;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size < HEADER_BYTES ||
        st.st_size > MAX_FILE_BYTES || !(data = malloc((size_t)st.st_size)))
        goto fail;
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, data + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            goto fail; /* shrank under us, or an error: not to be trusted either way */
        got += (size_t)r;
    }
    if (!header_matches(d, data, got))
        goto fail;
    close(fd);
    *n = got;
    return data;
fail:
    free(data);
    close(fd);
    return NULL;
}

vk_status vk_ctx_pipeline_cache_open(vk_ctx *ctx, const char *dir)
{
    if (!ctx->dev)
        return vk_set_error(ctx, VK_STATUS_BAD_ARG, "pipeline cache before vk_ctx_start_device");
    if (ctx->pcache)
        return VK_STATUS_OK;
    const vk_device_info *d = &ctx->devices[ctx->choice.index];
    if (!vk_pipeline_cache_path(d, dir, ctx->pcache_path, sizeof ctx->pcache_path))
        return vk_set_error(ctx, VK_STATUS_BAD_ARG, "pipeline cache directory name too long");
    size_t n = 0;
    uint8_t *data = read_valid(ctx->pcache_path, d, &n);
    VkPipelineCacheCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
        .initialDataSize = data ? n : 0,
        .pInitialData = data,
    };
    VkResult r = ctx->fn.CreatePipelineCache(ctx->dev, &ci, NULL, &ctx->pcache);
    if (r != VK_SUCCESS && data) { /* the driver refused what passed our checks: start empty */
        free(data);
        data = NULL;
        ci.initialDataSize = 0;
        ci.pInitialData = NULL;
        r = ctx->fn.CreatePipelineCache(ctx->dev, &ci, NULL, &ctx->pcache);
    }
    ctx->pcache_saved = data ? n : 0;
    free(data);
    VK_TRY(r);
    return VK_STATUS_OK;
fail:
    ctx->pcache = VK_NULL_HANDLE;
    return vk_last_status();
}

size_t vk_ctx_pipeline_cache_loaded(const vk_ctx *ctx) { return ctx->pcache_saved; }

/* mkdir -p of the directory holding path, new components mode 0700. */
static int make_parent(char *path)
{
    char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return 0;
    *slash = 0;
    int ok = 1;
    for (char *p = path + 1; ok; p++) {
        if (*p != '/' && *p)
            continue;
        char c = *p;
        *p = 0;
        ok = !mkdir(path, 0700) || errno == EEXIST;
        *p = c;
        if (!c)
            break;
    }
    *slash = '/';
    return ok;
}

/* data to a unique temporary file beside path, renamed onto path. */
static vk_status write_atomically(vk_ctx *ctx, const uint8_t *data, size_t n)
{
    char tmp[sizeof ctx->pcache_path + 16];
    snprintf(tmp, sizeof tmp, "%s.XXXXXX", ctx->pcache_path);
    if (!make_parent(tmp))
        return vk_set_error(ctx, VK_STATUS_BAD_ARG, "pipeline cache: cannot create the "
                            "directory of %s: %s", ctx->pcache_path, strerror(errno));
    int fd = mkstemp(tmp); /* O_EXCL, mode 0600: never someone else's file */
    if (fd < 0)
        return vk_set_error(ctx, VK_STATUS_BAD_ARG, "pipeline cache: %s: %s", tmp,
                            strerror(errno));
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, data + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    int err = done < n ? errno : 0;
    if (close(fd) && !err)
        err = errno;
    if (!err && rename(tmp, ctx->pcache_path))
        err = errno;
    if (err) {
        unlink(tmp);
        return vk_set_error(ctx, VK_STATUS_BAD_ARG, "pipeline cache: writing %s: %s",
                            ctx->pcache_path, strerror(err ? err : EIO));
    }
    return VK_STATUS_OK;
}

vk_status vk_ctx_pipeline_cache_save(vk_ctx *ctx)
{
    if (!ctx->pcache)
        return VK_STATUS_OK;
    uint8_t *data = NULL;
    vk_status st = VK_STATUS_OK;
    pthread_mutex_lock(&ctx->pcache_lock);
    size_t n = 0;
    VK_TRY(ctx->fn.GetPipelineCacheData(ctx->dev, ctx->pcache, &n, NULL));
    /* the cache only grows: the same size as the file means nothing new to write */
    if (n == ctx->pcache_saved || n > MAX_FILE_BYTES)
        goto done;
    data = malloc(n);
    if (!data) {
        st = vk_set_error(ctx, VK_STATUS_NO_MEMORY, "pipeline cache: out of memory for %zu "
                          "bytes", n);
        goto done;
    }
    /* VK_INCOMPLETE: another thread added a pipeline since; what was written is whole */
    VkResult r = ctx->fn.GetPipelineCacheData(ctx->dev, ctx->pcache, &n, data);
    if (r != VK_INCOMPLETE)
        VK_TRY(r);
    st = write_atomically(ctx, data, n);
    if (!st)
        ctx->pcache_saved = n;
    goto done;
fail:
    st = vk_last_status();
done:
    pthread_mutex_unlock(&ctx->pcache_lock);
    free(data);
    return st;
}
