/* Buffers, kernels and one-shot kernel dispatches.
 *
 * Buffers are host-visible and coherent (vk_buffer_create: per-token inputs and read-backs,
 * tests) or device-local (vk_buffer_create_device: weights, caches, activations), the latter
 * mapped when the device shares memory with the host and otherwise reached through staging
 * copies. vk_kernel_run records, submits and waits, for the self-check, the op tests and the
 * bandwidth benchmark; the forward pass records sequences instead (vk_seq.c).
 */
#include <stdlib.h>
#include <string.h>

#include "engine/vk_internal.h"

/* A hung shader should become an error, not a frozen terminal. lavapipe on two cores runs the
 * self-check in milliseconds; a minute covers any real kernel on it. */
#define RUN_TIMEOUT_NS (60ull * 1000 * 1000 * 1000)

const vk_shader_blob *vk_find_shader(const char *name)
{
    for (const vk_shader_blob *s = vk_shader_table; s->name; s++)
        if (!strcmp(s->name, name))
            return s;
    return NULL;
}

/* ---- buffers ---- */

/* A type allowed by type_bits with all of `need`, preferring one that also has `want`. */
static int find_memory_type(const vk_ctx *ctx, uint32_t type_bits, VkMemoryPropertyFlags need,
                            VkMemoryPropertyFlags want)
{
    int fallback = -1;
    for (uint32_t i = 0; i < ctx->mem.memoryTypeCount; i++) {
        VkMemoryPropertyFlags f = ctx->mem.memoryTypes[i].propertyFlags;
        if (!(type_bits & (1u << i)) || (f & need) != need)
            continue;
        if ((f & want) == want)
            return (int)i;
        if (fallback < 0)
            fallback = (int)i;
    }
    return fallback;
}

static vk_status check_buffer_size(vk_ctx *ctx, uint64_t size)
{
    const vk_device_info *d = &ctx->devices[ctx->choice.index];
    if (!ctx->dev)
        return vk_set_error(ctx, VK_STATUS_BAD_ARG, "vk_buffer_create before vk_ctx_start_device");
    if (size == 0 || size > d->max_storage_buffer_range)
        return vk_set_error(ctx, VK_STATUS_BAD_ARG,
                            "storage buffer of %llu bytes: device %u takes 1..%llu "
                            "(maxStorageBufferRange); split the data",
                            (unsigned long long)size, d->index,
                            (unsigned long long)d->max_storage_buffer_range);
    if (d->max_memory_allocation_size && size > d->max_memory_allocation_size)
        return vk_set_error(ctx, VK_STATUS_BAD_ARG,
                            "buffer of %llu bytes exceeds maxMemoryAllocationSize %llu",
                            (unsigned long long)size,
                            (unsigned long long)d->max_memory_allocation_size);
    return VK_STATUS_OK;
}

/* A memory type for a buffer: device-local ones for weights and caches (mapped too when the
 * device shares memory with the host: integrated GPUs, lavapipe, resizable BAR), else a
 * host-visible coherent one. Returns -1 when none fits. */
