/* Vulkan context: loader, instance, validation messenger, probe, choice and logical device.
 *
 * vk_ctx_open goes loader -> instance -> probe every physical device -> choose one, and stops
 * there: listing devices (`sizeup devices`) must not pay for a logical device. A model (or the
 * self-check) calls vk_ctx_start_device, which creates the device, one compute queue, and a
 * command buffer + fence for the minimal compute path in vk_compute.c.
 *
 * The loader is dlopen'd (see engine/vk.h); it and the drivers it loads stay mapped for the
 * life of the process (see pin_new_objects). Every failure becomes a vk_status plus a message
 * on the ctx naming the call or the missing piece.
 */
#include <dlfcn.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/vk_internal.h"

#define DEFAULT_LOADER "libvulkan.so.1"
#define VALIDATION_LAYER "VK_LAYER_KHRONOS_validation"

const char *vk_status_str(vk_status s)
{
    switch (s) {
    case VK_STATUS_OK: return "ok";
    case VK_STATUS_NO_LOADER: return "no Vulkan loader";
    case VK_STATUS_NO_INSTANCE: return "cannot create a Vulkan instance";
    case VK_STATUS_NO_DEVICE: return "no Vulkan device";
    case VK_STATUS_BAD_INDEX: return "device index out of range";
    case VK_STATUS_NO_VALIDATION: return "validation layer missing";
    case VK_STATUS_UNSUPPORTED: return "unsupported by the device";
    case VK_STATUS_NO_SHADER: return "no such shader";
    case VK_STATUS_BAD_ARG: return "bad argument";
    case VK_STATUS_NO_MEMORY: return "out of memory";
    case VK_STATUS_VULKAN: return "Vulkan call failed";
    }
    return "unknown status";
}

const char *vk_result_str(VkResult r)
{
    switch (r) {
#define R(x) case x: return #x;
        R(VK_SUCCESS) R(VK_NOT_READY) R(VK_TIMEOUT) R(VK_INCOMPLETE)
        R(VK_ERROR_OUT_OF_HOST_MEMORY) R(VK_ERROR_OUT_OF_DEVICE_MEMORY)
        R(VK_ERROR_INITIALIZATION_FAILED) R(VK_ERROR_DEVICE_LOST) R(VK_ERROR_MEMORY_MAP_FAILED)
        R(VK_ERROR_LAYER_NOT_PRESENT) R(VK_ERROR_EXTENSION_NOT_PRESENT)
        R(VK_ERROR_FEATURE_NOT_PRESENT) R(VK_ERROR_INCOMPATIBLE_DRIVER)
        R(VK_ERROR_TOO_MANY_OBJECTS) R(VK_ERROR_FORMAT_NOT_SUPPORTED)
        R(VK_ERROR_FRAGMENTED_POOL) R(VK_ERROR_OUT_OF_POOL_MEMORY) R(VK_ERROR_UNKNOWN)
        R(VK_ERROR_INVALID_EXTERNAL_HANDLE) R(VK_ERROR_VALIDATION_FAILED_EXT)
#undef R
    default: return "VkResult(unknown)";
    }
}

/* Per thread (engine/vk.h, vk_ctx_errmsg): two sessions failing at once on one ctx each keep
 * their own message. */
static _Thread_local char thread_err[1024];
static _Thread_local vk_status thread_status;

vk_status vk_set_error(vk_ctx *ctx, vk_status st, const char *fmt, ...)
{
    (void)ctx;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(thread_err, sizeof thread_err, fmt, ap);
    va_end(ap);
    thread_status = st;
    return st;
}

vk_status vk_last_status(void) { return thread_status; }

vk_status vk_set_result(vk_ctx *ctx, const char *expr, VkResult r, const char *file, int line)
{
    vk_status st = (r == VK_ERROR_OUT_OF_HOST_MEMORY || r == VK_ERROR_OUT_OF_DEVICE_MEMORY)
                       ? VK_STATUS_NO_MEMORY
                       : VK_STATUS_VULKAN;
    return vk_set_error(ctx, st, "%s failed: %s (%s:%d)", expr, vk_result_str(r), file, line);
}

/* ---- loader ---- */

/* Drivers stay mapped for the life of the process. The loader dlcloses every driver (and
 * lavapipe takes LLVM with it) in vkDestroyInstance; reloading LLVM on the next vk_ctx_open
 * costs time, and memory a driver keeps in its own statics turns into "leaks" from
 * "<unknown module>" once it is unmapped, which no LeakSanitizer suppression can name. So
 * every shared object that appeared from loading the loader up to vkCreateInstance (the
 * drivers, their dependencies, implicit layers) is marked RTLD_NODELETE. */
