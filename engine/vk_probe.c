/* Physical-device probe and device choice.
 *
 * vk_probe_device fills a plain vk_device_info from property/feature queries only, so listing
 * devices never creates a logical device (which is slow on lavapipe and can fail on a busy GPU).
 * Structures are chained only when the device's effective API version or an extension it lists
 * says they exist: chaining an unknown structure is invalid usage, and the validation run of
 * the tests must stay silent.
 *
 * vk_choose_device is a pure function of the probed list so the ranking rules are testable
 * with synthetic devices.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/vk_internal.h"

/* vk.h keeps <vulkan/vulkan.h> away from its users, so its subgroup bits are a copy. */
#define SAME_BIT(ours, theirs) \
    _Static_assert((unsigned)(ours) == (unsigned)(theirs), #ours " mirrors " #theirs)
SAME_BIT(VK_SGOP_BASIC, VK_SUBGROUP_FEATURE_BASIC_BIT);
SAME_BIT(VK_SGOP_VOTE, VK_SUBGROUP_FEATURE_VOTE_BIT);
SAME_BIT(VK_SGOP_ARITHMETIC, VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
SAME_BIT(VK_SGOP_BALLOT, VK_SUBGROUP_FEATURE_BALLOT_BIT);
SAME_BIT(VK_SGOP_SHUFFLE, VK_SUBGROUP_FEATURE_SHUFFLE_BIT);
SAME_BIT(VK_SGOP_SHUFFLE_RELATIVE, VK_SUBGROUP_FEATURE_SHUFFLE_RELATIVE_BIT);
SAME_BIT(VK_SGOP_CLUSTERED, VK_SUBGROUP_FEATURE_CLUSTERED_BIT);
SAME_BIT(VK_SGOP_QUAD, VK_SUBGROUP_FEATURE_QUAD_BIT);
_Static_assert(VK_MAX_HEAPS == VK_MAX_MEMORY_HEAPS, "heap array matches Vulkan's bound");

#define VENDOR_NVIDIA 0x10DEu

const char *vk_device_type_str(vk_device_type t)
{
    switch (t) {
    case VK_DEVTYPE_DISCRETE: return "discrete GPU";
    case VK_DEVTYPE_INTEGRATED: return "integrated GPU";
    case VK_DEVTYPE_VIRTUAL: return "virtual GPU";
    case VK_DEVTYPE_CPU: return "CPU";
    case VK_DEVTYPE_OTHER: break;
    }
    return "other";
}

const char *vk_subgroup_op_name(unsigned i)
{
    static const char *names[VK_SGOP_COUNT] = {
        "basic", "vote", "arithmetic", "ballot", "shuffle", "shuffle-relative", "clustered", "quad",
    };
    return i < VK_SGOP_COUNT ? names[i] : NULL;
}

int vk_device_is_lavapipe(const vk_device_info *d)
{
    return d->driver_id == VK_DRIVER_ID_MESA_LLVMPIPE || strstr(d->driver_name, "llvmpipe") ||
           strstr(d->name, "llvmpipe");
}

uint64_t vk_device_local_bytes(const vk_device_info *d)
{
    uint64_t best = 0;
    for (uint32_t i = 0; i < d->heap_count && i < VK_MAX_HEAPS; i++)
        if (d->heaps[i].device_local && d->heaps[i].size > best)
            best = d->heaps[i].size;
    return best;
}

const char *vk_version_str(uint32_t v, char *buf, size_t buflen)
{
    snprintf(buf, buflen, "%u.%u.%u", VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v),
             VK_API_VERSION_PATCH(v));
    return buf;
}

const char *vk_driver_version_str(uint32_t driver_id, uint32_t vendor_id, uint32_t v, char *buf,
                                  size_t buflen)
{
    /* NVIDIA's proprietary driver packs 10.8.8.6 bits; nouveau/NVK on the same vendor id use
     * the Mesa (standard) layout, so the driver id wins when the device reports one. */
    int nvidia = driver_id ? driver_id == VK_DRIVER_ID_NVIDIA_PROPRIETARY
                           : vendor_id == VENDOR_NVIDIA;
    if (nvidia)
        snprintf(buf, buflen, "%u.%u.%u.%u", v >> 22, (v >> 14) & 0xffu, (v >> 6) & 0xffu,
                 v & 0x3fu);
    else /* VK_MAKE_VERSION: 10.10.12 bits (no variant field in driver versions) */
        snprintf(buf, buflen, "%u.%u.%u", v >> 22, (v >> 12) & 0x3ffu, v & 0xfffu);
    return buf;
}

uint32_t vk_effective_api(const vk_ctx *ctx, uint32_t device_api)
{
    return device_api < ctx->api_version ? device_api : ctx->api_version;
}

int vk_device_has_extension(const vk_ctx *ctx, VkPhysicalDevice pd, const char *name)
{
    uint32_t n = 0;
    if (ctx->fn.EnumerateDeviceExtensionProperties(pd, NULL, &n, NULL) != VK_SUCCESS || n == 0)
        return 0;
    VkExtensionProperties *ext = calloc(n, sizeof *ext);
    if (!ext)
        return 0;
    int found = 0;
    /* VK_INCOMPLETE only means the list grew between the calls; what we got is still valid. */
    VkResult r = ctx->fn.EnumerateDeviceExtensionProperties(pd, NULL, &n, ext);
    if (r == VK_SUCCESS || r == VK_INCOMPLETE)
        for (uint32_t i = 0; i < n && !found; i++)
            found = !strcmp(ext[i].extensionName, name);
    free(ext);
    return found;
}

static vk_device_type map_type(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return VK_DEVTYPE_DISCRETE;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return VK_DEVTYPE_INTEGRATED;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return VK_DEVTYPE_VIRTUAL;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return VK_DEVTYPE_CPU;
    default: return VK_DEVTYPE_OTHER;
    }
}

