/* test-ref-ops.c - hand-checked and PyTorch golden cases for the reference backend. */
#include <math.h>
#include <string.h>

#include "backend.h"
#include "test-common.h"

static UnetBackend *be;

static void tensor_from(UnetTensor *t, int n, int c, int h, int w, const float *v)
{
    CHECK(be->tensor_init(be, t, n, c, h, w) == UNET_OK);
    CHECK(be->tensor_upload(be, t, v) == UNET_OK);
}

/* 3x3 input, 2x2 kernel of ones, bias 1: each output is its window sum + 1. */
static void test_conv_hand(void)
{
    const float xv[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
    const float wv[4] = { 1, 1, 1, 1 };
    const float bv[1] = { 1 };
    UnetTensor x, w, b, y;
    tensor_from(&x, 1, 1, 3, 3, xv);
    tensor_from(&w, 1, 1, 2, 2, wv);
    tensor_from(&b, 1, 1, 1, 1, bv);
    CHECK(be->tensor_init(be, &y, 1, 1, 2, 2) == UNET_OK);
    UnetConvDesc d = { 2, 1, 0 };
    CHECK(be->conv2d_forward(be, &y, &x, &w, &b, &d) == UNET_OK);
    float out[4];
    be->tensor_download(be, out, &y);
    const float want[4] = { 13, 17, 25, 29 };
    for (int i = 0; i < 4; i++)
        CHECK_MSG(out[i] == want[i], "conv out[%d] = %g, want %g", i, out[i], want[i]);

    /* A shape mismatch is refused with a message naming the op and shapes. */
    UnetTensor bad;
    CHECK(be->tensor_init(be, &bad, 1, 1, 3, 3) == UNET_OK);
    CHECK(be->conv2d_forward(be, &bad, &x, &w, &b, &d) == UNET_ERR_INVALID);
    CHECK_MSG(strstr(be->error.message, "conv2d_forward") && strstr(be->error.message, "[1,1,3,3]"),
              "message: %s", be->error.message);
    be->tensor_release(be, &bad);
    be->tensor_release(be, &x);
    be->tensor_release(be, &w);
    be->tensor_release(be, &b);
    be->tensor_release(be, &y);
}

int main(void)
{
    UnetError err = { 0 };
    be = unet_backend_reference_new(&err);
    if (!be) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    test_conv_hand();
    unet_backend_destroy(be);
    return test_finish("ref-ops");
}