static int pick_type(const vk_ctx *ctx, uint32_t bits, int device, int *mapped)
{
    const VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                     VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    if (device) {
        /* host-visible device-local memory only counts when its heap is the big one: a 256 MiB
         * BAR window would run out long before the weights do */
        uint64_t biggest = 0;
        for (uint32_t h = 0; h < ctx->mem.memoryHeapCount; h++)
            if ((ctx->mem.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
                ctx->mem.memoryHeaps[h].size > biggest)
                biggest = ctx->mem.memoryHeaps[h].size;
        for (uint32_t i = 0; i < ctx->mem.memoryTypeCount; i++) {
            VkMemoryPropertyFlags f = ctx->mem.memoryTypes[i].propertyFlags;
            uint64_t heap = ctx->mem.memoryHeaps[ctx->mem.memoryTypes[i].heapIndex].size;
            if ((bits & (1u << i)) && (f & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) &&
                (f & hv) == hv && heap == biggest) {
                *mapped = 1;
                return (int)i;
            }
        }
        int t = find_memory_type(ctx, bits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
        if (t >= 0) {
            *mapped = (ctx->mem.memoryTypes[t].propertyFlags & hv) == hv;
            return t;
        }
    }
    *mapped = 1;
    return find_memory_type(ctx, bits, hv, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
}

static vk_status buffer_create(vk_ctx *ctx, uint64_t size, int device, vk_buffer **out)
{
    *out = NULL;
    vk_status st = check_buffer_size(ctx, size);
    if (st)
        return st;
    vk_buffer *b = calloc(1, sizeof *b);
    if (!b)
        return vk_set_error(ctx, VK_STATUS_NO_MEMORY, "out of memory for a buffer handle");
    b->ctx = ctx;
    b->size = size;
    VkBufferCreateInfo bi = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = size,
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                 VK_BUFFER_USAGE_TRANSFER_DST_BIT | VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    VK_TRY(ctx->fn.CreateBuffer(ctx->dev, &bi, NULL, &b->buf));
    VkMemoryRequirements req;
    ctx->fn.GetBufferMemoryRequirements(ctx->dev, b->buf, &req);
    int mapped = 0, type = pick_type(ctx, req.memoryTypeBits, device, &mapped);
    if (type < 0) {
        vk_set_error(ctx, VK_STATUS_UNSUPPORTED, "no usable memory type for a storage buffer");
        goto fail;
    }
    VkMemoryAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
        .allocationSize = req.size,
        .memoryTypeIndex = (uint32_t)type,
    };
    VK_TRY(ctx->fn.AllocateMemory(ctx->dev, &ai, NULL, &b->mem));
    VK_TRY(ctx->fn.BindBufferMemory(ctx->dev, b->buf, b->mem, 0));
    if (mapped)
        VK_TRY(ctx->fn.MapMemory(ctx->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map));
    /* R32_UINT and R32G32B32A32_UINT uniform texel buffers are required of every device
     * (Vulkan's format table); only the element limit decides which buffers get views */
    uint32_t max_el = ctx->devices[ctx->choice.index].max_texel_buffer_elements;
    for (int v4 = 0; v4 < 2; v4++) {
        uint64_t unit = v4 ? 16 : 4;
        if (size < unit || size / unit > max_el)
            continue;
        VkBufferViewCreateInfo vi = {
            .sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
            .buffer = b->buf,
            .format = v4 ? VK_FORMAT_R32G32B32A32_UINT : VK_FORMAT_R32_UINT,
            .offset = 0,
            .range = size / unit * unit,
        };
        VK_TRY(ctx->fn.CreateBufferView(ctx->dev, &vi, NULL, v4 ? &b->view4 : &b->view));
    }
    *out = b;
    return VK_STATUS_OK;
fail:
    vk_buffer_free(b);
    return vk_last_status();
}

vk_status vk_buffer_create(vk_ctx *ctx, uint64_t size, vk_buffer **out)
{
    return buffer_create(ctx, size, 0, out);
}

vk_status vk_buffer_create_device(vk_ctx *ctx, uint64_t size, vk_buffer **out)
{
    return buffer_create(ctx, size, 1, out);
}

void vk_buffer_free(vk_buffer *b)
{
    if (!b)
        return;
    vk_ctx *ctx = b->ctx;
    if (b->view)
        ctx->fn.DestroyBufferView(ctx->dev, b->view, NULL);
    if (b->view4)
        ctx->fn.DestroyBufferView(ctx->dev, b->view4, NULL);
    if (b->map)
        ctx->fn.UnmapMemory(ctx->dev, b->mem);
    if (b->buf)
        ctx->fn.DestroyBuffer(ctx->dev, b->buf, NULL);
    if (b->mem)
        ctx->fn.FreeMemory(ctx->dev, b->mem, NULL);
    free(b);
}

uint64_t vk_buffer_size(const vk_buffer *b) { return b->size; }
int vk_buffer_has_texel_view(const vk_buffer *b, int vec4)
{
    return (vec4 ? b->view4 : b->view) != VK_NULL_HANDLE;
}

/* The view a binding of k needs, or VK_NULL_HANDLE for a storage binding. */
static const VkBufferView *binding_view(const vk_kernel *k, const vk_buffer *b, uint32_t i)
{
    if ((k->texel_mask >> (8 + i)) & 1u)
        return &b->view4;
    return (k->texel_mask >> i) & 1u ? &b->view : NULL;
}

const char *vk_kernel_missing_view(const vk_kernel *k, vk_buffer *const *bufs, uint32_t *index)
{
    for (uint32_t i = 0; i < k->n_buffers; i++) {
        const VkBufferView *v = binding_view(k, bufs[i], i);
        if (v && !*v) {
            *index = i;
            return (k->texel_mask >> (8 + i)) & 1u ? "R32G32B32A32_UINT" : "R32_UINT";
        }
    }
    return NULL;
}

/* offset + n <= size without overflow. */
static int in_bounds(const vk_buffer *b, uint64_t offset, uint64_t n)
{
    return offset <= b->size && n <= b->size - offset;
}

/* Copy between a buffer and a host-visible staging buffer with a one-shot command buffer.
 * Caller holds ctx->submit_lock. */
static vk_status staged_copy(vk_ctx *ctx, VkBuffer src, uint64_t src_off, VkBuffer dst,
                             uint64_t dst_off, uint64_t n)
{
    VK_TRY(ctx->fn.ResetCommandBuffer(ctx->cmd, 0));
    VkCommandBufferBeginInfo begin = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
    };
    VK_TRY(ctx->fn.BeginCommandBuffer(ctx->cmd, &begin));
    /* earlier compute work may still write/read the destination or source */
    VkMemoryBarrier mb = { .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                           .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                           .dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT };
    ctx->fn.CmdPipelineBarrier(ctx->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                               VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    VkBufferCopy c = { src_off, dst_off, n };
    ctx->fn.CmdCopyBuffer(ctx->cmd, src, dst, 1, &c);
    VkMemoryBarrier hb = { .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                           .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                           .dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_SHADER_READ_BIT };
    ctx->fn.CmdPipelineBarrier(ctx->cmd, VK_PIPELINE_STAGE_TRANSFER_BIT,
                               VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                               0, 1, &hb, 0, NULL, 0, NULL);
    VK_TRY(ctx->fn.EndCommandBuffer(ctx->cmd));
    VK_TRY(ctx->fn.ResetFences(ctx->dev, 1, &ctx->fence));
    VkSubmitInfo si = { .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1,
                        .pCommandBuffers = &ctx->cmd };
    VK_TRY(ctx->fn.QueueSubmit(ctx->queue, 1, &si, ctx->fence));
    VK_TRY(ctx->fn.WaitForFences(ctx->dev, 1, &ctx->fence, VK_TRUE, RUN_TIMEOUT_NS));
    return VK_STATUS_OK;
fail:
    return vk_last_status();
}

#define STAGING_CHUNK (64ull << 20)

/* Device-local memory the host cannot map: move the bytes through a staging buffer. */
static vk_status staged(vk_buffer *b, uint64_t offset, void *host, uint64_t n, int upload)
{
    vk_ctx *ctx = b->ctx;
    vk_buffer *st = NULL;
    vk_status r = vk_buffer_create(ctx, n < STAGING_CHUNK ? n : STAGING_CHUNK, &st);
    for (uint64_t done = 0; !r && done < n; done += STAGING_CHUNK) {
        uint64_t k = n - done < STAGING_CHUNK ? n - done : STAGING_CHUNK;
        if (upload)
            memcpy(st->map, (char *)host + done, (size_t)k);
        pthread_mutex_lock(&ctx->submit_lock);
        r = upload ? staged_copy(ctx, st->buf, 0, b->buf, offset + done, k)
                   : staged_copy(ctx, b->buf, offset + done, st->buf, 0, k);
        pthread_mutex_unlock(&ctx->submit_lock);
        if (!r && !upload)
            memcpy((char *)host + done, st->map, (size_t)k);
    }
    vk_buffer_free(st);
    return r;
}

vk_status vk_buffer_upload(vk_buffer *b, uint64_t offset, const void *src, uint64_t n)
{
    if (!in_bounds(b, offset, n))
        return vk_set_error(b->ctx, VK_STATUS_BAD_ARG,
                            "upload of %llu bytes at offset %llu into a %llu-byte buffer",
                            (unsigned long long)n, (unsigned long long)offset,
                            (unsigned long long)b->size);
    if (!b->map)
        return staged(b, offset, (void *)src, n, 1);
    /* Coherent memory: vkQueueSubmit makes these host writes visible to the device. */
    memcpy((char *)b->map + offset, src, (size_t)n);
    return VK_STATUS_OK;
}

vk_status vk_buffer_download(const vk_buffer *b, uint64_t offset, void *dst, uint64_t n)
{
    if (!in_bounds(b, offset, n))
        return vk_set_error(b->ctx, VK_STATUS_BAD_ARG,
                            "download of %llu bytes at offset %llu from a %llu-byte buffer",
                            (unsigned long long)n, (unsigned long long)offset,
                            (unsigned long long)b->size);
    if (!b->map)
        return staged((vk_buffer *)b, offset, dst, n, 0);
    memcpy(dst, (const char *)b->map + offset, (size_t)n);
    return VK_STATUS_OK;
}

/* ---- kernels ---- */

static vk_status check_kernel_args(vk_ctx *ctx, const char *shader, uint32_t n_buffers,
                                   uint32_t push_size, uint32_t n_spec)
{
    const vk_device_info *d = &ctx->devices[ctx->choice.index];
    if (!ctx->dev)
        return vk_set_error(ctx, VK_STATUS_BAD_ARG, "vk_kernel_create before vk_ctx_start_device");
    if (!vk_find_shader(shader))
        return vk_set_error(ctx, VK_STATUS_NO_SHADER, "no shader named '%s' in vk_shader_table",
                            shader);
    if (n_buffers == 0 || n_buffers > VK_KERNEL_MAX_BUFFERS || n_spec > 8)
        return vk_set_error(ctx, VK_STATUS_BAD_ARG,
                            "kernel '%s': %u buffers (1..%d), %u spec constants (0..8)", shader,
                            n_buffers, VK_KERNEL_MAX_BUFFERS, n_spec);
    if (push_size % 4 || push_size > d->max_push_constants_size)
        return vk_set_error(ctx, VK_STATUS_BAD_ARG,
                            "kernel '%s': push-constant size %u is not a multiple of 4 up to %u",
                            shader, push_size, d->max_push_constants_size);
    return VK_STATUS_OK;
}

static VkDescriptorType binding_type(const vk_kernel *k, uint32_t i)
{
    return (k->texel_mask >> i) & 0x101u ? VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER
                                         : VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
}

void vk_kernel_writes(const vk_kernel *k, vk_buffer *const *bufs, VkDescriptorSet set,
                      VkDescriptorBufferInfo *info, VkWriteDescriptorSet *w)
{
    for (uint32_t i = 0; i < k->n_buffers; i++) {
        info[i] = (VkDescriptorBufferInfo){ bufs[i]->buf, 0, VK_WHOLE_SIZE };
        w[i] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
            .dstSet = set,
            .dstBinding = i,
            .descriptorCount = 1,
            .descriptorType = binding_type(k, i),
        };
        if (w[i].descriptorType == VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER)
            w[i].pTexelBufferView = binding_view(k, bufs[i], i);
        else
            w[i].pBufferInfo = &info[i];
    }
}

/* Set layout with bindings 0..n-1 (storage or texel buffers), and the pipeline layout around
 * it. */
static vk_status create_layouts(vk_ctx *ctx, vk_kernel *k)
{
    VkDescriptorSetLayoutBinding bind[VK_KERNEL_MAX_BUFFERS];
    for (uint32_t i = 0; i < k->n_buffers; i++)
        bind[i] = (VkDescriptorSetLayoutBinding){
            .binding = i,
            .descriptorType = binding_type(k, i),
            .descriptorCount = 1,
            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        };
    VkDescriptorSetLayoutCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .bindingCount = k->n_buffers,
        .pBindings = bind,
    };
    VK_TRY(ctx->fn.CreateDescriptorSetLayout(ctx->dev, &dci, NULL, &k->set_layout));
    VkPushConstantRange range = { VK_SHADER_STAGE_COMPUTE_BIT, 0, k->push_size };
    VkPipelineLayoutCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
        .setLayoutCount = 1,
        .pSetLayouts = &k->set_layout,
        .pushConstantRangeCount = k->push_size ? 1 : 0,
        .pPushConstantRanges = &range,
    };
    VK_TRY(ctx->fn.CreatePipelineLayout(ctx->dev, &pci, NULL, &k->layout));
    VkDescriptorPoolSize ps[2] = { { VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, k->n_buffers },
                                   { VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER, k->n_buffers } };
    VkDescriptorPoolCreateInfo poi = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .maxSets = 1,
        .poolSizeCount = 2,
        .pPoolSizes = ps,
    };
    VK_TRY(ctx->fn.CreateDescriptorPool(ctx->dev, &poi, NULL, &k->pool));
    VkDescriptorSetAllocateInfo sai = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
        .descriptorPool = k->pool,
        .descriptorSetCount = 1,
        .pSetLayouts = &k->set_layout,
    };
    VK_TRY(ctx->fn.AllocateDescriptorSets(ctx->dev, &sai, &k->set));
    return VK_STATUS_OK;