static int count_object(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)info;
    (void)size;
    ++*(size_t *)data;
    return 0;
}

static size_t loaded_object_count(void)
{
    size_t n = 0;
    dl_iterate_phdr(count_object, &n);
    return n;
}

typedef struct pin_walk {
    size_t skip; /* objects already loaded before: left alone */
    size_t seen;
} pin_walk;

static int pin_object(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    pin_walk *w = data;
    if (w->seen++ < w->skip || !info->dlpi_name || !info->dlpi_name[0])
        return 0;
    /* RTLD_NOLOAD: only flags an object that is already there; the handle is dropped again. */
    void *h = dlopen(info->dlpi_name, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE);
    if (h)
        dlclose(h);
    return 0;
}

/* Link-map order is load order, so the objects past the first n_before are the new ones. */
static void pin_new_objects(size_t n_before)
{
    pin_walk w = { n_before, 0 };
    dl_iterate_phdr(pin_object, &w);
}

/* Resolves the loader's entry point and the global functions; needs a 1.1+ loader because the
 * probe relies on vkGetPhysicalDeviceProperties2 without extensions. */
static vk_status load_loader(vk_ctx *ctx, const char *path)
{
    /* The loader opens the drivers already in vkEnumerateInstance*, so count from here. */
    ctx->objects_before_loader = loaded_object_count();
    ctx->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE); /* see pin_new_objects */
    if (!ctx->lib)
        return vk_set_error(ctx, VK_STATUS_NO_LOADER,
                            "cannot load the Vulkan loader %s: %s (install libvulkan1 and a "
                            "driver, e.g. mesa-vulkan-drivers)",
                            path, dlerror());
    void *sym = dlsym(ctx->lib, "vkGetInstanceProcAddr");
    if (!sym)
        return vk_set_error(ctx, VK_STATUS_NO_LOADER, "%s has no vkGetInstanceProcAddr", path);
    /* ISO C has no object->function pointer cast; POSIX guarantees this copy works. */
    memcpy(&ctx->fn.GetInstanceProcAddr, &sym, sizeof sym);
    PFN_vkGetInstanceProcAddr gipa = ctx->fn.GetInstanceProcAddr;
    ctx->fn.EnumerateInstanceVersion =
        (PFN_vkEnumerateInstanceVersion)gipa(NULL, "vkEnumerateInstanceVersion");
