/* test-common.c - helpers shared by the C tests. */
#include "test-common.h"

#include <ftw.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fileutil.h"

int test_failures = 0;

int test_finish(const char *name)
{
    if (test_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, test_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

void test_skip(const char *why)
{
    printf("SKIP: %s\n", why);
    exit(TEST_SKIP_CODE);
}

void test_rng_seed(TestRng *r, uint64_t seed)
{
    r->s = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    if (!r->s)
        r->s = 1;
}

static uint64_t next_u64(TestRng *r)
{
    uint64_t x = r->s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

float test_rng_uniform(TestRng *r, float lo, float hi)
{
    double u = (double)(next_u64(r) >> 11) / 9007199254740992.0;
    return lo + (float)(u * (hi - lo));
}

float test_rng_normal(TestRng *r)
{
    double u1 = ((double)(next_u64(r) >> 11) + 1.0) / 9007199254740993.0;
    double u2 = (double)(next_u64(r) >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

void test_fill_uniform(TestRng *r, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = test_rng_uniform(r, lo, hi);
}

double test_max_rel_diff(const float *a, const float *b, size_t n, size_t *where)
{
    double worst = 0.0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]) / fmax(1.0, fabs((double)b[i]));
        if (!(d <= worst)) { /* also catches NaN */
            worst = isnan(d) ? INFINITY : d;
            at = i;
        }
    }
    if (where)
        *where = at;
    return worst;
}

const char *test_shared_data_dir(void)
{
    const char *dir = getenv("UNET_SHARED_DATA");
    struct stat st;
    if (dir && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return dir;
    return NULL;
}

char *test_make_temp_dir(const char *tag)
{
    const char *root = getenv("UNET_BUILD_ROOT");
    size_t size = strlen(root ? root : "/tmp") + strlen(tag) + 64;
    char *path = malloc(size);
    if (!path)
        return NULL;
    snprintf(path, size, "%s/test-tmp-%s-XXXXXX", root ? root : "/tmp", tag);
    if (!mkdtemp(path)) {
        snprintf(path, size, "/tmp/unet-test-%s-XXXXXX", tag);
        if (!mkdtemp(path)) {
            free(path);
            return NULL;
        }
    }
    return path;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    (void)remove(path); /* keep going past what cannot be removed */
    return 0;
}

void test_remove_tree(const char *dir)
{
    if (dir)
        nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int test_run_captured(const char *dir, const char *env, const char *exe, const char *fmt,
                      va_list ap)
{
    char args[4096], cmd[8192];
    vsnprintf(args, sizeof args, fmt, ap);
    snprintf(cmd, sizeof cmd, "%s '%s' %s >'%s/stdout.txt' 2>'%s/stderr.txt'", env, exe, args,
             dir, dir);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

char *test_slurp(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unsigned char *data = NULL;
    size_t len;
    UnetError err;
    if (unet_read_file(path, &data, &len, &err) != UNET_OK)
        return strdup("");
    return (char *)data;
}
