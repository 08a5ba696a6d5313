/* Recorded command sequences: many dispatches with barriers in one command buffer, recorded
 * once and submitted as often as needed (a decode step is replayed for every token with the
 * per-token values in a small buffer). Each sequence owns its command buffer, descriptor pool
 * and fence, so sessions on different threads record and wait independently; only the queue
 * submission itself is serialised. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "engine/vk_internal.h"

#define SEQ_TIMEOUT_NS (600ull * 1000 * 1000 * 1000)

struct vk_seq {
    vk_ctx *ctx;
    uint32_t max_dispatches, n_dispatches;
    VkCommandPool pool;
    VkCommandBuffer cmd;
    VkDescriptorPool dpool;
    VkFence fence;
    bool recording, pending_barrier;
};

void vk_seq_free(vk_seq *s)
{
    if (!s)
        return;
    vk_ctx *ctx = s->ctx;
    if (s->fence)
        ctx->fn.DestroyFence(ctx->dev, s->fence, NULL);
    if (s->dpool)
        ctx->fn.DestroyDescriptorPool(ctx->dev, s->dpool, NULL);
    if (s->pool) /* frees the command buffer with it */
        ctx->fn.DestroyCommandPool(ctx->dev, s->pool, NULL);
    free(s);
}

vk_status vk_seq_new(vk_ctx *ctx, uint32_t max_dispatches, vk_seq **out)
{
    *out = NULL;
    if (!ctx->dev)
        return vk_set_error(ctx, VK_STATUS_BAD_ARG, "vk_seq_new before vk_ctx_start_device");
    vk_seq *s = calloc(1, sizeof *s);
    if (!s)
        return vk_set_error(ctx, VK_STATUS_NO_MEMORY, "out of memory for a command sequence");
    s->ctx = ctx;
    s->max_dispatches = max_dispatches ? max_dispatches : 1;
    VkCommandPoolCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = ctx->queue_family,
    };
    VK_TRY(ctx->fn.CreateCommandPool(ctx->dev, &pci, NULL, &s->pool));
    VkCommandBufferAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = s->pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    VK_TRY(ctx->fn.AllocateCommandBuffers(ctx->dev, &ai, &s->cmd));
    VkDescriptorPoolSize ps[2] = {
        { VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, s->max_dispatches * VK_KERNEL_MAX_BUFFERS },
        { VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER, s->max_dispatches * VK_KERNEL_MAX_BUFFERS },
    };
    VkDescriptorPoolCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .maxSets = s->max_dispatches,
        .poolSizeCount = 2,
        .pPoolSizes = ps,
    };
    VK_TRY(ctx->fn.CreateDescriptorPool(ctx->dev, &dci, NULL, &s->dpool));
    VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
    VK_TRY(ctx->fn.CreateFence(ctx->dev, &fci, NULL, &s->fence));
    *out = s;
    return VK_STATUS_OK;
fail:
    vk_seq_free(s);
    return vk_last_status();
}

vk_status vk_seq_begin(vk_seq *s)
{
    vk_ctx *ctx = s->ctx;
    VK_TRY(ctx->fn.ResetCommandBuffer(s->cmd, 0));
    VK_TRY(ctx->fn.ResetDescriptorPool(ctx->dev, s->dpool, 0));
    VkCommandBufferBeginInfo bi = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO };
    VK_TRY(ctx->fn.BeginCommandBuffer(s->cmd, &bi));
    s->n_dispatches = 0;
    s->recording = true;
    s->pending_barrier = false;
    return VK_STATUS_OK;
fail:
    return vk_last_status();
}

static void barrier(vk_seq *s, VkPipelineStageFlags dst_stage, VkAccessFlags dst_access)
{
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = dst_access,
    };
    s->ctx->fn.CmdPipelineBarrier(s->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT |
                                  VK_PIPELINE_STAGE_TRANSFER_BIT, dst_stage, 0, 1, &mb, 0,
                                  NULL, 0, NULL);
}

void vk_seq_barrier(vk_seq *s)
{
    s->pending_barrier = true; /* emitted before the next dispatch: consecutive calls merge */
}