#define LOAD(name)                                                                            \
    if (!(ctx->fn.name = (PFN_vk##name)gipa(NULL, "vk" #name)))                               \
        return vk_set_error(ctx, VK_STATUS_NO_LOADER, "the Vulkan loader %s lacks vk" #name, \
                            path);
    VK_GLOBAL_FNS(LOAD)
#undef LOAD
    ctx->loader_version = VK_API_VERSION_1_0;
    if (ctx->fn.EnumerateInstanceVersion &&
        ctx->fn.EnumerateInstanceVersion(&ctx->loader_version) != VK_SUCCESS)
        ctx->loader_version = VK_API_VERSION_1_0;
    if (ctx->loader_version < VK_API_VERSION_1_1) {
        char v[24];
        return vk_set_error(ctx, VK_STATUS_NO_LOADER,
                            "the Vulkan loader %s is version %s; sizeup needs 1.1 or newer", path,
                            vk_version_str(ctx->loader_version, v, sizeof v));
    }
    return VK_STATUS_OK;
}

/* 1 when the loader, an implicit layer or `layer` (may be NULL) offers instance extension name. */
static int has_instance_ext(vk_ctx *ctx, const char *layer, const char *name)
{
    uint32_t n = 0;
    if (ctx->fn.EnumerateInstanceExtensionProperties(layer, &n, NULL) != VK_SUCCESS || !n)
        return 0;
    VkExtensionProperties *e = calloc(n, sizeof *e);
    int found = 0;
    if (e && ctx->fn.EnumerateInstanceExtensionProperties(layer, &n, e) >= 0)
        for (uint32_t i = 0; i < n && !found; i++)
            found = !strcmp(e[i].extensionName, name);
    free(e);
    return found;
}

static int has_layer(vk_ctx *ctx, const char *name)
{
    uint32_t n = 0;
    if (ctx->fn.EnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || !n)
        return 0;
    VkLayerProperties *l = calloc(n, sizeof *l);
    int found = 0;
    if (l && ctx->fn.EnumerateInstanceLayerProperties(&n, l) >= 0)
        for (uint32_t i = 0; i < n && !found; i++)
            found = !strcmp(l[i].layerName, name);
    free(l);
    return found;
}

/* ---- validation messages ---- */

/* Counts validation/performance warnings and errors, plus errors of any type (info/verbose
 * are not requested). General-type warnings are skipped: they are loader chatter such as
 * "env var 'VK_INSTANCE_LAYERS' defined and adding layers", not misuse of the API, and the
 * validation run sets exactly that variable. May run on a driver thread. */
static VKAPI_ATTR VkBool32 VKAPI_CALL on_debug_message(
    VkDebugUtilsMessageSeverityFlagBitsEXT sev, VkDebugUtilsMessageTypeFlagsEXT types,
    const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
    vk_ctx *ctx = user;
    int is_error = (sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) != 0;
    if (!is_error && !(types & (VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                                VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT)))
        return VK_FALSE;
    const char *msg = data && data->pMessage ? data->pMessage : "(no message text)";
    if (atomic_fetch_add(&ctx->n_validation, 1) == 0)
        snprintf(ctx->validation_first, sizeof ctx->validation_first, "%s", msg);
    if (ctx->on_validation)
        ctx->on_validation(ctx->user, is_error ? VK_MSG_ERROR : VK_MSG_WARNING, msg);
    return VK_FALSE; /* VK_TRUE (abort the call) is reserved for layer development */
}

static VkDebugUtilsMessengerCreateInfoEXT messenger_info(vk_ctx *ctx)
{
    return (VkDebugUtilsMessengerCreateInfoEXT){
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = on_debug_message,
        .pUserData = ctx,
    };
}

/* ---- instance ---- */

/* The debug-utils extension comes from the loader or from the layer itself. */
static vk_status check_validation_available(vk_ctx *ctx)
{
    if (!has_layer(ctx, VALIDATION_LAYER))
        return vk_set_error(ctx, VK_STATUS_NO_VALIDATION,
                            "validation requested but %s is not "
                            "installed (Debian package vulkan-validationlayers)",
                            VALIDATION_LAYER);
    if (!has_instance_ext(ctx, NULL, VK_EXT_DEBUG_UTILS_EXTENSION_NAME) &&
        !has_instance_ext(ctx, VALIDATION_LAYER, VK_EXT_DEBUG_UTILS_EXTENSION_NAME))
        return vk_set_error(ctx, VK_STATUS_NO_VALIDATION,
                            "validation requested but " VK_EXT_DEBUG_UTILS_EXTENSION_NAME
                            " is not available");
    return VK_STATUS_OK;
}

static vk_status load_instance_fns(vk_ctx *ctx)
{
#define LOAD(name)                                                                          \
    if (!(ctx->fn.name = (PFN_vk##name)ctx->fn.GetInstanceProcAddr(ctx->instance,           \
                                                                   "vk" #name)))            \
        return vk_set_error(ctx, VK_STATUS_NO_INSTANCE, "the Vulkan loader lacks vk" #name);
    VK_INSTANCE_FNS(LOAD)
    if (ctx->validate) {
        VK_DEBUG_FNS(LOAD)
    }
#undef LOAD
    return VK_STATUS_OK;
}

/* Instance with portability enumeration when offered (MoltenVK-style drivers are listed only
 * then) and, for validation, the Khronos layer + a messenger that also sees instance creation
 * and destruction through VkInstanceCreateInfo.pNext. */
static vk_status create_instance(vk_ctx *ctx)
{
    const char *exts[2], *layers[1];
    uint32_t n_ext = 0, n_layer = 0;
    VkInstanceCreateFlags flags = 0;
    if (has_instance_ext(ctx, NULL, VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
        exts[n_ext++] = VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME;
        flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
    }
    VkDebugUtilsMessengerCreateInfoEXT dbg = messenger_info(ctx);
    if (ctx->validate) {
        vk_status st = check_validation_available(ctx);
        if (st)
            return st;
        layers[n_layer++] = VALIDATION_LAYER;
        exts[n_ext++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
    }
    ctx->api_version = VK_API_VERSION_1_3; /* a 1.1+ loader accepts newer than it knows */
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "sizeup",
        .pEngineName = "sizeup",
        .apiVersion = ctx->api_version,
    };
    VkInstanceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .pNext = ctx->validate ? &dbg : NULL,
        .flags = flags,
        .pApplicationInfo = &app,
        .enabledLayerCount = n_layer,
        .ppEnabledLayerNames = layers,
        .enabledExtensionCount = n_ext,
        .ppEnabledExtensionNames = exts,
    };
    VkResult r = ctx->fn.CreateInstance(&ci, NULL, &ctx->instance);
    pin_new_objects(ctx->objects_before_loader);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER)
        return vk_set_error(ctx, VK_STATUS_NO_DEVICE,
                            "no Vulkan driver found (vkCreateInstance: %s); install a GPU "
                            "driver, or mesa-vulkan-drivers for the CPU device lavapipe",
                            vk_result_str(r));
    if (r != VK_SUCCESS) {
        ctx->instance = VK_NULL_HANDLE;
        return vk_set_error(ctx, VK_STATUS_NO_INSTANCE, "vkCreateInstance failed: %s",
                            vk_result_str(r));
    }
    vk_status st = load_instance_fns(ctx);
    if (st || !ctx->validate)
        return st;
    VK_TRY(ctx->fn.CreateDebugUtilsMessengerEXT(ctx->instance, &dbg, NULL, &ctx->messenger));
    return VK_STATUS_OK;
fail:
    return vk_last_status();
}

/* ---- probe ---- */

static vk_status probe_all(vk_ctx *ctx)
{
    uint32_t n = 0;
    VkResult r = ctx->fn.EnumeratePhysicalDevices(ctx->instance, &n, NULL);
    /* The loader answers INITIALIZATION_FAILED when every driver it found failed to
     * enumerate, which is what a driver without its hardware does (e.g. anv, no Intel GPU). */
    if (r == VK_ERROR_INITIALIZATION_FAILED || (r == VK_SUCCESS && n == 0))
        return vk_set_error(ctx, VK_STATUS_NO_DEVICE,
                            "the Vulkan drivers found no devices (vkEnumeratePhysicalDevices: "
                            "%s); install a GPU driver, or mesa-vulkan-drivers for the CPU "
                            "device lavapipe",
                            r == VK_SUCCESS ? "0 devices" : vk_result_str(r));
    VK_TRY(r);
    ctx->phys = calloc(n, sizeof *ctx->phys);
    ctx->devices = calloc(n, sizeof *ctx->devices);
    if (!ctx->phys || !ctx->devices)
        return vk_set_error(ctx, VK_STATUS_NO_MEMORY, "out of memory listing %u devices", n);
    /* VK_INCOMPLETE: a device appeared between the calls; keep the n there was room for. */
    r = ctx->fn.EnumeratePhysicalDevices(ctx->instance, &n, ctx->phys);
    if (r != VK_INCOMPLETE)
        VK_TRY(r);
    ctx->n_devices = n;
    for (uint32_t i = 0; i < n; i++)
        vk_probe_device(ctx, ctx->phys[i], i, &ctx->devices[i]);
    return VK_STATUS_OK;
fail:
    return vk_last_status();
}

/* ---- open / close ---- */

vk_status vk_ctx_open(const vk_open_opts *opts, vk_ctx **out, char *err, size_t errlen)
{
    static const vk_open_opts none;
    if (!opts)
        opts = &none;
    *out = NULL;
    vk_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        if (err)
            snprintf(err, errlen, "out of memory allocating the Vulkan context");
        return VK_STATUS_NO_MEMORY;
    }
    atomic_init(&ctx->n_validation, 0);
    pthread_mutex_init(&ctx->submit_lock, NULL);
    pthread_mutex_init(&ctx->pcache_lock, NULL);
    const char *env = getenv("SIZEUP_VK_VALIDATE");
    ctx->validate = opts->validate || (env && !strcmp(env, "1"));
    ctx->on_validation = opts->on_validation;
    ctx->user = opts->user;

    vk_status st = load_loader(ctx, opts->loader_path ? opts->loader_path : DEFAULT_LOADER);
    if (!st)
        st = create_instance(ctx);
    if (!st)
        st = probe_all(ctx);
    if (!st) {
        char why[1024] = "";
        st = vk_choose_device(ctx->devices, ctx->n_devices, opts->has_device_index,
                              opts->device_index, opts->device_origin, &ctx->choice, why,
                              sizeof why);
        if (st)
            vk_set_error(ctx, st, "%s", why);
    }
    if (st) {
        if (err)
            snprintf(err, errlen, "%s", thread_err);
        vk_ctx_close(ctx);
        return st;
    }
    *out = ctx;
    return VK_STATUS_OK;
}

static void stop_device(vk_ctx *ctx)
{
    if (!ctx->dev || !ctx->fn.DestroyDevice)
        return;
    /* Best effort: a lost device still has to be destroyed, so the result is not checked. */
    if (ctx->fn.DeviceWaitIdle)
        ctx->fn.DeviceWaitIdle(ctx->dev);
    if (ctx->fence)
        ctx->fn.DestroyFence(ctx->dev, ctx->fence, NULL);
    if (ctx->pcache)
        ctx->fn.DestroyPipelineCache(ctx->dev, ctx->pcache, NULL);
    ctx->pcache = VK_NULL_HANDLE;
    if (ctx->cmd_pool) /* frees ctx->cmd with it */
        ctx->fn.DestroyCommandPool(ctx->dev, ctx->cmd_pool, NULL);
    ctx->fn.DestroyDevice(ctx->dev, NULL);
    ctx->fence = VK_NULL_HANDLE;
    ctx->cmd_pool = VK_NULL_HANDLE;
    ctx->cmd = VK_NULL_HANDLE;
    ctx->dev = VK_NULL_HANDLE;
}

void vk_ctx_close(vk_ctx *ctx)
{
    if (!ctx)
        return;
    stop_device(ctx);
    if (ctx->messenger)
        ctx->fn.DestroyDebugUtilsMessengerEXT(ctx->instance, ctx->messenger, NULL);
    if (ctx->instance)
        ctx->fn.DestroyInstance(ctx->instance, NULL);
    free(ctx->phys);
    free(ctx->devices);
    if (ctx->lib)
        dlclose(ctx->lib);
    pthread_mutex_destroy(&ctx->submit_lock);
    pthread_mutex_destroy(&ctx->pcache_lock);
    free(ctx);
}

const char *vk_ctx_errmsg(const vk_ctx *ctx) { return ctx ? thread_err : "no Vulkan context"; }
uint32_t vk_ctx_loader_version(const vk_ctx *ctx) { return ctx->loader_version; }
uint32_t vk_ctx_device_count(const vk_ctx *ctx) { return ctx->n_devices; }
const vk_choice *vk_ctx_choice(const vk_ctx *ctx) { return &ctx->choice; }
int vk_ctx_validation_enabled(const vk_ctx *ctx) { return ctx->validate; }
unsigned vk_ctx_validation_count(const vk_ctx *ctx) { return atomic_load(&ctx->n_validation); }
const char *vk_ctx_validation_first(const vk_ctx *ctx) { return ctx->validation_first; }

const vk_device_info *vk_ctx_device_info(const vk_ctx *ctx, uint32_t i)
{
    return i < ctx->n_devices ? &ctx->devices[i] : NULL;
}

/* ---- logical device ---- */

/* The optional features the probe found, chained for vkCreateDevice, plus the extensions a
 * pre-1.2/1.3 device needs for them. Storage for the chain lives in *fc. */
typedef struct feature_chain {
    VkPhysicalDeviceFeatures2 f2;
    VkPhysicalDevice16BitStorageFeatures s16;
    VkPhysicalDevice8BitStorageFeatures s8;
    VkPhysicalDeviceShaderFloat16Int8Features f16;
    VkPhysicalDeviceShaderIntegerDotProductFeatures dot;
    const char *exts[8];
    uint32_t n_ext;
} feature_chain;

static void build_feature_chain(vk_ctx *ctx, VkPhysicalDevice pd, const vk_device_info *d,
                                feature_chain *fc)
{
    uint32_t api = vk_effective_api(ctx, d->api_version_raw);
    memset(fc, 0, sizeof *fc);
    fc->f2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2;
    void **tail = &fc->f2.pNext;
    /* Required whenever offered (Vulkan spec, VK_KHR_portability_subset). */
    if (vk_device_has_extension(ctx, pd, "VK_KHR_portability_subset"))
        fc->exts[fc->n_ext++] = "VK_KHR_portability_subset";
    if (d->storage16) {
        fc->s16 = (VkPhysicalDevice16BitStorageFeatures){
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
            .storageBuffer16BitAccess = VK_TRUE };
        *tail = &fc->s16;
        tail = &fc->s16.pNext;
    }
    if (d->storage8) {
        fc->s8 = (VkPhysicalDevice8BitStorageFeatures){
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES,
            .storageBuffer8BitAccess = VK_TRUE };
        *tail = &fc->s8;
        tail = &fc->s8.pNext;
        if (api < VK_API_VERSION_1_2)
            fc->exts[fc->n_ext++] = VK_KHR_8BIT_STORAGE_EXTENSION_NAME;
    }
    if (d->fp16 || d->int8) {
        fc->f16 = (VkPhysicalDeviceShaderFloat16Int8Features){
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
            .shaderFloat16 = d->fp16 ? VK_TRUE : VK_FALSE,
            .shaderInt8 = d->int8 ? VK_TRUE : VK_FALSE };
        *tail = &fc->f16;
        tail = &fc->f16.pNext;
        if (api < VK_API_VERSION_1_2)
            fc->exts[fc->n_ext++] = VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME;
    }
    if (d->int_dot) {
        fc->dot = (VkPhysicalDeviceShaderIntegerDotProductFeatures){
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES,
            .shaderIntegerDotProduct = VK_TRUE };
        *tail = &fc->dot;
        if (api < VK_API_VERSION_1_3)
            fc->exts[fc->n_ext++] = VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME;
    }
}

/* First family with compute: on every driver we know that is the universal queue, which is
 * the best-tested path; a dedicated async-compute queue buys nothing without overlap. */
static int find_compute_family(vk_ctx *ctx, VkPhysicalDevice pd, uint32_t *family)
{
    uint32_t n = 0;
    ctx->fn.GetPhysicalDeviceQueueFamilyProperties(pd, &n, NULL);
    VkQueueFamilyProperties *q = calloc(n ? n : 1, sizeof *q);
    if (!q)
        return 0;
    ctx->fn.GetPhysicalDeviceQueueFamilyProperties(pd, &n, q);
    int found = 0;
    for (uint32_t i = 0; i < n && !found; i++)
        if ((q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && q[i].queueCount > 0) {
            *family = i;
            found = 1;
        }
    free(q);
    return found;
}

static vk_status load_device_fns(vk_ctx *ctx)
{
#define LOAD(name)                                                                           \
    if (!(ctx->fn.name = (PFN_vk##name)ctx->fn.GetDeviceProcAddr(ctx->dev, "vk" #name)))     \
        return vk_set_error(ctx, VK_STATUS_VULKAN, "the Vulkan driver lacks vk" #name);
    VK_DEVICE_FNS(LOAD)
#undef LOAD
    return VK_STATUS_OK;
}

/* Command pool, the one reusable command buffer and its fence. */
static vk_status create_submit_objects(vk_ctx *ctx)
{
    VkCommandPoolCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = ctx->queue_family,
    };
    VK_TRY(ctx->fn.CreateCommandPool(ctx->dev, &pci, NULL, &ctx->cmd_pool));
    VkCommandBufferAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = ctx->cmd_pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    VK_TRY(ctx->fn.AllocateCommandBuffers(ctx->dev, &ai, &ctx->cmd));
    VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
    VK_TRY(ctx->fn.CreateFence(ctx->dev, &fci, NULL, &ctx->fence));
    return VK_STATUS_OK;
fail:
    return vk_last_status();
}

vk_status vk_ctx_start_device(vk_ctx *ctx)
{
    if (ctx->dev)
        return VK_STATUS_OK;
    const vk_device_info *d = &ctx->devices[ctx->choice.index];
    VkPhysicalDevice pd = ctx->phys[ctx->choice.index];
    if (!find_compute_family(ctx, pd, &ctx->queue_family))
        return vk_set_error(ctx, VK_STATUS_UNSUPPORTED, "device %u (%s) has no compute queue",
                            d->index, d->name);
    feature_chain fc;
    build_feature_chain(ctx, pd, d, &fc);
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = ctx->queue_family,
        .queueCount = 1,
        .pQueuePriorities = &prio,
    };
    VkDeviceCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .pNext = vk_effective_api(ctx, d->api_version_raw) >= VK_API_VERSION_1_1 ? &fc.f2 : NULL,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &qci,
        .enabledExtensionCount = fc.n_ext,
        .ppEnabledExtensionNames = fc.exts,
    };
    VK_TRY(ctx->fn.CreateDevice(pd, &dci, NULL, &ctx->dev));
    vk_status st = load_device_fns(ctx);
    if (st)
        goto fail;
    ctx->fn.GetDeviceQueue(ctx->dev, ctx->queue_family, 0, &ctx->queue);
    ctx->fn.GetPhysicalDeviceMemoryProperties(pd, &ctx->mem);
    st = create_submit_objects(ctx);
    if (st)
        goto fail;
    return VK_STATUS_OK;
fail:
    stop_device(ctx); /* releases only; the message still names the failed call */
    return vk_last_status();
}