fail:
    return vk_last_status();
}

static vk_status create_pipeline(vk_ctx *ctx, vk_kernel *k, const vk_shader_blob *blob,
                                 const uint32_t *spec, uint32_t n_spec)
{
    VkShaderModuleCreateInfo mci = {
        .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
        .codeSize = blob->size,
        .pCode = blob->code,
    };
    VK_TRY(ctx->fn.CreateShaderModule(ctx->dev, &mci, NULL, &k->module));
    VkSpecializationMapEntry map[8];
    for (uint32_t i = 0; i < n_spec; i++)
        map[i] = (VkSpecializationMapEntry){ i, i * 4, 4 };
    VkSpecializationInfo si = { n_spec, map, n_spec * 4u, spec };
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {
            .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
            .stage = VK_SHADER_STAGE_COMPUTE_BIT,
            .module = k->module,
            .pName = "main",
            .pSpecializationInfo = n_spec ? &si : NULL,
        },
        .layout = k->layout,
    };
    VK_TRY(ctx->fn.CreateComputePipelines(ctx->dev, ctx->pcache, 1, &ci, NULL, &k->pipeline));
    return VK_STATUS_OK;
fail:
    return vk_last_status();
}

vk_status vk_kernel_create(vk_ctx *ctx, const char *shader, uint32_t n_buffers,
                           uint32_t push_size, const uint32_t *spec, uint32_t n_spec,
                           vk_kernel **out)
{
    return vk_kernel_create_texel(ctx, shader, n_buffers, 0, push_size, spec, n_spec, out);
}

