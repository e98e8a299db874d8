// kernels-resample.cu - 2x2 max pooling, bilinear resize (x2 upsampling included) and crop_concat.
#include <math.h>

#include "cuda-common.cuh"
#include "kernels.h"

__global__ void unet_maxpool2x2_forward_kernel(float *y, const float *x, size_t planes, int h,
                                               int w)
{
    const int ho = h / 2, wo = w / 2;
    size_t count = planes * (size_t)ho * wo;
    UNET_GRID_STRIDE(o, count) {
        size_t plane = o / ((size_t)ho * wo);
        int r = (int)(o % ((size_t)ho * wo));
        int oy = r / wo, ox = r % wo;
        const float *p = x + plane * (size_t)h * w + (size_t)(2 * oy) * w + 2 * ox;
        float v[4] = { p[0], p[1], p[w], p[w + 1] };
        y[o] = v[unet_k_argmax4(v[0], v[1], v[2], v[3])];
    }
}

extern "C" cudaError_t unet_maxpool2x2_forward_cuda(cudaStream_t s, float *y, const float *x,
                                                    size_t planes, int h, int w)
{
    size_t count = planes * (size_t)(h / 2) * (w / 2);
    if (!count)
        return cudaSuccess;
    UNET_LAUNCH(unet_maxpool2x2_forward_kernel, unet_cuda_grid(count), UNET_CUDA_BLOCK, s)(y, x, planes,
                                                                                    h, w);
    return cudaGetLastError();
}

// One thread per input element: windows do not overlap, so each input gets
// the window's gradient when it is the window's (first) maximum, else zero.
__global__ void unet_maxpool2x2_backward_kernel(float *dx, const float *dy, const float *x,
                                                size_t planes, int h, int w, int accumulate)
{
    const int ho = h / 2, wo = w / 2;
    size_t count = planes * (size_t)h * w;
    UNET_GRID_STRIDE(i, count) {
        size_t plane = i / ((size_t)h * w);
        int r = (int)(i % ((size_t)h * w));
        int iy = r / w, ix = r % w;
        int oy = iy / 2, ox = ix / 2;
        float g = 0.0f;
        if (oy < ho && ox < wo) {
            const float *p = x + plane * (size_t)h * w + (size_t)(2 * oy) * w + 2 * ox;
            int arg = unet_k_argmax4(p[0], p[1], p[w], p[w + 1]);
            if (arg == (iy & 1) * 2 + (ix & 1))
                g = dy[plane * (size_t)ho * wo + (size_t)oy * wo + ox];
        }
        dx[i] = accumulate ? dx[i] + g : g;
    }
}

extern "C" cudaError_t unet_maxpool2x2_backward_cuda(cudaStream_t s, float *dx, const float *dy,
                                                     const float *x, size_t planes, int h, int w,
                                                     int accumulate)
{
    size_t count = planes * (size_t)h * w;
    if (!count)
        return cudaSuccess;
    UNET_LAUNCH(unet_maxpool2x2_backward_kernel, unet_cuda_grid(count), UNET_CUDA_BLOCK, s)(
        dx, dy, x, planes, h, w, accumulate);
    return cudaGetLastError();
}

__global__ void unet_resize_bilinear_forward_kernel(float *y, const float *x, size_t planes, int hi,
                                                    int wi, int ho, int wo)
{
    size_t count = planes * (size_t)ho * wo;
    UNET_GRID_STRIDE(o, count) {
        size_t plane = o / ((size_t)ho * wo);
        int r = (int)(o % ((size_t)ho * wo));
        int y0, y1, x0, x1;
        float ly, lx;
        unet_k_bilinear_taps(r / wo, hi, ho, &y0, &y1, &ly);
        unet_k_bilinear_taps(r % wo, wi, wo, &x0, &x1, &lx);
        const float *p = x + plane * (size_t)hi * wi;
        const float *r0 = p + (size_t)y0 * wi, *r1 = p + (size_t)y1 * wi;
        y[o] = unet_k_bilinear_blend(r0[x0], r0[x1], r1[x0], r1[x1], ly, lx);
    }
}

extern "C" cudaError_t unet_resize_bilinear_forward_cuda(cudaStream_t s, float *y, const float *x,
                                                         size_t planes, int hi, int wi, int ho,
                                                         int wo)
{
    size_t count = planes * (size_t)ho * wo;
    if (!count)
        return cudaSuccess;
    UNET_LAUNCH(unet_resize_bilinear_forward_kernel, unet_cuda_grid(count), UNET_CUDA_BLOCK, s)(
        y, x, planes, hi, wi, ho, wo);
    return cudaGetLastError();
}

// Destination indices whose taps can reach input index i: floor(src) is i - 1
// or i, so src = (dst + 0.5) * in / out - 0.5 lies in [i - 1, i + 1); one index
// of slack on each side absorbs rounding, and unet_k_bilinear_weight decides.
__device__ __forceinline__ void unet_bilinear_reach(int i, int in, int out, int *lo, int *hi)
{
    float scale = (float)in / (float)out;
    int a = (int)floorf(((float)i - 0.5f) / scale - 0.5f) - 1;
    int b = (int)ceilf(((float)i + 1.5f) / scale - 0.5f) + 1;
    *lo = a < 0 ? 0 : a;
    *hi = b > out - 1 ? out - 1 : b;
}