vk_status vk_seq_dispatch(vk_seq *s, vk_kernel *k, vk_buffer *const *bufs, const void *push,
                          uint32_t gx, uint32_t gy, uint32_t gz)
{
    vk_ctx *ctx = s->ctx;
    if (!s->recording || s->n_dispatches >= s->max_dispatches || !gx || !gy || !gz)
        return vk_set_error(ctx, VK_STATUS_BAD_ARG, "dispatch %u of a sequence of at most %u "
                            "(recording %d, groups %u x %u x %u)", s->n_dispatches,
                            s->max_dispatches, s->recording, gx, gy, gz);
    uint32_t vi;
    const char *fmt = vk_kernel_missing_view(k, bufs, &vi);
    if (fmt)
        return vk_set_error(ctx, VK_STATUS_BAD_ARG, "dispatch: buffer %u (%llu bytes) has no %s "
                            "texel view for texel binding %u", vi,
                            (unsigned long long)vk_buffer_size(bufs[vi]), fmt, vi);
    VkDescriptorSet set;
    VkDescriptorSetAllocateInfo sai = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
        .descriptorPool = s->dpool,
        .descriptorSetCount = 1,
        .pSetLayouts = &k->set_layout,
    };
    VK_TRY(ctx->fn.AllocateDescriptorSets(ctx->dev, &sai, &set));
    VkDescriptorBufferInfo info[VK_KERNEL_MAX_BUFFERS];
    VkWriteDescriptorSet w[VK_KERNEL_MAX_BUFFERS];
    vk_kernel_writes(k, bufs, set, info, w);
    ctx->fn.UpdateDescriptorSets(ctx->dev, k->n_buffers, w, 0, NULL);
    if (s->pending_barrier) {
        barrier(s, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
        s->pending_barrier = false;
    }
    ctx->fn.CmdBindPipeline(s->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, k->pipeline);
    ctx->fn.CmdBindDescriptorSets(s->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, k->layout, 0, 1, &set,
                                  0, NULL);
    if (k->push_size)
        ctx->fn.CmdPushConstants(s->cmd, k->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, k->push_size,
                                 push);
    ctx->fn.CmdDispatch(s->cmd, gx, gy, gz);
    s->n_dispatches++;
    return VK_STATUS_OK;
fail:
    return vk_last_status();
}

vk_status vk_seq_copy(vk_seq *s, vk_buffer *src, uint64_t src_off, vk_buffer *dst,
                      uint64_t dst_off, uint64_t n)
{
    if (s->pending_barrier) {
        barrier(s, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_READ_BIT |
                VK_ACCESS_TRANSFER_WRITE_BIT);
        s->pending_barrier = false;
    }
    VkBufferCopy c = { src_off, dst_off, n };
    s->ctx->fn.CmdCopyBuffer(s->cmd, src->buf, dst->buf, 1, &c);
    return VK_STATUS_OK;
}

vk_status vk_seq_end(vk_seq *s)
{
    vk_ctx *ctx = s->ctx;
    /* a fence wait alone does not make shader writes visible to the host */
    barrier(s, VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
    s->recording = false;
    VK_TRY(ctx->fn.EndCommandBuffer(s->cmd));
    return VK_STATUS_OK;
fail:
    return vk_last_status();
}

vk_status vk_seq_submit(vk_seq *s)
{
    vk_ctx *ctx = s->ctx;
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &s->cmd,
    };
    VK_TRY(ctx->fn.ResetFences(ctx->dev, 1, &s->fence));
    pthread_mutex_lock(&ctx->submit_lock);
    VkResult r = ctx->fn.QueueSubmit(ctx->queue, 1, &si, s->fence);
    pthread_mutex_unlock(&ctx->submit_lock);
    VK_TRY(r);
    VK_TRY(ctx->fn.WaitForFences(ctx->dev, 1, &s->fence, VK_TRUE, SEQ_TIMEOUT_NS));
    return VK_STATUS_OK;
fail:
    return vk_last_status();
}

uint32_t vk_seq_dispatch_count(const vk_seq *s) { return s->n_dispatches; }