vk_status vk_kernel_create_texel(vk_ctx *ctx, const char *shader, uint32_t n_buffers,
                                 uint32_t texel_mask, uint32_t push_size, const uint32_t *spec,
                                 uint32_t n_spec, vk_kernel **out)
{
    *out = NULL;
    vk_status st = check_kernel_args(ctx, shader, n_buffers, push_size, n_spec);
    if (st)
        return st;
    vk_kernel *k = calloc(1, sizeof *k);
    if (!k)
        return vk_set_error(ctx, VK_STATUS_NO_MEMORY, "out of memory for kernel '%s'", shader);
    k->ctx = ctx;
    k->n_buffers = n_buffers;
    k->texel_mask = texel_mask & (((1u << n_buffers) - 1u) * 0x101u);
    k->push_size = push_size;
    st = create_layouts(ctx, k);
    if (!st)
        st = create_pipeline(ctx, k, vk_find_shader(shader), spec, n_spec);
    if (st) {
        vk_kernel_free(k);
        return st;
    }
    *out = k;
    return VK_STATUS_OK;
}

void vk_kernel_free(vk_kernel *k)
{
    if (!k)
        return;
    vk_ctx *ctx = k->ctx;
    if (k->pipeline)
        ctx->fn.DestroyPipeline(ctx->dev, k->pipeline, NULL);
    if (k->module)
        ctx->fn.DestroyShaderModule(ctx->dev, k->module, NULL);
    if (k->pool) /* frees k->set with it */
        ctx->fn.DestroyDescriptorPool(ctx->dev, k->pool, NULL);
    if (k->layout)
        ctx->fn.DestroyPipelineLayout(ctx->dev, k->layout, NULL);
    if (k->set_layout)
        ctx->fn.DestroyDescriptorSetLayout(ctx->dev, k->set_layout, NULL);
    free(k);
}

