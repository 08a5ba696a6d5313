/* Vulkan instance and device layer.
 *
 * One vk_ctx is one Vulkan instance plus what the engine learned about every physical device,
 * the device it chose, and (once vk_ctx_start_device is called) a logical device with one
 * compute queue. Several models in one process share one vk_ctx; the handle is opaque and this
 * header does not include <vulkan/vulkan.h>, so app/ and ui/ see plain structs only.
 *
 * The Vulkan loader (libvulkan.so.1) is opened with dlopen when a vk_ctx is opened, not linked,
 * so a machine without Vulkan still runs every other sizeup command, and "no loader" is an
 * ordinary error status rather than a dynamic-linker failure at start-up. Once loaded, the
 * loader and its drivers stay mapped until the process exits (engine/vk_device.c says why).
 *
 * Nothing here prints, exits or reads argv. The one environment variable read is
 * SIZEUP_VK_VALIDATE=1 (same as vk_open_opts.validate), a debugging switch that must work in
 * any binary, tests included, without plumbing. The device index comes in through vk_open_opts.
 */
#ifndef SIZEUP_VK_H
#define SIZEUP_VK_H

#include <stddef.h>
#include <stdint.h>

typedef enum vk_status {
    VK_STATUS_OK = 0,
    VK_STATUS_NO_LOADER,     /* libvulkan.so.1 missing or unusable; the message names the path */
    VK_STATUS_NO_INSTANCE,   /* vkCreateInstance failed for a reason other than "no driver" */
    VK_STATUS_NO_DEVICE,     /* no Vulkan driver, or the drivers report zero devices */
    VK_STATUS_BAD_INDEX,     /* an explicit device index is out of range; message names both */
    VK_STATUS_NO_VALIDATION, /* validation asked for, but the Khronos layer is not installed */
    VK_STATUS_UNSUPPORTED,   /* the device lacks something needed (compute queue, memory type) */
    VK_STATUS_NO_SHADER,     /* no entry of that name in vk_shader_table */
    VK_STATUS_BAD_ARG,       /* caller error: size over a device limit, too many buffers, ... */
    VK_STATUS_NO_MEMORY,     /* host or device allocation failed */
    VK_STATUS_VULKAN,        /* any other failing VkResult; the message names the call */
} vk_status;

/* "ok", "no Vulkan loader", ...: static strings. */
const char *vk_status_str(vk_status s);

typedef enum vk_device_type {
    VK_DEVTYPE_OTHER = 0,
    VK_DEVTYPE_INTEGRATED,
    VK_DEVTYPE_DISCRETE,
    VK_DEVTYPE_VIRTUAL,
    VK_DEVTYPE_CPU,
} vk_device_type;

/* "discrete GPU", "integrated GPU", "virtual GPU", "CPU", "other": static strings. */
const char *vk_device_type_str(vk_device_type t);

/* Subgroup operations, bit-for-bit VkSubgroupFeatureFlagBits (checked in vk_probe.c). */
enum {
    VK_SGOP_BASIC = 1u << 0,
    VK_SGOP_VOTE = 1u << 1,
    VK_SGOP_ARITHMETIC = 1u << 2,
    VK_SGOP_BALLOT = 1u << 3,
    VK_SGOP_SHUFFLE = 1u << 4,
    VK_SGOP_SHUFFLE_RELATIVE = 1u << 5,
    VK_SGOP_CLUSTERED = 1u << 6,
    VK_SGOP_QUAD = 1u << 7,
    VK_SGOP_COUNT = 8,
};

/* "basic", "vote", ..., "shuffle-relative", ...: name of bit (1 << i), NULL past the end. */
const char *vk_subgroup_op_name(unsigned i);

#define VK_MAX_HEAPS 16 /* = VK_MAX_MEMORY_HEAPS */

typedef struct vk_heap_info {
    uint64_t size;
    int device_local; /* VK_MEMORY_HEAP_DEVICE_LOCAL_BIT */
    int host_visible; /* some memory type on this heap is HOST_VISIBLE */
    uint64_t budget;  /* VK_EXT_memory_budget; both 0 unless vk_device_info.has_budget */
    uint64_t usage;
} vk_heap_info;

/* Everything the probe learns about one physical device, without creating a logical device.
 * Feature flags are 1 when the device supports the feature (not whether it is enabled). */
