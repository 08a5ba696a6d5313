/* Internals shared by the engine/vk_*.c files: the vk_ctx fields, the Vulkan function table
 * and VK_TRY. Only engine/vk_*.c include this (and tests/test_vk.c, to provoke the validation
 * layer on purpose); everyone else sees the opaque handles of engine/vk.h.
 *
 * VK_NO_PROTOTYPES: libvulkan is dlopen'd, so every Vulkan call goes through ctx->fn, and a
 * direct call to a vk* symbol fails to compile instead of silently re-adding a link-time
 * dependency on the loader.
 */
#ifndef SIZEUP_VK_INTERNAL_H
#define SIZEUP_VK_INTERNAL_H

#define VK_NO_PROTOTYPES
#include <pthread.h>
#include <stdatomic.h>
#include <vulkan/vulkan.h>

#include "engine/vk.h"
#include "shaders.h"

/* Resolved with vkGetInstanceProcAddr(NULL, ...). */
#define VK_GLOBAL_FNS(X) \
    X(CreateInstance) X(EnumerateInstanceExtensionProperties) X(EnumerateInstanceLayerProperties)

/* Resolved with vkGetInstanceProcAddr(instance, ...); all are core 1.0/1.1. */
#define VK_INSTANCE_FNS(X)                                                                   \
    X(DestroyInstance) X(EnumeratePhysicalDevices) X(GetPhysicalDeviceProperties)            \
    X(GetPhysicalDeviceProperties2) X(GetPhysicalDeviceFeatures2)                            \
    X(GetPhysicalDeviceMemoryProperties) X(GetPhysicalDeviceMemoryProperties2)               \
    X(GetPhysicalDeviceQueueFamilyProperties) X(EnumerateDeviceExtensionProperties)          \
    X(CreateDevice) X(GetDeviceProcAddr)

/* VK_EXT_debug_utils; NULL unless validation is on. */
#define VK_DEBUG_FNS(X) \
    X(CreateDebugUtilsMessengerEXT) X(DestroyDebugUtilsMessengerEXT) X(SubmitDebugUtilsMessageEXT)

/* Resolved with vkGetDeviceProcAddr, skipping the loader's dispatch trampoline. */
#define VK_DEVICE_FNS(X)                                                                     \
    X(DestroyDevice) X(GetDeviceQueue) X(DeviceWaitIdle) X(QueueSubmit) X(CreateBuffer)      \
    X(DestroyBuffer) X(GetBufferMemoryRequirements) X(AllocateMemory) X(FreeMemory)          \
    X(BindBufferMemory) X(MapMemory) X(UnmapMemory) X(CreateShaderModule)                    \
    X(DestroyShaderModule) X(CreateDescriptorSetLayout) X(DestroyDescriptorSetLayout)        \
    X(CreatePipelineLayout) X(DestroyPipelineLayout) X(CreateComputePipelines)               \
    X(DestroyPipeline) X(CreateDescriptorPool) X(DestroyDescriptorPool)                      \
    X(AllocateDescriptorSets) X(UpdateDescriptorSets) X(CreateCommandPool)                   \
    X(DestroyCommandPool) X(AllocateCommandBuffers) X(ResetCommandBuffer)                    \
    X(BeginCommandBuffer) X(EndCommandBuffer) X(CmdBindPipeline) X(CmdBindDescriptorSets)    \
    X(CmdPushConstants) X(CmdDispatch) X(CmdPipelineBarrier) X(CreateFence) X(DestroyFence)  \
    X(ResetFences) X(WaitForFences) X(ResetDescriptorPool) X(CmdCopyBuffer) X(FreeCommandBuffers)  \
    X(CreateBufferView) X(DestroyBufferView) X(CreatePipelineCache) X(DestroyPipelineCache) \
    X(GetPipelineCacheData)

#define VK_FN_FIELD(name) PFN_vk##name name;
typedef struct vk_fns {
    PFN_vkGetInstanceProcAddr GetInstanceProcAddr;
    PFN_vkEnumerateInstanceVersion EnumerateInstanceVersion; /* NULL on a 1.0 loader */
    VK_GLOBAL_FNS(VK_FN_FIELD)
    VK_INSTANCE_FNS(VK_FN_FIELD)
    VK_DEBUG_FNS(VK_FN_FIELD)
    VK_DEVICE_FNS(VK_FN_FIELD)
} vk_fns;
#undef VK_FN_FIELD

struct vk_ctx {
    void *lib; /* dlopen handle of the loader */
    size_t objects_before_loader; /* shared objects mapped before it (see vk_device.c) */
    vk_fns fn;
    uint32_t loader_version;
    uint32_t api_version; /* what the instance asked for */
    VkInstance instance;

