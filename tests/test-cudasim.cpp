// test-cudasim.cpp - (-Dcudasim=true builds only) the CUDA simulator itself: block reductions through shuffles and barriers, deferred streams, pinned copies that read the host buffer when they run, launch errors, events, capture and graph replay with frozen arguments, capture-forbidden calls, memory accounting, and the misuse it must report as a sticky fault (warp divergence around a barrier, copies out of bounds, kernels on freed memory).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;

#define EXPECT(cond, ...)                                                  \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
            failures++;                                                    \
        }                                                                  \
    } while (0)

__device__ double warp_sum(double v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

// sums[blockIdx.x] = sum of x over the block's 256-element share.
__global__ void block_sum_kernel(double *sums, const float *x, int n)
{
    __shared__ double part[8];
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    double v = i < n ? x[i] : 0.0;
    v = warp_sum(v);
    if ((threadIdx.x & 31) == 0)
        part[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x < 32) {
        v = threadIdx.x < blockDim.x / 32 ? part[threadIdx.x] : 0.0;
        v = warp_sum(v);
        if (threadIdx.x == 0)
            sums[blockIdx.x] = v;
    }
}

__global__ void fill_kernel(float *x, int n, float value)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        x[i] = value;
}

__global__ void add_kernel(float *x, int n, float value)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        x[i] += value;
}

__global__ void diverge_kernel(float *x)
{
    if (threadIdx.x < 16)
        __syncthreads();
    else
        x[0] = __shfl_down_sync(0xffffffffu, x[0], 1);
}

// Reaches a barrier only after its first block: the simulator ran the
// later blocks without fibers and must stop the kernel with a fault.
__global__ void late_barrier_kernel(float *x)
{
    if (blockIdx.x > 0)
        __syncthreads();
    x[blockIdx.x] = 1.0f;
}

#define OK(call) EXPECT((call) == cudaSuccess, "%s", cudaGetErrorString(cudaGetLastError()))

static void reductions(cudaStream_t s)
{
    const int n = 1000;
    float *hx, *dx;
    double *dsum, *hsum;
    OK(cudaHostAlloc((void **)&hx, n * sizeof(float), cudaHostAllocDefault));
    OK(cudaHostAlloc((void **)&hsum, 4 * sizeof(double), cudaHostAllocDefault));
    OK(cudaMallocAsync((void **)&dx, n * sizeof(float), s));
    OK(cudaMallocAsync((void **)&dsum, 4 * sizeof(double), s));
    for (int i = 0; i < n; i++)
        hx[i] = (float)(i + 1);
    OK(cudaMemcpyAsync(dx, hx, n * sizeof(float), cudaMemcpyHostToDevice, s));
    UNET_LAUNCH(block_sum_kernel, 4, 256, s)(dsum, dx, n);
    OK(cudaGetLastError());
    OK(cudaMemcpyAsync(hsum, dsum, 4 * sizeof(double), cudaMemcpyDeviceToHost, s));
    OK(cudaStreamSynchronize(s));
    double total = hsum[0] + hsum[1] + hsum[2] + hsum[3];
    EXPECT(total == n * (n + 1) / 2.0, "block sums add to %g", total);
    EXPECT(hsum[0] == 256 * 257 / 2.0, "block 0 sums to %g", hsum[0]);
    OK(cudaFreeAsync(dx, s));
    OK(cudaFreeAsync(dsum, s));
    OK(cudaStreamSynchronize(s));
    OK(cudaFreeHost(hx));
    OK(cudaFreeHost(hsum));
}

