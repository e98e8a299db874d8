/* test-safetensors.c - safetensors round trip, refusal of every kind of
 * corruption, random byte flips, and the atomic writer's failure paths. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safetensors.h"
#include "test-common.h"

static uint8_t *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return buf;
}

static int write_all(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    int ok = fwrite(bytes, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* File image from a header text and n data bytes (value i & 0xff). */
static uint8_t *make_file(const char *header, size_t data_bytes, size_t *size)
{
    size_t h = strlen(header);
    *size = 8 + h + data_bytes;
    uint8_t *buf = malloc(*size);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(buf + 8, header, h);
    for (size_t i = 0; i < data_bytes; i++)
        buf[8 + h + i] = (uint8_t)i;
    return buf;
}

/* Expects header+data to be refused with a message containing want. */
static void expect_refused(const char *header, size_t data_bytes, const char *want, int line)
{
    size_t size;
    uint8_t *buf = make_file(header, data_bytes, &size);
    UnetSafetensors *st = NULL;
    UnetError err = { 0 };
    UnetStatus s = unet_safetensors_open_memory(&st, buf, size, "bad.safetensors", &err);
    if (s == UNET_OK || st != NULL) {
        fprintf(stderr, "line %d: accepted: %s\n", line, header);
        test_failures++;
        unet_safetensors_close(st);
    } else if (s != UNET_ERR_FORMAT || !strstr(err.message, "bad.safetensors") ||
               !strstr(err.message, want)) {
        fprintf(stderr, "line %d: status %d, message '%s' lacks '%s'\n", line, s, err.message, want);
        test_failures++;
    }
    free(buf);
}

#define REFUSED(h, n, want) expect_refused(h, n, want, __LINE__)

static void expect_ok(const char *header, size_t data_bytes, int line)
{
    size_t size;
    uint8_t *buf = make_file(header, data_bytes, &size);
    UnetSafetensors *st = NULL;
    UnetError err = { 0 };
    if (unet_safetensors_open_memory(&st, buf, size, "ok.safetensors", &err) != UNET_OK) {
        fprintf(stderr, "line %d: refused: %s\n", line, err.message);
        test_failures++;
    }
    unet_safetensors_close(st);
    free(buf);
}

static int count_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp-"))
            n++;
    if (d)
        closedir(d);
    return n;
}

/* Opens, reads every tensor (touching all bytes) and closes. */
static void touch_all(UnetSafetensors *st)
{
    for (size_t i = 0; i < unet_safetensors_count(st); i++) {
        const UnetStTensor *t = unet_safetensors_at(st, i);
        size_t n = (size_t)t->numel;
        float *f = malloc((n ? n : 1) * sizeof *f);
        int64_t *q = malloc((n ? n : 1) * sizeof *q);
        UnetError err = { 0 };
        if (unet_safetensors_read_f32(st, t, f, n, &err) != UNET_OK)
            unet_safetensors_read_i64(st, t, q, n, &err);
        free(f);
        free(q);
    }
    for (size_t i = 0; i < unet_safetensors_metadata_count(st); i++)
        CHECK(unet_safetensors_metadata(st, unet_safetensors_metadata_key(st, i)) != NULL);
}

