/* Matrix-product kernels, one per weight type. (Being written; until then no type has a
 * kernel and the Vulkan backend refuses every model.) */
#include "engine/vk_ops.h"
#include "engine/vk_internal.h"

vk_status vk_ops_create_matmul(vk_ops *ops)
{
    (void)ops;
    return VK_STATUS_OK;
}

bool vk_ops_has_type(const vk_ops *ops, uint32_t type)
{
    return type < GGUF_T_COUNT && ops->mul_mat[type] != NULL;
}

vk_status vk_op_mul_mat(vk_ops *ops, vk_seq *s, uint32_t type, vk_buffer *w, vk_buffer *x,
                        vk_buffer *y, vk_buffer *bias, const vk_push_mul_mat *p)
{
    (void)s; (void)w; (void)x; (void)y; (void)bias; (void)p;
    return vk_set_error(ops->ctx, VK_STATUS_UNSUPPORTED, "no matrix kernel for type %u", type);
}