    /* validation (VK_EXT_debug_utils) */
    int validate;
    VkDebugUtilsMessengerEXT messenger;
    void (*on_validation)(void *user, vk_msg_severity sev, const char *msg);
    void *user;
    atomic_uint n_validation;
    char validation_first[1024]; /* written once, by whoever bumps n_validation from 0 */

    /* probe */
    uint32_t n_devices;
    VkPhysicalDevice *phys;  /* (n_devices) */
    vk_device_info *devices; /* (n_devices) */
    vk_choice choice;

    /* logical device on choice.index, once vk_ctx_start_device ran */
    VkDevice dev;
    VkQueue queue;
    uint32_t queue_family;
    VkPhysicalDeviceMemoryProperties mem;
    VkCommandPool cmd_pool;
    VkCommandBuffer cmd; /* one at a time, guarded by submit_lock */
    VkFence fence;
    pthread_mutex_t submit_lock;

    /* pipeline cache (vk_cache.c): every kernel is created through it once opened */
    VkPipelineCache pcache;   /* VK_NULL_HANDLE until vk_ctx_pipeline_cache_open */
    char pcache_path[4096];   /* the file it is saved to */
    size_t pcache_saved;      /* bytes in the file as loaded or last saved; 0: none usable */
    pthread_mutex_t pcache_lock; /* one save at a time */

};

/* Buffers and kernels (vk_compute.c), shared with recorded sequences (vk_seq.c). */
struct vk_buffer {
    vk_ctx *ctx;
    VkBuffer buf;
    VkDeviceMemory mem;
    void *map; /* persistent mapping of the whole allocation */
    uint64_t size;
    VkBufferView view;  /* R32_UINT view of the whole buffer, or VK_NULL_HANDLE when too big */
    VkBufferView view4; /* R32G32B32A32_UINT view of its whole 16-byte words, or NULL */
};

struct vk_kernel {
    vk_ctx *ctx;
    uint32_t n_buffers, push_size;
    uint32_t texel_mask; /* bit i: binding i is an R32_UINT uniform texel buffer, bit 8 + i an
                          * R32G32B32A32_UINT one; else a storage buffer */
    VkShaderModule module;
    VkDescriptorSetLayout set_layout;
    VkPipelineLayout layout;
    VkPipeline pipeline;
    VkDescriptorPool pool;
    VkDescriptorSet set; /* rewritten by each run, under ctx->submit_lock */
};

/* Descriptor writes binding bufs[0..k->n_buffers-1] to set as k's layout declares them;
 * info and views are the caller's storage (VK_KERNEL_MAX_BUFFERS entries). */
void vk_kernel_writes(const vk_kernel *k, vk_buffer *const *bufs, VkDescriptorSet set,
                      VkDescriptorBufferInfo *info, VkWriteDescriptorSet *w);

/* NULL when every texel binding of k has its view in bufs, else the missing view's format
 * name, with the binding in *index. */
const char *vk_kernel_missing_view(const vk_kernel *k, vk_buffer *const *bufs, uint32_t *index);

/* Records status + message for the calling thread (vk_ctx_errmsg says why not on ctx) and
 * returns the status. */
vk_status vk_set_error(vk_ctx *ctx, vk_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records a failing VkResult: "EXPR failed: VK_ERROR_... (file:line)". Out-of-memory results
 * map to VK_STATUS_NO_MEMORY, the rest to VK_STATUS_VULKAN. Returns the status. */
vk_status vk_set_result(vk_ctx *ctx, const char *expr, VkResult r, const char *file, int line);

/* The status of the calling thread's last failure, for VK_TRY's `fail:` paths. */
vk_status vk_last_status(void);

/* "VK_ERROR_OUT_OF_DEVICE_MEMORY", ...: static strings. */
const char *vk_result_str(VkResult r);

/* Checks a VkResult: on failure records it on the `vk_ctx *ctx` in scope and jumps to the
 * function's `fail:` label. Never asserts: drivers fail for reasons callers must see. */
#define VK_TRY(expr)                                                         \
    do {                                                                     \
        VkResult vk_try_r_ = (expr);                                         \
        if (vk_try_r_ != VK_SUCCESS) {                                       \
            vk_set_result(ctx, #expr, vk_try_r_, __FILE__, __LINE__);        \
            goto fail;                                                       \
        }                                                                    \
    } while (0)

/* vk_probe.c: fills *out from one physical device of an instance created by vk_device.c. */
void vk_probe_device(const vk_ctx *ctx, VkPhysicalDevice pd, uint32_t index, vk_device_info *out);

/* Effective API version for a device: min(device apiVersion, instance apiVersion). */
uint32_t vk_effective_api(const vk_ctx *ctx, uint32_t device_api);

/* 1 when the device lists extension `name`. */
int vk_device_has_extension(const vk_ctx *ctx, VkPhysicalDevice pd, const char *name);

/* The vk_shader_table entry called name, or NULL. */
const vk_shader_blob *vk_find_shader(const char *name);

#endif