/* Core 1.0 properties: name, type, versions, compute limits. */
static void probe_basic(const vk_ctx *ctx, VkPhysicalDevice pd, vk_device_info *out)
{
    VkPhysicalDeviceProperties p;
    ctx->fn.GetPhysicalDeviceProperties(pd, &p);
    snprintf(out->name, sizeof out->name, "%s", p.deviceName);
    out->type = map_type(p.deviceType);
    out->vendor_id = p.vendorID;
    memcpy(out->pipeline_cache_uuid, p.pipelineCacheUUID, sizeof out->pipeline_cache_uuid);
    out->device_id = p.deviceID;
    out->api_version_raw = p.apiVersion;
    vk_version_str(p.apiVersion, out->api_version, sizeof out->api_version);
    out->driver_version_raw = p.driverVersion;
    const VkPhysicalDeviceLimits *l = &p.limits;
    out->max_storage_buffer_range = l->maxStorageBufferRange;
    out->max_texel_buffer_elements = l->maxTexelBufferElements;
    for (int i = 0; i < 3; i++) {
        out->max_compute_workgroup_count[i] = l->maxComputeWorkGroupCount[i];
        out->max_compute_workgroup_size[i] = l->maxComputeWorkGroupSize[i];
    }
    out->max_compute_workgroup_invocations = l->maxComputeWorkGroupInvocations;
    out->max_compute_shared_memory = l->maxComputeSharedMemorySize;
    out->max_push_constants_size = l->maxPushConstantsSize;
}

/* Subgroup, maintenance3 (1.1 core) and driver properties (1.2 core or extension). */
static void probe_properties2(const vk_ctx *ctx, VkPhysicalDevice pd, uint32_t api,
                              vk_device_info *out)
{
    VkPhysicalDeviceDriverProperties drv = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES,
    };
    VkPhysicalDeviceMaintenance3Properties m3 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES,
    };
    VkPhysicalDeviceSubgroupProperties sg = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES,
        .pNext = &m3,
    };
    int has_driver = api >= VK_API_VERSION_1_2 ||
                     vk_device_has_extension(ctx, pd, VK_KHR_DRIVER_PROPERTIES_EXTENSION_NAME);
    if (has_driver)
        m3.pNext = &drv;
    VkPhysicalDeviceProperties2 p2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                       .pNext = &sg };
    ctx->fn.GetPhysicalDeviceProperties2(pd, &p2);

    out->subgroup_size = sg.subgroupSize;
    out->subgroup_ops = sg.supportedOperations & 0xffu;
    out->subgroup_in_compute = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) != 0;
    out->max_memory_allocation_size = m3.maxMemoryAllocationSize;
    if (has_driver) {
        out->driver_id = drv.driverID;
        snprintf(out->driver_name, sizeof out->driver_name, "%s", drv.driverName);
        snprintf(out->driver_info, sizeof out->driver_info, "%s", drv.driverInfo);
    }
}