typedef struct vk_device_info {
    uint32_t index; /* position in vkEnumeratePhysicalDevices order; what --device takes */
    char name[256];
    vk_device_type type;
    uint32_t vendor_id, device_id;
    uint8_t pipeline_cache_uuid[16]; /* VkPhysicalDeviceProperties.pipelineCacheUUID */
    uint32_t driver_id;      /* VkDriverId; 0 when the device cannot say (pre-1.2, no ext) */
    char driver_name[256];   /* VkPhysicalDeviceDriverProperties; "" when unknown */
    char driver_info[256];
    uint32_t driver_version_raw;
    char driver_version[32]; /* decoded: NVIDIA's 10.8.8.6 bits, else VK_VERSION_* fields */
    uint32_t api_version_raw;
    char api_version[24];    /* "1.3.230" */
    uint32_t heap_count;
    vk_heap_info heaps[VK_MAX_HEAPS];
    int has_budget;          /* VK_EXT_memory_budget present: heaps[].budget/usage are valid */
    uint32_t subgroup_size;  /* 0 when unknown (Vulkan 1.0 device) */
    uint32_t subgroup_ops;   /* VK_SGOP_* bits */
    int subgroup_in_compute; /* subgroup operations are allowed in compute shaders */
    int fp16;                /* shaderFloat16 */
    int int8;                /* shaderInt8 */
    int int_dot;             /* shaderIntegerDotProduct (VK_KHR_shader_integer_dot_product) */
    int storage16;           /* storageBuffer16BitAccess */
    int storage8;            /* storageBuffer8BitAccess */
    int has_compute_queue;
    uint64_t max_storage_buffer_range;
    uint32_t max_texel_buffer_elements;  /* of a uniform texel buffer view */
    uint64_t max_memory_allocation_size; /* VkPhysicalDeviceMaintenance3Properties */
    uint32_t max_compute_workgroup_count[3];
    uint32_t max_compute_workgroup_size[3];
    uint32_t max_compute_workgroup_invocations;
    uint32_t max_compute_shared_memory;
    uint32_t max_push_constants_size;
} vk_device_info;

/* 1 when this is Mesa's software driver (driver llvmpipe), which sizeup names "lavapipe". */
int vk_device_is_lavapipe(const vk_device_info *d);

/* Largest device-local heap in bytes (0 when none): the tie-break between equal device types. */
uint64_t vk_device_local_bytes(const vk_device_info *d);

/* "1.3.230" from a VK_MAKE_API_VERSION value into buf; returns buf. */
const char *vk_version_str(uint32_t v, char *buf, size_t buflen);

/* Driver version as the vendor means it: NVIDIA packs 10.8.8.6 bits, everyone else follows the
 * VK_VERSION_MAJOR/MINOR/PATCH layout. driver_id may be 0 (then vendor_id decides). */
const char *vk_driver_version_str(uint32_t driver_id, uint32_t vendor_id, uint32_t v, char *buf,
                                  size_t buflen);

typedef struct vk_choice {
    uint32_t index;
    char reason[192]; /* "discrete GPU preferred", "chosen by SIZEUP_DEVICE=1", ... */
} vk_choice;

/* Picks a device: discrete > integrated > virtual > CPU > other; ties go to the larger
 * device-local heap, then the lower index. has_index selects `index` instead; `origin` names
 * where it came from for the reason ("SIZEUP_DEVICE", "--device"; NULL: "explicit index").
 * Pure function of its inputs, so it is tested with synthetic lists. Errors (zero devices,
 * index out of range) write a message naming the index and the count into err. */
vk_status vk_choose_device(const vk_device_info *devs, uint32_t n, int has_index, uint32_t index,
                           const char *origin, vk_choice *out, char *err, size_t errlen);

/* The backend `--backend auto` runs a model on, given the device the choice above made (NULL
 * when there is no Vulkan device at all). Vulkan on a GPU; sizeup's own CPU engine when that
 * device is itself a CPU implementation (lavapipe, or any device of type CPU) and the user did
 * not name it (named: it came from --device or SIZEUP_DEVICE), because the CPU engine's SIMD
 * kernels run the same model several times faster than shaders compiled for the same cores.
 * why receives the reason the stats line and `sizeup devices` show: "faster than lavapipe, a
 * CPU Vulkan driver; --backend vulkan to use it", "NAME is a discrete GPU", ... Pure, so it is
 * tested with synthetic devices. Returns 1 for the CPU backend, 0 for Vulkan. */
int vk_auto_backend_is_cpu(const vk_device_info *chosen, int named, char *why, size_t len);

typedef struct vk_ctx vk_ctx;

/* Severity of a validation message passed to vk_open_opts.on_validation. */
typedef enum vk_msg_severity { VK_MSG_WARNING = 1, VK_MSG_ERROR = 2 } vk_msg_severity;