static void deferral(cudaStream_t s)
{
    const int n = 64;
    float *h, *d;
    OK(cudaHostAlloc((void **)&h, n * sizeof(float), cudaHostAllocDefault));
    OK(cudaMalloc((void **)&d, n * sizeof(float)));
    for (int i = 0; i < n; i++)
        h[i] = 1.0f;
    UNET_LAUNCH(fill_kernel, 1, 32, s)(d, n, 7.0f);
    OK(cudaMemcpyAsync(h, d, n * sizeof(float), cudaMemcpyDeviceToHost, s));
    cudaEvent_t ev;
    OK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    OK(cudaEventRecord(ev, s));
    EXPECT(cudaEventQuery(ev) == cudaErrorNotReady, "event done before anyone waited");
    EXPECT(h[5] == 1.0f, "the download landed before a synchronisation: %g", h[5]);
    OK(cudaEventSynchronize(ev));
    EXPECT(h[5] == 7.0f, "after the event: %g", h[5]);
    EXPECT(cudaEventQuery(ev) == cudaSuccess, "event not done after its synchronisation");

    // A pinned upload reads the host buffer when it runs, as DMA does.
    for (int i = 0; i < n; i++)
        h[i] = 2.0f;
    OK(cudaMemcpyAsync(d, h, n * sizeof(float), cudaMemcpyHostToDevice, s));
    for (int i = 0; i < n; i++)
        h[i] = 3.0f; // too early: the copy has not run
    OK(cudaMemcpyAsync(h, d, n * sizeof(float), cudaMemcpyDeviceToHost, s));
    OK(cudaStreamSynchronize(s));
    EXPECT(h[0] == 3.0f, "the upload took a snapshot: %g", h[0]);
    OK(cudaEventDestroy(ev));
    OK(cudaFree(d));
    OK(cudaFreeHost(h));
}

static void launch_errors(cudaStream_t s)
{
    float *d;
    OK(cudaMalloc((void **)&d, 16));
    UNET_LAUNCH(fill_kernel, 1, 2048, s)(d, 4, 0.0f);
    EXPECT(cudaGetLastError() == cudaErrorInvalidConfiguration, "2048 threads launched");
    EXPECT(cudaGetLastError() == cudaSuccess, "the error was not cleared");
    UNET_LAUNCH(fill_kernel, 0, 32, s)(d, 4, 0.0f);
    EXPECT(cudaGetLastError() == cudaErrorInvalidConfiguration, "an empty grid launched");
    UNET_LAUNCH(fill_kernel, dim3(1, 70000), 32, s)(d, 4, 0.0f);
    EXPECT(cudaGetLastError() == cudaErrorInvalidConfiguration, "grid.y 70000 launched");
    OK(cudaStreamSynchronize(s));
    OK(cudaFree(d));
}

static void graphs(cudaStream_t s)
{
    const int n = 100;
    float *d, *h;
    OK(cudaMalloc((void **)&d, n * sizeof(float)));
    OK(cudaHostAlloc((void **)&h, n * sizeof(float), cudaHostAllocDefault));
    UNET_LAUNCH(fill_kernel, 1, 64, s)(d, n, 0.0f);
    float value = 1.0f;
    OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    enum cudaStreamCaptureStatus st;
    OK(cudaStreamIsCapturing(s, &st));
    EXPECT(st == cudaStreamCaptureStatusActive, "not capturing");
    UNET_LAUNCH(add_kernel, 2, 64, s)(d, n, value);
    value = 100.0f; // arguments were taken at capture
    cudaGraph_t graph;
    OK(cudaStreamEndCapture(s, &graph));
    cudaGraphExec_t exec;
    OK(cudaGraphInstantiate(&exec, graph, 0));
    OK(cudaGraphDestroy(graph));
    for (int i = 0; i < 3; i++)
        OK(cudaGraphLaunch(exec, s));
    OK(cudaMemcpyAsync(h, d, n * sizeof(float), cudaMemcpyDeviceToHost, s));
    OK(cudaStreamSynchronize(s));
    EXPECT(h[0] == 3.0f && h[n - 1] == 3.0f, "3 replays of +1 give %g, %g", h[0], h[n - 1]);
    OK(cudaGraphExecDestroy(exec));

    // Unsafe calls during a thread-local capture fail and invalidate it.
    OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    void *p = NULL;
    EXPECT(cudaMalloc(&p, 64) == cudaErrorStreamCaptureUnsupported, "cudaMalloc in a capture");
    EXPECT(cudaStreamSynchronize(s) == cudaErrorStreamCaptureUnsupported,
           "synchronising a capturing stream");
    EXPECT(cudaStreamEndCapture(s, &graph) == cudaErrorStreamCaptureInvalidated,
           "the capture survived");
    (void)cudaGetLastError();
    OK(cudaStreamIsCapturing(s, &st));
    EXPECT(st == cudaStreamCaptureStatusNone, "still capturing");
    OK(cudaFree(d));
    OK(cudaFreeHost(h));
}