/* Arithmetic and storage features, each chained only where it exists for this device. */
static void probe_features2(const vk_ctx *ctx, VkPhysicalDevice pd, uint32_t api,
                            vk_device_info *out)
{
    VkPhysicalDevice16BitStorageFeatures s16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
    };
    VkPhysicalDevice8BitStorageFeatures s8 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES,
    };
    VkPhysicalDeviceShaderFloat16Int8Features f16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
    };
    VkPhysicalDeviceShaderIntegerDotProductFeatures dot = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES,
    };
    VkPhysicalDeviceFeatures2 f2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                     .pNext = &s16 };
    void **tail = &s16.pNext;
    int v12 = api >= VK_API_VERSION_1_2, v13 = api >= VK_API_VERSION_1_3;
    if (v12 || vk_device_has_extension(ctx, pd, VK_KHR_8BIT_STORAGE_EXTENSION_NAME)) {
        *tail = &s8;
        tail = &s8.pNext;
    }
    if (v12 || vk_device_has_extension(ctx, pd, VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME)) {
        *tail = &f16;
        tail = &f16.pNext;
    }
    if (v13 ||
        vk_device_has_extension(ctx, pd, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME)) {
        *tail = &dot;
        tail = &dot.pNext;
    }
    ctx->fn.GetPhysicalDeviceFeatures2(pd, &f2);
    out->storage16 = s16.storageBuffer16BitAccess;
    out->storage8 = s8.storageBuffer8BitAccess;
    out->fp16 = f16.shaderFloat16;
    out->int8 = f16.shaderInt8;
    out->int_dot = dot.shaderIntegerDotProduct;
}

/* Heaps, their host visibility (through any memory type on them) and budgets if reported. */
static void probe_memory(const vk_ctx *ctx, VkPhysicalDevice pd, uint32_t api,
                         vk_device_info *out)
{
    VkPhysicalDeviceMemoryBudgetPropertiesEXT budget = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT,
    };
    VkPhysicalDeviceMemoryProperties2 m2 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2,
    };
    const VkPhysicalDeviceMemoryProperties *m = &m2.memoryProperties;
    if (api >= VK_API_VERSION_1_1) {
        out->has_budget = vk_device_has_extension(ctx, pd, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
        if (out->has_budget)
            m2.pNext = &budget;
        ctx->fn.GetPhysicalDeviceMemoryProperties2(pd, &m2);
    } else {
        ctx->fn.GetPhysicalDeviceMemoryProperties(pd, &m2.memoryProperties);
    }
    out->heap_count = m->memoryHeapCount < VK_MAX_HEAPS ? m->memoryHeapCount : VK_MAX_HEAPS;
    for (uint32_t h = 0; h < out->heap_count; h++) {
        vk_heap_info *hi = &out->heaps[h];
        hi->size = m->memoryHeaps[h].size;
        hi->device_local = (m->memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) != 0;
        for (uint32_t t = 0; t < m->memoryTypeCount; t++)
            if (m->memoryTypes[t].heapIndex == h &&
                (m->memoryTypes[t].propertyFlags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT))
                hi->host_visible = 1;
        if (out->has_budget) {
            hi->budget = budget.heapBudget[h];
            hi->usage = budget.heapUsage[h];
        }
    }
}