int main(void)
{
    UnetError err = { 0 };
    char *dir = test_make_temp_dir("safetensors");
    CHECK(dir != NULL);
    char path[4200];
    snprintf(path, sizeof path, "%s/round.safetensors", dir);

    /* ---- round trip ---------------------------------------------------- */
    float w[2 * 3 * 3 * 3];
    for (int i = 0; i < 54; i++)
        w[i] = (float)i * 0.25f - 3.0f;
    float b[2] = { 1.5f, -2.5f };
    int64_t nbt = 123456789012345ll;
    float empty_dummy = 0.0f;
    UnetSafetensorsWriter *wr = unet_safetensors_writer_new();
    int64_t sw[4] = { 2, 3, 3, 3 }, sb[1] = { 2 }, s0[1] = { 0 };
    CHECK(unet_safetensors_writer_add(wr, "enc.conv_1.weight", UNET_DTYPE_F32, 4, sw, w, &err) == UNET_OK);
    CHECK(unet_safetensors_writer_add(wr, "enc.conv_1.bias", UNET_DTYPE_F32, 1, sb, b, &err) == UNET_OK);
    CHECK(unet_safetensors_writer_add(wr, "bn.num_batches_tracked", UNET_DTYPE_I64, 0, NULL, &nbt, &err) == UNET_OK);
    CHECK(unet_safetensors_writer_add(wr, "empty", UNET_DTYPE_F32, 1, s0, &empty_dummy, &err) == UNET_OK);
    CHECK(unet_safetensors_writer_add(wr, "enc.conv_1.bias", UNET_DTYPE_F32, 1, sb, b, &err) == UNET_ERR_INVALID);
    CHECK(strstr(err.message, "twice") != NULL);
    CHECK(unet_safetensors_writer_add(wr, "__metadata__", UNET_DTYPE_F32, 1, sb, b, &err) == UNET_ERR_INVALID);
    CHECK(unet_safetensors_writer_set_metadata(wr, "format", "unet-workbench-1", &err) == UNET_OK);
    CHECK(unet_safetensors_writer_set_metadata(wr, "model_config", "{\"a\":\"x/y \\\"q\\\" \xc3\xa9\"}", &err) == UNET_OK);
    CHECK(unet_safetensors_writer_set_metadata(wr, "format", "unet-workbench-1", &err) == UNET_OK);
    CHECK(unet_safetensors_writer_save(wr, path, &err) == UNET_OK);

    UnetSafetensors *st = NULL;
    CHECK(unet_safetensors_open(&st, path, &err) == UNET_OK);
    if (st) {
        CHECK(unet_safetensors_count(st) == 4);
        CHECK(unet_safetensors_metadata_count(st) == 2);
        CHECK(!strcmp(unet_safetensors_metadata(st, "format"), "unet-workbench-1"));
        CHECK(!strcmp(unet_safetensors_metadata(st, "model_config"), "{\"a\":\"x/y \\\"q\\\" \xc3\xa9\"}"));
        CHECK(unet_safetensors_metadata(st, "nothing") == NULL);
        const UnetStTensor *t = unet_safetensors_find(st, "enc.conv_1.weight");
        CHECK(t && t->dtype == UNET_DTYPE_F32 && t->ndim == 4 && t->shape[0] == 2 &&
              t->shape[3] == 3 && t->numel == 54);
        float back[54];
        CHECK(t && unet_safetensors_read_f32(st, t, back, 54, &err) == UNET_OK &&
              !memcmp(back, w, sizeof w));
        CHECK(t && unet_safetensors_read_f32(st, t, back, 53, &err) == UNET_ERR_INVALID);
        t = unet_safetensors_find(st, "bn.num_batches_tracked");
        int64_t q = 0;
        CHECK(t && t->ndim == 0 && t->numel == 1 && unet_safetensors_read_i64(st, t, &q, 1, &err) == UNET_OK &&
              q == nbt);
        CHECK(t && unet_safetensors_read_f32(st, t, back, 1, &err) == UNET_ERR_FORMAT);
        CHECK(strstr(err.message, "bn.num_batches_tracked") && strstr(err.message, "I64"));
        t = unet_safetensors_find(st, "empty");
        CHECK(t && t->numel == 0 && t->begin == t->end);
        /* the data area starts 8-byte aligned */
        const UnetStTensor *first = unet_safetensors_at(st, 0);
        CHECK(first && (uintptr_t)first->data % 8 == 0);
        unet_safetensors_close(st);
    }

    /* Conversions from the other float types. */
    {
        uint16_t h[4] = { 0x3c00, 0xc000, 0x0001, 0x7bff }; /* 1, -2, 2^-24, 65504 */
        uint16_t bf[2] = { 0x3f80, 0xc040 };                 /* 1, -3 */
        double d[2] = { 0.5, -1e10 };
        int64_t s4[1] = { 4 }, s2[1] = { 2 };
        UnetSafetensorsWriter *w2 = unet_safetensors_writer_new();
        unet_safetensors_writer_add(w2, "h", UNET_DTYPE_F16, 1, s4, h, &err);
        unet_safetensors_writer_add(w2, "bf", UNET_DTYPE_BF16, 1, s2, bf, &err);
        unet_safetensors_writer_add(w2, "d", UNET_DTYPE_F64, 1, s2, d, &err);
        char p2[4300];
        snprintf(p2, sizeof p2, "%s/conv.safetensors", dir);
        CHECK(unet_safetensors_writer_save(w2, p2, &err) == UNET_OK);
        unet_safetensors_writer_free(w2);
        CHECK(unet_safetensors_open(&st, p2, &err) == UNET_OK);
        float f[4];
        CHECK(unet_safetensors_read_f32(st, unet_safetensors_find(st, "h"), f, 4, &err) == UNET_OK);
        CHECK(f[0] == 1.0f && f[1] == -2.0f && f[2] == ldexpf(1.0f, -24) && f[3] == 65504.0f);
        CHECK(unet_safetensors_read_f32(st, unet_safetensors_find(st, "bf"), f, 2, &err) == UNET_OK);
        CHECK(f[0] == 1.0f && f[1] == -3.0f);
        CHECK(unet_safetensors_read_f32(st, unet_safetensors_find(st, "d"), f, 2, &err) == UNET_OK);
        CHECK(f[0] == 0.5f && f[1] == -1e10f);
        unet_safetensors_close(st);
    }

    /* ---- file-level refusals ------------------------------------------ */
    char missing[4300];
    snprintf(missing, sizeof missing, "%s/none.safetensors", dir);
    CHECK(unet_safetensors_open(&st, missing, &err) == UNET_ERR_IO && st == NULL);
    CHECK(strstr(err.message, missing) && strstr(err.message, "No such file"));
    CHECK(unet_safetensors_open(&st, dir, &err) == UNET_ERR_IO);
    CHECK(strstr(err.message, "not a regular file") != NULL);

    size_t size = 0;
    uint8_t *good = read_all(path, &size);
    CHECK(good != NULL && size > 64);
    /* truncated at every offset, through open() on a real file */
    char trunc[4300];
    snprintf(trunc, sizeof trunc, "%s/trunc.safetensors", dir);
    for (size_t cut = 0; good && cut < size; cut++) {
        write_all(trunc, good, cut);
        UnetError e2 = { 0 };
        UnetStatus s = unet_safetensors_open(&st, trunc, &e2);
        if (s != UNET_ERR_FORMAT || st || !strstr(e2.message, trunc)) {
            fprintf(stderr, "truncation at %zu of %zu: status %d '%s'\n", cut, size, s, e2.message);
            test_failures++;
            unet_safetensors_close(st);
        }
    }
    /* one byte of garbage appended */
    if (good) {
        uint8_t *longer = malloc(size + 1);
        memcpy(longer, good, size);
        longer[size] = 0;
        CHECK(unet_safetensors_open_memory(&st, longer, size + 1, "long", &err) == UNET_ERR_FORMAT);
        CHECK(strstr(err.message, "cover") != NULL);
        /* header length too large, and past the end */
        memcpy(longer, good, size);
        uint64_t huge = 1ull << 40;
        memcpy(longer, &huge, 8);
        CHECK(unet_safetensors_open_memory(&st, longer, size, "huge", &err) == UNET_ERR_FORMAT);
        CHECK(strstr(err.message, "100 MB") != NULL);
        uint64_t past = size - 7;
        memcpy(longer, &past, 8);
        CHECK(unet_safetensors_open_memory(&st, longer, size, "past", &err) == UNET_ERR_FORMAT);
        CHECK(strstr(err.message, "past the end") != NULL);
        free(longer);
    }

    /* ---- header refusals ---------------------------------------------- */
    expect_ok("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, __LINE__);
    expect_ok("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}    ", 8, __LINE__);
    expect_ok("{}", 0, __LINE__);
    REFUSED("[1,2]", 0, "not start with '{'");
    REFUSED("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, "not valid JSON");
    REFUSED("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},}", 8, "not valid JSON");
    REFUSED("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}x", 8, "not valid JSON");
    REFUSED("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}{}", 8, "not valid JSON");
    REFUSED("{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "'a': unknown dtype \"F33\"");
    REFUSED("{\"a\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype");
    REFUSED("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "'a': missing 'dtype'");
    REFUSED("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "missing 'shape'");
    REFUSED("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "missing 'data_offsets'");
    REFUSED("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8, "unexpected key 'x'");
    REFUSED("{\"a\":[1]}", 8, "'a': header entry is not a JSON object");
    REFUSED("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "shape entry 0 is -2");
    REFUSED("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, "shape entry 0");
    REFUSED("{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8, "shape is not an array");
    REFUSED("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "9 dimensions");
    REFUSED("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, "impossibly large");
    REFUSED("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "'a': F32 shape [3] needs 12 bytes but data_offsets [0,8] span 8");
    REFUSED("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", 8, "run past the end of the data");
    REFUSED("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "end before they begin");
    REFUSED("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8, "not a pair");
    REFUSED("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "not a pair");
    REFUSED("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,18446744073709551615]}}", 8, "run past the end");
    REFUSED("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlaps");
    REFUSED("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, "gap");
    REFUSED("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "tensor 'a' appears twice");
    REFUSED("{\"__metadata__\":{\"k\":1}}", 0, "__metadata__ entry 'k' is not a string");
    REFUSED("{\"__metadata__\":[]}", 0, "__metadata__ is not a JSON object");
    REFUSED("{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "empty name");
    {
        /* a NUL byte in the header padding */
        const char h[] = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}\0 ";
        uint8_t img[8 + sizeof h - 1 + 4];
        uint64_t hl = sizeof h - 1;
        memcpy(img, &hl, 8);
        memcpy(img + 8, h, sizeof h - 1);
        memset(img + 8 + hl, 0, 4);
        CHECK(unet_safetensors_open_memory(&st, img, sizeof img, "nul", &err) == UNET_ERR_FORMAT);
        CHECK(strstr(err.message, "stray bytes") != NULL);
    }
    /* names with '{' and '"' inside do not confuse the duplicate scan */
    expect_ok("{\"a{\\\"}\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
              "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, __LINE__);

    /* ---- random byte flips must never crash --------------------------- */
    if (good) {
        TestRng rng;
        test_rng_seed(&rng, 7);
        uint8_t *m = malloc(size);
        int accepted = 0;
        for (int iter = 0; iter < 4000; iter++) {
            memcpy(m, good, size);
            int flips = 1 + (int)test_rng_uniform(&rng, 0.0f, 4.0f);
            for (int k = 0; k < flips; k++) {
                size_t at = (size_t)test_rng_uniform(&rng, 0.0f, (float)size);
                if (at >= size)
                    at = size - 1;
                /* bias toward the length field and the header */
                if (iter % 3 == 0)
                    at %= 64;
                m[at] ^= (uint8_t)(1u << (int)test_rng_uniform(&rng, 0.0f, 8.0f));
            }
            UnetError e2 = { 0 };
            if (unet_safetensors_open_memory(&st, m, size, "flip", &e2) == UNET_OK) {
                accepted++;
                touch_all(st);
                unet_safetensors_close(st);
            } else {
                CHECK(e2.message[0] != '\0');
            }
        }
        printf("byte flips: %d of 4000 damaged files still parse (flips in tensor data)\n", accepted);
        free(m);
    }

    /* ---- atomic writer failures --------------------------------------- */
    /* simulated full disk at several points: the old file stays, no temp left */
    float other[256] = { 9.0f };
    int64_t s256[1] = { 256 };
    for (size_t after = 0; good && after < sizeof other; after += 97) {
        UnetSafetensorsWriter *w3 = unet_safetensors_writer_new();
        unet_safetensors_writer_add(w3, "x", UNET_DTYPE_F32, 1, s256, other, &err);
        unet_safetensors_debug_fail_after(after);
        UnetError e3 = { 0 };
        UnetStatus s = unet_safetensors_writer_save(w3, path, &e3);
        unet_safetensors_debug_fail_after(SIZE_MAX);
        unet_safetensors_writer_free(w3);
        CHECK(s == UNET_ERR_IO);
        CHECK(strstr(e3.message, path) && strstr(e3.message, strerror(ENOSPC)));
        size_t now_size;
        uint8_t *now = read_all(path, &now_size);
        CHECK(now && now_size == size && !memcmp(now, good, size));
        free(now);
        CHECK(count_temp_files(dir) == 0);
    }
    /* target is a directory: the rename fails, the temp file is removed */
    char sub[4300];
    snprintf(sub, sizeof sub, "%s/adir", dir);
    CHECK(mkdir(sub, 0755) == 0);
    CHECK(unet_safetensors_writer_save(wr, sub, &err) == UNET_ERR_IO);
    CHECK(strstr(err.message, sub) && strstr(err.message, "replacing"));
    CHECK(count_temp_files(dir) == 0);
    /* parent directory missing: temp creation fails */
    char nodir[4300];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.safetensors", dir);
    CHECK(unet_safetensors_writer_save(wr, nodir, &err) == UNET_ERR_IO);
    CHECK(strstr(err.message, nodir) && strstr(err.message, "No such file"));
    /* a successful save replaces the old file and keeps its mode */
    CHECK(chmod(path, 0640) == 0);
    CHECK(unet_safetensors_writer_save(wr, path, &err) == UNET_OK);
    struct stat sbuf;
    CHECK(stat(path, &sbuf) == 0 && (sbuf.st_mode & 0777) == 0640);
    CHECK(count_temp_files(dir) == 0);
    unet_safetensors_writer_free(wr);
    free(good);

    /* clean up */
    rmdir(sub);
    unlink(path);
    unlink(trunc);
    char p2[4300];
    snprintf(p2, sizeof p2, "%s/conv.safetensors", dir);
    unlink(p2);
    CHECK(rmdir(dir) == 0);
    free(dir);
    return test_finish("safetensors");
}