static void memory(cudaStream_t s)
{
    size_t free0, total;
    OK(cudaMemGetInfo(&free0, &total));
    void *p = NULL;
    EXPECT(cudaMalloc(&p, total + 1) == cudaErrorMemoryAllocation, "more than the device holds");
    EXPECT(cudaGetLastError() == cudaErrorMemoryAllocation, "the error was not kept");
    OK(cudaMallocAsync(&p, 1 << 20, s));
    size_t free1;
    OK(cudaMemGetInfo(&free1, &total));
    EXPECT(free0 - free1 >= (1 << 20), "1 MiB allocated, %zu bytes charged", free0 - free1);
    OK(cudaFreeAsync(p, s));
    OK(cudaStreamSynchronize(s));
    OK(cudaMemGetInfo(&free1, &total));
    EXPECT(free1 == free0, "%zu bytes free after the free, %zu before", free1, free0);
}

// Runs f in a child (a fault leaves the simulated device unusable): f
// must return `code`, say `message` on stderr, and every later call must
// return the same code (the fault is sticky, like a kernel fault on a GPU).
static void must_fault(const char *name, cudaError_t (*f)(void), cudaError_t code,
                       const char *message)
{
    char path[] = "/tmp/test-cudasim-XXXXXX";
    int fd = mkstemp(path);
    EXPECT(fd >= 0, "mkstemp");
    if (fd < 0)
        return;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd, 2);
        cudaError_t first = f();
        void *p = NULL;
        int sticky = cudaDeviceSynchronize() == code && cudaMalloc(&p, 64) == code &&
                     cudaGetLastError() == code && cudaGetLastError() == code;
        _exit(first != code ? 1 : !sticky ? 2 : 0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    char buf[4096] = { 0 };
    ssize_t len = pread(fd, buf, sizeof buf - 1, 0);
    (void)len;
    close(fd);
    unlink(path);
    EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "%s: child status %d (exit 1: not %s; exit 2: the fault did not stick)", name, status,
           cudaGetErrorName(code));
    EXPECT(strstr(buf, message) != NULL, "%s: stderr lacks '%s': %s", name, message, buf);
    printf("%s: %s, sticky: %.*s", name, cudaGetErrorName(code), (int)strcspn(buf, "\n") + 1,
           buf);
}

static cudaError_t divergent_warp(void)
{
    float *d;
    cudaMalloc((void **)&d, 64);
    UNET_LAUNCH(diverge_kernel, 1, 32, 0)(d);
    return cudaDeviceSynchronize();
}

static cudaError_t barrier_after_first_block(void)
{
    float *d;
    cudaMalloc((void **)&d, 64);
    UNET_LAUNCH(late_barrier_kernel, 2, 32, 0)(d);
    return cudaDeviceSynchronize();
}

static cudaError_t copy_out_of_bounds(void)
{
    float *d;
    static float h[32];
    cudaMalloc((void **)&d, 16 * sizeof(float));
    return cudaMemcpyAsync(d + 8, h, 16 * sizeof(float), cudaMemcpyHostToDevice, 0);
}

static cudaError_t kernel_after_free(void)
{
    float *d;
    cudaStream_t s;
    cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    cudaMallocAsync((void **)&d, 64, s);
    cudaFreeAsync(d, s);
    UNET_LAUNCH(fill_kernel, 1, 32, s)(d, 16, 1.0f);
    return cudaGetLastError();
}

int main(void)
{
    cudaStream_t s;
    OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    reductions(s);
    deferral(s);
    launch_errors(s);
    graphs(s);
    memory(s);
    OK(cudaStreamDestroy(s));
    must_fault("warp divergence", divergent_warp, cudaErrorLaunchFailure,
               "diverges around a barrier");
    must_fault("barrier after the first block", barrier_after_first_block, cudaErrorLaunchFailure,
               "not in its first block");
    must_fault("copy out of bounds", copy_out_of_bounds, cudaErrorInvalidValue, "past its end");
    must_fault("kernel on freed memory", kernel_after_free, cudaErrorInvalidValue,
               "freed by cudaFreeAsync");
    if (failures) {
        fprintf(stderr, "cudasim: %d checks failed\n", failures);
        return 1;
    }
    printf("cudasim: all checks passed\n");
    return 0;
}