static vk_status check_run_args(vk_kernel *k, vk_buffer *const *bufs, const void *push,
                                const uint32_t groups[3])
{
    vk_ctx *ctx = k->ctx;
    const vk_device_info *d = &ctx->devices[ctx->choice.index];
    for (uint32_t i = 0; i < k->n_buffers; i++)
        if (!bufs[i] || bufs[i]->ctx != ctx)
            return vk_set_error(ctx, VK_STATUS_BAD_ARG,
                                "kernel run: buffer %u is missing or from another context", i);
    uint32_t vi;
    const char *fmt = vk_kernel_missing_view(k, bufs, &vi);
    if (fmt)
        return vk_set_error(ctx, VK_STATUS_BAD_ARG, "kernel run: buffer %u (%llu bytes) has no "
                            "%s texel view for texel binding %u", vi,
                            (unsigned long long)bufs[vi]->size, fmt, vi);
    if (k->push_size && !push)
        return vk_set_error(ctx, VK_STATUS_BAD_ARG, "kernel run: push constants missing");
    for (int i = 0; i < 3; i++)
        if (groups[i] == 0 || groups[i] > d->max_compute_workgroup_count[i])
            return vk_set_error(ctx, VK_STATUS_BAD_ARG,
                                "kernel run: %u workgroups along axis %d (device allows 1..%u)",
                                groups[i], i, d->max_compute_workgroup_count[i]);
    return VK_STATUS_OK;
}