// Gather form of the backward pass (no atomics, so the sums repeat exactly):
// dx[iy,ix] = sum over destinations of wy * wx * dy[oy,ox].
__global__ void unet_resize_bilinear_backward_kernel(float *dx, const float *dy, size_t planes,
                                                     int hi, int wi, int ho, int wo,
                                                     int accumulate)
{
    size_t count = planes * (size_t)hi * wi;
    UNET_GRID_STRIDE(i, count) {
        size_t plane = i / ((size_t)hi * wi);
        int r = (int)(i % ((size_t)hi * wi));
        int iy = r / wi, ix = r % wi;
        int oy0, oy1, ox0, ox1;
        unet_bilinear_reach(iy, hi, ho, &oy0, &oy1);
        unet_bilinear_reach(ix, wi, wo, &ox0, &ox1);
        const float *g = dy + plane * (size_t)ho * wo;
        float sum = 0.0f;
        for (int oy = oy0; oy <= oy1; oy++) {
            float wy = unet_k_bilinear_weight(oy, hi, ho, iy);
            if (wy == 0.0f)
                continue;
            float row = 0.0f;
            for (int ox = ox0; ox <= ox1; ox++) {
                float wx = unet_k_bilinear_weight(ox, wi, wo, ix);
                if (wx != 0.0f)
                    row += wx * g[(size_t)oy * wo + ox];
            }
            sum += wy * row;
        }
        dx[i] = accumulate ? dx[i] + sum : sum;
    }
}

extern "C" cudaError_t unet_resize_bilinear_backward_cuda(cudaStream_t s, float *dx,
                                                          const float *dy, size_t planes, int hi,
                                                          int wi, int ho, int wo, int accumulate)
{
    size_t count = planes * (size_t)hi * wi;
    if (!count)
        return cudaSuccess;
    UNET_LAUNCH(unet_resize_bilinear_backward_kernel, unet_cuda_grid(count), UNET_CUDA_BLOCK, s)(
        dx, dy, planes, hi, wi, ho, wo, accumulate);
    return cudaGetLastError();
}

__global__ void unet_crop_concat_forward_kernel(float *y, const float *skip, const float *up, int n,
                                                int cs, int hs, int ws, int cu, int h, int w)
{
    const int c = cs + cu, oy = unet_k_crop_offset(hs, h), ox = unet_k_crop_offset(ws, w);
    size_t count = (size_t)n * c * h * w;
    UNET_GRID_STRIDE(i, count) {
        size_t plane = i / ((size_t)h * w);
        int r = (int)(i % ((size_t)h * w));
        int img = (int)(plane / c), ch = (int)(plane % c);
        if (ch < cs)
            y[i] = skip[((size_t)img * cs + ch) * hs * ws + (size_t)(r / w + oy) * ws + r % w + ox];
        else
            y[i] = up[((size_t)img * cu + (ch - cs)) * h * w + r];
    }
}

extern "C" cudaError_t unet_crop_concat_forward_cuda(cudaStream_t s, float *y, const float *skip,
                                                     const float *up, int n, int cs, int hs, int ws,
                                                     int cu, int h, int w)
{
    size_t count = (size_t)n * (cs + cu) * h * w;
    if (!count)
        return cudaSuccess;
    UNET_LAUNCH(unet_crop_concat_forward_kernel, unet_cuda_grid(count), UNET_CUDA_BLOCK, s)(
        y, skip, up, n, cs, hs, ws, cu, h, w);
    return cudaGetLastError();
}

// Over dskip: the centre region takes dy's first cs channels, the border
// gets zero (or keeps its value when accumulating).
__global__ void unet_crop_concat_backward_skip_kernel(float *dskip, const float *dy, int n, int cs,
                                                      int hs, int ws, int cu, int h, int w,
                                                      int accumulate)
{
    const int c = cs + cu, oy = unet_k_crop_offset(hs, h), ox = unet_k_crop_offset(ws, w);
    size_t count = (size_t)n * cs * hs * ws;
    UNET_GRID_STRIDE(i, count) {
        size_t plane = i / ((size_t)hs * ws);
        int r = (int)(i % ((size_t)hs * ws));
        int y = r / ws - oy, x = r % ws - ox;
        float g = 0.0f;
        if (y >= 0 && y < h && x >= 0 && x < w) {
            int img = (int)(plane / cs), ch = (int)(plane % cs);
            g = dy[((size_t)img * c + ch) * h * w + (size_t)y * w + x];
        }
        dskip[i] = accumulate ? dskip[i] + g : g;
    }
}

__global__ void unet_crop_concat_backward_up_kernel(float *dup, const float *dy, int n, int cs,
                                                    int cu, size_t hw, int accumulate)
{
    const int c = cs + cu;
    size_t count = (size_t)n * cu * hw;
    UNET_GRID_STRIDE(i, count) {
        size_t plane = i / hw;
        int img = (int)(plane / cu), ch = (int)(plane % cu);
        float g = dy[((size_t)img * c + cs + ch) * hw + i % hw];
        dup[i] = accumulate ? dup[i] + g : g;
    }
}

extern "C" cudaError_t unet_crop_concat_backward_cuda(cudaStream_t s, float *dskip, float *dup,
                                                      const float *dy, int n, int cs, int hs,
                                                      int ws, int cu, int h, int w,
                                                      int accumulate_skip, int accumulate_up)
{
    size_t count_skip = (size_t)n * cs * hs * ws, count_up = (size_t)n * cu * h * w;
    if (dskip && count_skip) {
        UNET_LAUNCH(unet_crop_concat_backward_skip_kernel, unet_cuda_grid(count_skip), UNET_CUDA_BLOCK, s)(dskip, dy, n, cs, hs, ws, cu, h, w,
                                                     accumulate_skip);
        cudaError_t e = cudaGetLastError();
        if (e != cudaSuccess)
            return e;
    }
    if (dup && count_up) {
        UNET_LAUNCH(unet_crop_concat_backward_up_kernel, unet_cuda_grid(count_up), UNET_CUDA_BLOCK, s)(
            dup, dy, n, cs, cu, (size_t)h * w, accumulate_up);
        return cudaGetLastError();
    }
    return cudaSuccess;
}