static int probe_compute_queue(const vk_ctx *ctx, VkPhysicalDevice pd)
{
    uint32_t n = 0;
    ctx->fn.GetPhysicalDeviceQueueFamilyProperties(pd, &n, NULL);
    VkQueueFamilyProperties *q = calloc(n ? n : 1, sizeof *q);
    if (!q)
        return 0;
    ctx->fn.GetPhysicalDeviceQueueFamilyProperties(pd, &n, q);
    int found = 0;
    for (uint32_t i = 0; i < n && !found; i++)
        found = (q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && q[i].queueCount > 0;
    free(q);
    return found;
}

void vk_probe_device(const vk_ctx *ctx, VkPhysicalDevice pd, uint32_t index, vk_device_info *out)
{
    memset(out, 0, sizeof *out);
    out->index = index;
    probe_basic(ctx, pd, out);
    uint32_t api = vk_effective_api(ctx, out->api_version_raw);
    /* A Vulkan 1.0 device gets no *2 queries: the 1.1 entry points may not reach it. */
    if (api >= VK_API_VERSION_1_1) {
        probe_properties2(ctx, pd, api, out);
        probe_features2(ctx, pd, api, out);
    }
    probe_memory(ctx, pd, api, out);
    out->has_compute_queue = probe_compute_queue(ctx, pd);
    vk_driver_version_str(out->driver_id, out->vendor_id, out->driver_version_raw,
                          out->driver_version, sizeof out->driver_version);
}

/* ---- choice ---- */

static int type_rank(vk_device_type t)
{
    switch (t) {
    case VK_DEVTYPE_DISCRETE: return 4;
    case VK_DEVTYPE_INTEGRATED: return 3;
    case VK_DEVTYPE_VIRTUAL: return 2;
    case VK_DEVTYPE_CPU: return 1;
    case VK_DEVTYPE_OTHER: break;
    }
    return 0;
}

/* Strictly better: higher type rank, then more device-local memory. Equal candidates keep
 * the earlier (lower) index because the scan only replaces on "strictly better". */
static int better(const vk_device_info *a, const vk_device_info *b)
{
    int ra = type_rank(a->type), rb = type_rank(b->type);
    if (ra != rb)
        return ra > rb;
    return vk_device_local_bytes(a) > vk_device_local_bytes(b);
}

static void fmt_gib(uint64_t bytes, char *buf, size_t buflen)
{
    if (bytes >= (1ull << 30))
        snprintf(buf, buflen, "%.1f GiB", (double)bytes / (double)(1ull << 30));
    else
        snprintf(buf, buflen, "%.0f MiB", (double)bytes / (double)(1ull << 20));
}

static const char *rank_reason(const vk_device_info *d)
{
    switch (d->type) {
    case VK_DEVTYPE_DISCRETE: return "discrete GPU preferred";
    case VK_DEVTYPE_INTEGRATED: return "integrated GPU preferred: no discrete GPU";
    case VK_DEVTYPE_VIRTUAL: return "virtual GPU preferred: no discrete or integrated GPU";
    case VK_DEVTYPE_CPU:
        return vk_device_is_lavapipe(d) ? "CPU device (lavapipe): no GPU found"
                                        : "CPU device: no GPU found";
    case VK_DEVTYPE_OTHER: break;
    }
    return "no GPU or CPU device found; first of unknown type";
}

/* Says why devs[best] won among automatic candidates. */
static void auto_reason(const vk_device_info *devs, uint32_t n, uint32_t best, vk_choice *out)
{
    const vk_device_info *b = &devs[best];
    uint32_t same = 0, same_heap = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (type_rank(devs[i].type) != type_rank(b->type))
            continue;
        same++;
        same_heap += vk_device_local_bytes(&devs[i]) == vk_device_local_bytes(b);
    }
    if (n == 1 && b->type != VK_DEVTYPE_CPU) {
        snprintf(out->reason, sizeof out->reason, "only device");
    } else if (same == 1) {
        snprintf(out->reason, sizeof out->reason, "%s", rank_reason(b));
    } else if (same_heap == 1) {
        char gib[32];
        fmt_gib(vk_device_local_bytes(b), gib, sizeof gib);
        snprintf(out->reason, sizeof out->reason, "%s; largest device-local heap (%s) of %u",
                 rank_reason(b), gib, same);
    } else {
        snprintf(out->reason, sizeof out->reason,
                 "%s; lowest index of %u with equal device-local heaps", rank_reason(b),
                 same_heap);
    }
}

vk_status vk_choose_device(const vk_device_info *devs, uint32_t n, int has_index, uint32_t index,
                           const char *origin, vk_choice *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (n == 0) {
        if (err)
            snprintf(err, errlen, "no Vulkan devices to choose from");
        return VK_STATUS_NO_DEVICE;
    }
    if (has_index) {
        const char *sep = origin && origin[0] == '-' ? " " : "=";
        if (index >= n) {
            char from[96] = "";
            if (origin)
                snprintf(from, sizeof from, "%s%s%u: ", origin, sep, index);
            if (err)
                snprintf(err, errlen,
                         "%sdevice index %u is out of range: %u device%s found (0..%u)", from,
                         index, n, n == 1 ? "" : "s", n - 1);
            return VK_STATUS_BAD_INDEX;
        }
        out->index = index;
        if (origin)
            snprintf(out->reason, sizeof out->reason, "chosen by %s%s%u", origin, sep, index);
        else
            snprintf(out->reason, sizeof out->reason, "chosen by explicit index %u", index);
        return VK_STATUS_OK;
    }
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (better(&devs[i], &devs[best]))
            best = i;
    out->index = best;
    auto_reason(devs, n, best, out);
    return VK_STATUS_OK;
}

int vk_auto_backend_is_cpu(const vk_device_info *chosen, int named, char *why, size_t len)
{
    if (!chosen) {
        snprintf(why, len, "no Vulkan device");
        return 1;
    }
    int lvp = vk_device_is_lavapipe(chosen);
    if (chosen->type != VK_DEVTYPE_CPU && !lvp) {
        snprintf(why, len, "%s is %s %s", chosen->name,
                 chosen->type == VK_DEVTYPE_INTEGRATED ? "an" : "a",
                 chosen->type == VK_DEVTYPE_OTHER ? "device of unknown type, not a CPU"
                                                  : vk_device_type_str(chosen->type));
        return 0;
    }
    if (named) {
        snprintf(why, len, "%s named by the user, although it is a CPU Vulkan driver",
                 lvp ? "lavapipe" : chosen->name);
        return 0;
    }
    snprintf(why, len, "faster than %s, a CPU Vulkan driver; --backend vulkan to use it",
             lvp ? "lavapipe" : chosen->name);
    return 1;
}