typedef struct vk_open_opts {
    int has_device_index;      /* 0 (a zeroed struct): choose automatically */
    uint32_t device_index;
    const char *device_origin; /* for the reason string: "SIZEUP_DEVICE", "--device" */
    int validate;              /* Khronos validation + debug messenger; SIZEUP_VK_VALIDATE=1 too */
    /* Called for each validation warning/error, possibly from a driver thread, until
     * vk_ctx_close returns (so messages about objects left at destroy time arrive too). */
    void (*on_validation)(void *user, vk_msg_severity sev, const char *msg);
    void *user;
    const char *loader_path;   /* NULL: "libvulkan.so.1" */
} vk_open_opts;

/* Loads the loader, creates an instance, probes every physical device and chooses one.
 * opts may be NULL (automatic choice, no validation). On success *out owns everything; the
 * caller frees it with vk_ctx_close. On failure *out is NULL, err holds a message naming what
 * failed (err may be NULL). Creates no logical device. */
vk_status vk_ctx_open(const vk_open_opts *opts, vk_ctx **out, char *err, size_t errlen);

/* Frees everything the ctx owns, logical device included. Buffers and kernels must be freed
 * first. NULL is a no-op. */
void vk_ctx_close(vk_ctx *ctx);

/* Detail of the last failing vk_* call made by the calling thread ("" when none): sessions on
 * several threads share one ctx, so the message is kept per thread, never on the ctx, and one
 * thread's failure cannot overwrite the message another is about to read. Copy it right after
 * the failing call, on the same thread. Valid until the thread's next failing call or its exit.
 * ctx is not read (NULL gives "no Vulkan context", for callers whose open failed). */
const char *vk_ctx_errmsg(const vk_ctx *ctx);

/* Version of the loader (vkEnumerateInstanceVersion). */
uint32_t vk_ctx_loader_version(const vk_ctx *ctx);

uint32_t vk_ctx_device_count(const vk_ctx *ctx);

/* Borrowed until vk_ctx_close; NULL when i is out of range. */
const vk_device_info *vk_ctx_device_info(const vk_ctx *ctx, uint32_t i);
const vk_choice *vk_ctx_choice(const vk_ctx *ctx);

/* Creates the logical device and one compute queue on the chosen device, enabling the optional
 * features the probe found (fp16, int8, 8/16-bit storage, integer dot product). Idempotent. */
vk_status vk_ctx_start_device(vk_ctx *ctx);

/* ---- pipeline cache (vk_cache.c) ----
 * Where a driver keeps compiled code in a VkPipelineCache, it is saved to a file under dir
 * named for the device (vendor, device id, driver version, pipelineCacheUUID), so the next
 * process skips the compile. A file is used only when its header (VkPipelineCacheHeader-
 * VersionOne) names this device and its size is sane; anything else (corrupt, foreign,
 * truncated, a symlink) is ignored and replaced by the next save. Files are written to a
 * unique temporary name and renamed into place. */

/* The file for device d under dir, into out (len bytes). 0 when it does not fit. */
int vk_pipeline_cache_path(const vk_device_info *d, const char *dir, char *out, size_t len);

/* Creates the ctx's pipeline cache (device started), with the file's contents when they are
 * valid for this device. A file that cannot be read or is refused is not an error (the cache
 * starts empty); failing to create the cache object is. */
vk_status vk_ctx_pipeline_cache_open(vk_ctx *ctx, const char *dir);
/* Bytes taken from the file at open (0: none, or refused). */
size_t vk_ctx_pipeline_cache_loaded(const vk_ctx *ctx);
/* Writes the cache to its file when its contents differ from the file's (creating dir, mode
 * 0700, when missing). Thread-safe. A failure (disk full, read-only home) leaves the old file
 * and is reported, for the caller to ignore: the cache is only an optimisation. */
vk_status vk_ctx_pipeline_cache_save(vk_ctx *ctx);

/* Validation warnings + errors seen so far (0 unless validation is on), and the first one's
 * text ("" when none), borrowed until vk_ctx_close. */
unsigned vk_ctx_validation_count(const vk_ctx *ctx);
const char *vk_ctx_validation_first(const vk_ctx *ctx);
int vk_ctx_validation_enabled(const vk_ctx *ctx);

/* ---- minimal compute path: storage buffers, one kernel, one dispatch at a time ---- */

/* Host-visible, host-coherent storage buffer of `size` bytes (at most maxStorageBufferRange,
 * since it is bound whole). Needs vk_ctx_start_device. Caller frees with vk_buffer_free before
 * closing the ctx. */
typedef struct vk_buffer vk_buffer;
vk_status vk_buffer_create(vk_ctx *ctx, uint64_t size, vk_buffer **out);
/* A buffer in device-local memory, for weights and caches: host-mapped when the device shares
 * memory with the host (integrated GPUs, lavapipe, resizable BAR), else reached through
 * staging copies by vk_buffer_upload/download (slower; meant for set-up and rare reads). */