/* Records bind/push/dispatch + a compute->host barrier into ctx->cmd, submits and waits.
 * Caller holds ctx->submit_lock. */
static vk_status record_and_submit(vk_kernel *k, vk_buffer *const *bufs, const void *push,
                                   const uint32_t groups[3])
{
    vk_ctx *ctx = k->ctx;
    VkDescriptorBufferInfo info[VK_KERNEL_MAX_BUFFERS];
    VkWriteDescriptorSet w[VK_KERNEL_MAX_BUFFERS];
    VK_TRY(ctx->fn.ResetCommandBuffer(ctx->cmd, 0));
    vk_kernel_writes(k, bufs, k->set, info, w);
    ctx->fn.UpdateDescriptorSets(ctx->dev, k->n_buffers, w, 0, NULL);
    VkCommandBufferBeginInfo begin = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
    };
    VK_TRY(ctx->fn.BeginCommandBuffer(ctx->cmd, &begin));
    ctx->fn.CmdBindPipeline(ctx->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, k->pipeline);
    ctx->fn.CmdBindDescriptorSets(ctx->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, k->layout, 0, 1,
                                  &k->set, 0, NULL);
    if (k->push_size)
        ctx->fn.CmdPushConstants(ctx->cmd, k->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0,
                                 k->push_size, push);
    ctx->fn.CmdDispatch(ctx->cmd, groups[0], groups[1], groups[2]);
    /* A fence wait alone does not make shader writes visible to the host. */
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_HOST_READ_BIT,
    };
    ctx->fn.CmdPipelineBarrier(ctx->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                               VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    VK_TRY(ctx->fn.EndCommandBuffer(ctx->cmd));
    VK_TRY(ctx->fn.ResetFences(ctx->dev, 1, &ctx->fence));
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &ctx->cmd,
    };
    VK_TRY(ctx->fn.QueueSubmit(ctx->queue, 1, &si, ctx->fence));
    VK_TRY(ctx->fn.WaitForFences(ctx->dev, 1, &ctx->fence, VK_TRUE, RUN_TIMEOUT_NS));
    return VK_STATUS_OK;
fail:
    return vk_last_status();
}

vk_status vk_kernel_run(vk_kernel *k, vk_buffer *const *bufs, const void *push,
                        const uint32_t groups[3])
{
    vk_status st = check_run_args(k, bufs, push, groups);
    if (st)
        return st;
    pthread_mutex_lock(&k->ctx->submit_lock);
    st = record_and_submit(k, bufs, push, groups);
    pthread_mutex_unlock(&k->ctx->submit_lock);
    return st;
}