vk_status vk_buffer_create_device(vk_ctx *ctx, uint64_t size, vk_buffer **out);
void vk_buffer_free(vk_buffer *buf);
uint64_t vk_buffer_size(const vk_buffer *buf);
vk_status vk_buffer_upload(vk_buffer *buf, uint64_t offset, const void *src, uint64_t n);
vk_status vk_buffer_download(const vk_buffer *buf, uint64_t offset, void *dst, uint64_t n);

/* A compute pipeline for one vk_shader_table entry whose bindings 0..n_buffers-1 in set 0 are
 * storage buffers and whose push-constant block is push_size bytes. spec[i] sets
 * specialization constant id i (n_spec may be 0). Caller frees with vk_kernel_free. */
#define VK_KERNEL_MAX_BUFFERS 8
typedef struct vk_kernel vk_kernel;
vk_status vk_kernel_create(vk_ctx *ctx, const char *shader, uint32_t n_buffers,
                           uint32_t push_size, const uint32_t *spec, uint32_t n_spec,
                           vk_kernel **out);
void vk_kernel_free(vk_kernel *k);

/* The same with some bindings as uniform texel buffers: bit i of texel_mask makes binding i one
 * of 32-bit words (R32_UINT, GLSL `uniform usamplerBuffer` read as .x), bit 8 + i one of 16-byte
 * words (R32G32B32A32_UINT, read as uvec4). CPU drivers (lavapipe) load through texel buffers
 * several times faster than through storage buffers. A buffer bound there must have the view
 * (vk_buffer_has_texel_view). */
#define VK_TEXEL_R32(i) (1u << (i))
#define VK_TEXEL_RGBA32(i) (1u << (8 + (i)))
vk_status vk_kernel_create_texel(vk_ctx *ctx, const char *shader, uint32_t n_buffers,
                                 uint32_t texel_mask, uint32_t push_size, const uint32_t *spec,
                                 uint32_t n_spec, vk_kernel **out);

/* 1 when the buffer can be bound as a uniform texel buffer of 32-bit words (vec4 = 0: every
 * buffer whose word count is within maxTexelBufferElements) or of 16-byte words (vec4 = 1: its
 * whole 16-byte words, when their count is within the limit). */
int vk_buffer_has_texel_view(const vk_buffer *buf, int vec4);

/* Binds bufs[0..n_buffers-1], pushes `push` (push_size bytes), dispatches groups[0..2]
 * workgroups, and waits until the results are visible to vk_buffer_download. Serialised on
 * the ctx's queue, so it may be called from several threads. */
vk_status vk_kernel_run(vk_kernel *k, vk_buffer *const *bufs, const void *push,
                        const uint32_t groups[3]);

/* ---- device self-check: shaders/selfcheck.comp against the same sum on the CPU ---- */

#define VK_SELFCHECK_TOL 1e-6 /* max |gpu - cpu|; the shader forbids fma contraction */

typedef struct vk_selfcheck_result {
    uint32_t n;          /* floats checked */
    uint32_t mismatches; /* elements off by more than VK_SELFCHECK_TOL */
    double max_abs_err;
    uint32_t worst_index;
    int pass;
} vk_selfcheck_result;

/* Runs y = a*x + b on n floats drawn from seed on the chosen device (starting it if needed)
 * with the output poisoned first, and compares with the CPU. A failed comparison is still
 * VK_STATUS_OK with out->pass = 0; the status reports only failures to run. */
vk_status vk_selfcheck(vk_ctx *ctx, uint32_t n, uint64_t seed, vk_selfcheck_result *out);

/* ---- recorded sequences (vk_seq.c) ----
 * Record dispatches once (begin, dispatch/barrier/copy..., end), submit as often as needed; the
 * buffers' contents may change between submits (per-token values), the bindings may not.
 * vk_seq_barrier makes every earlier write visible to every later dispatch; without one,
 * dispatches may overlap. submit waits for completion, with results visible to the host.
 * Caller frees with vk_seq_free. */
typedef struct vk_seq vk_seq;
vk_status vk_seq_new(vk_ctx *ctx, uint32_t max_dispatches, vk_seq **out);
void vk_seq_free(vk_seq *s);
vk_status vk_seq_begin(vk_seq *s);
vk_status vk_seq_dispatch(vk_seq *s, vk_kernel *k, vk_buffer *const *bufs, const void *push,
                          uint32_t gx, uint32_t gy, uint32_t gz);
void vk_seq_barrier(vk_seq *s);
vk_status vk_seq_copy(vk_seq *s, vk_buffer *src, uint64_t src_off, vk_buffer *dst,
                      uint64_t dst_off, uint64_t n);
vk_status vk_seq_end(vk_seq *s);
vk_status vk_seq_submit(vk_seq *s);
uint32_t vk_seq_dispatch_count(const vk_seq *s);

#endif
