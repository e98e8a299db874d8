/* safetensors.c - validating safetensors reader and atomic writer. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileutil.h"

static const struct {
    const char *name;
    size_t size;
} dtype_table[UNET_DTYPE_COUNT] = {
    [UNET_DTYPE_F32] = { "F32", 4 },  [UNET_DTYPE_F64] = { "F64", 8 },
    [UNET_DTYPE_F16] = { "F16", 2 },  [UNET_DTYPE_BF16] = { "BF16", 2 },
    [UNET_DTYPE_I64] = { "I64", 8 },  [UNET_DTYPE_I32] = { "I32", 4 },
    [UNET_DTYPE_I16] = { "I16", 2 },  [UNET_DTYPE_I8] = { "I8", 1 },
    [UNET_DTYPE_U64] = { "U64", 8 },  [UNET_DTYPE_U32] = { "U32", 4 },
    [UNET_DTYPE_U16] = { "U16", 2 },  [UNET_DTYPE_U8] = { "U8", 1 },
    [UNET_DTYPE_BOOL] = { "BOOL", 1 },
};

const char *unet_dtype_name(UnetDtype d)
{
    return (unsigned)d < UNET_DTYPE_COUNT ? dtype_table[d].name : "?";
}

size_t unet_dtype_size(UnetDtype d)
{
    return (unsigned)d < UNET_DTYPE_COUNT ? dtype_table[d].size : 0;
}

static int dtype_parse(const char *s, UnetDtype *out)
{
    for (int i = 0; i < UNET_DTYPE_COUNT; i++)
        if (!strcmp(s, dtype_table[i].name)) {
            *out = (UnetDtype)i;
            return 1;
        }
    return 0;
}

void unet_shape_format(char *buf, size_t size, int ndim, const int64_t *shape)
{
    if (!size)
        return;
    size_t used = 0;
    buf[0] = '\0';
    used += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (used < size)
        snprintf(buf + used, size - used, "]");
}

/* ---- reader ----------------------------------------------------------- */

struct UnetSafetensors {
    char *path;
    const uint8_t *bytes;  /* whole file */
    size_t size;
    void *map;             /* mmap base or NULL */
    uint8_t *owned;        /* malloc copy or NULL */
    const uint8_t *data;   /* start of the data area */
    size_t data_size;
    UnetStTensor *tensors; /* sorted by begin */
    size_t count;
    char **meta_keys, **meta_values;
    size_t meta_count;
};

static void st_free(UnetSafetensors *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->count; i++)
        free((char *)st->tensors[i].name);
    free(st->tensors);
    for (size_t i = 0; i < st->meta_count; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->meta_keys);
    free(st->meta_values);
    if (st->map)
        munmap(st->map, st->size);
    free(st->owned);
    free(st->path);
    free(st);
}

void unet_safetensors_close(UnetSafetensors *st)
{
    st_free(st);
}

static uint64_t read_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int is_json_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* json-c keeps only the last of duplicate keys, so the top-level keys are
 * collected from the raw text (already known to be valid JSON) to find them. */
static int find_duplicate_key(const char *text, size_t len, char *dup, size_t dup_size)
{
    size_t cap = 64, n = 0;
    char **keys = malloc(cap * sizeof *keys);
    int depth = 0, found = 0;
    if (!keys)
        return 0;
    for (size_t i = 0; i < len && !found; i++) {
        char c = text[i];
        if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        } else if (c == '"') {
            size_t start = ++i;
            while (i < len && text[i] != '"')
                i += text[i] == '\\' ? 2 : 1;
            size_t end = i < len ? i : len;
            if (depth != 1)
                continue;
            size_t j = end + 1;
            while (j < len && is_json_space((uint8_t)text[j]))
                j++;
            if (j >= len || text[j] != ':')
                continue;
            for (size_t k = 0; k < n; k++)
                if (strlen(keys[k]) == end - start && !memcmp(keys[k], text + start, end - start)) {
                    snprintf(dup, dup_size, "%.*s", (int)(end - start), text + start);
                    found = 1;
                }
            if (found)
                break;
            if (n == cap) {
                char **grown = realloc(keys, 2 * cap * sizeof *keys);
                if (!grown)
                    break;
                keys = grown;
                cap *= 2;
            }
            keys[n] = malloc(end - start + 1);
            if (!keys[n])
                break;
            memcpy(keys[n], text + start, end - start);
            keys[n][end - start] = '\0';
            n++;
        }
    }
    for (size_t k = 0; k < n; k++)
        free(keys[k]);
    free(keys);
    return found;
}

static int get_nonneg_int(json_object *v, int64_t *out)
{
    if (!json_object_is_type(v, json_type_int))
        return 0;
    errno = 0;
    int64_t x = json_object_get_int64(v);
    if (x < 0 || (x == INT64_MAX && errno == ERANGE))
        return 0;
    *out = x;
    return 1;
}

static int cmp_tensor_offset(const void *a, const void *b)
{
    const UnetStTensor *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

static UnetStatus parse_tensor(UnetSafetensors *st, const char *name, json_object *v,
                               UnetStTensor *t, UnetError *err)
{
    const char *p = st->path;
    if (!json_object_is_type(v, json_type_object))
        return unet_error_set(err, UNET_ERR_FORMAT,
                              "%s: tensor '%s': header entry is not a JSON object", p, name);
    json_object *dtype = NULL, *shape = NULL, *offsets = NULL;
    json_object_object_foreach(v, key, val) {
        if (!strcmp(key, "dtype"))
            dtype = val;
        else if (!strcmp(key, "shape"))
            shape = val;
        else if (!strcmp(key, "data_offsets"))
            offsets = val;
        else
            return unet_error_set(err, UNET_ERR_FORMAT, "%s: tensor '%s': unexpected key '%s'", p,
                                  name, key);
    }
    if (!dtype || !shape || !offsets)
        return unet_error_set(err, UNET_ERR_FORMAT, "%s: tensor '%s': missing '%s'", p, name,
                              !dtype ? "dtype" : !shape ? "shape" : "data_offsets");
    if (!json_object_is_type(dtype, json_type_string) ||
        !dtype_parse(json_object_get_string(dtype), &t->dtype))
        return unet_error_set(err, UNET_ERR_FORMAT,
                              "%s: tensor '%s': unknown dtype %s (known: F32, F64, F16, BF16, I64, "
                              "I32, I16, I8, U64, U32, U16, U8, BOOL)",
                              p, name, json_object_to_json_string(dtype));
    if (!json_object_is_type(shape, json_type_array))
        return unet_error_set(err, UNET_ERR_FORMAT, "%s: tensor '%s': shape is not an array", p,
                              name);
    size_t nd = json_object_array_length(shape);
    if (nd > UNET_ST_MAX_DIMS)
        return unet_error_set(err, UNET_ERR_FORMAT,
                              "%s: tensor '%s': %zu dimensions, at most %d are supported", p, name,
                              nd, UNET_ST_MAX_DIMS);
    t->ndim = (int)nd;
    uint64_t numel = 1;
    int too_big = 0;
    for (size_t i = 0; i < nd; i++) {
        int64_t d;
        if (!get_nonneg_int(json_object_array_get_idx(shape, i), &d))
            return unet_error_set(err, UNET_ERR_FORMAT,
                                  "%s: tensor '%s': shape entry %zu is %s, not a non-negative "
                                  "integer",
                                  p, name, i,
                                  json_object_to_json_string(json_object_array_get_idx(shape, i)));
        t->shape[i] = d;
        if (d && numel > UINT64_MAX / (uint64_t)d)
            too_big = 1;
        else
            numel *= (uint64_t)d;
    }
    size_t esz = dtype_table[t->dtype].size;
    if (!too_big && numel > UINT64_MAX / esz)
        too_big = 1;
    char sh[160];
    unet_shape_format(sh, sizeof sh, t->ndim, t->shape);
    if (too_big)
        return unet_error_set(err, UNET_ERR_FORMAT, "%s: tensor '%s': shape %s is impossibly large",
                              p, name, sh);
    t->numel = numel;
    int64_t b, e;
    if (!json_object_is_type(offsets, json_type_array) || json_object_array_length(offsets) != 2 ||
        !get_nonneg_int(json_object_array_get_idx(offsets, 0), &b) ||
        !get_nonneg_int(json_object_array_get_idx(offsets, 1), &e))
        return unet_error_set(err, UNET_ERR_FORMAT,
                              "%s: tensor '%s': data_offsets %s is not a pair of non-negative "
                              "integers",
                              p, name, json_object_to_json_string(offsets));
    if (b > e)
        return unet_error_set(err, UNET_ERR_FORMAT,
                              "%s: tensor '%s': data_offsets [%lld,%lld] end before they begin", p,
                              name, (long long)b, (long long)e);
    if ((uint64_t)e > st->data_size)
        return unet_error_set(err, UNET_ERR_FORMAT,
                              "%s: tensor '%s': data_offsets [%lld,%lld] run past the end of the "
                              "data (%zu bytes); the file is truncated or corrupt",
                              p, name, (long long)b, (long long)e, st->data_size);
    if (numel * esz != (uint64_t)(e - b))
        return unet_error_set(err, UNET_ERR_FORMAT,
                              "%s: tensor '%s': %s shape %s needs %llu bytes but data_offsets "
                              "[%lld,%lld] span %lld",
                              p, name, dtype_table[t->dtype].name, sh,
                              (unsigned long long)(numel * esz), (long long)b, (long long)e,
                              (long long)(e - b));
    t->begin = (uint64_t)b;
    t->end = (uint64_t)e;
    t->data = st->data + b;
    return UNET_OK;
}

static UnetStatus parse_metadata(UnetSafetensors *st, json_object *v, UnetError *err)
{
    if (!json_object_is_type(v, json_type_object))
        return unet_error_set(err, UNET_ERR_FORMAT, "%s: __metadata__ is not a JSON object",
                              st->path);
    size_t n = (size_t)json_object_object_length(v);
    st->meta_keys = calloc(n ? n : 1, sizeof(char *));
    st->meta_values = calloc(n ? n : 1, sizeof(char *));
    if (!st->meta_keys || !st->meta_values)
        return unet_error_set(err, UNET_ERR_NOMEM, "%s: out of memory reading the header",
                              st->path);
    json_object_object_foreach(v, key, val) {
        if (!json_object_is_type(val, json_type_string))
            return unet_error_set(err, UNET_ERR_FORMAT,
                                  "%s: __metadata__ entry '%s' is not a string", st->path, key);
        st->meta_keys[st->meta_count] = strdup(key);
        st->meta_values[st->meta_count] = strdup(json_object_get_string(val));
        st->meta_count++;
        if (!st->meta_keys[st->meta_count - 1] || !st->meta_values[st->meta_count - 1])
            return unet_error_set(err, UNET_ERR_NOMEM, "%s: out of memory reading the header",
                                  st->path);
    }
    return UNET_OK;
}

/* What a file given as a checkpoint is instead, when its first bytes say so
 * (a PNG or TIFF image, a .npy array, a text file); NULL otherwise. */
static const char *sniff_other_format(const uint8_t *b, size_t n)
{
    if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8))
        return "a PNG image";
    if (n >= 4 && (!memcmp(b, "II*\0", 4) || !memcmp(b, "MM\0*", 4)))
        return "a TIFF image";
    if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff)
        return "a JPEG image";
    if (n >= 6 && !memcmp(b, "\x93NUMPY", 6))
        return "a .npy array";
    size_t k = n < 64 ? n : 64;
    for (size_t i = 0; i < k; i++)
        if (b[i] < 0x20 && b[i] != '\t' && b[i] != '\n' && b[i] != '\r')
            return NULL;
    return "a text file";
}

static UnetStatus parse_file(UnetSafetensors *st, UnetError *err)
{
    const char *p = st->path;
    if (st->size < 8)
        return unet_error_set(err, UNET_ERR_FORMAT,
                              "%s: file is %zu bytes, too short to be a safetensors file", p,
                              st->size);
    uint64_t n = read_le64(st->bytes);
    const char *kind = sniff_other_format(st->bytes, st->size);
    if (kind && (n > st->size - 8 || n < 2 || st->bytes[8] != '{'))
        return unet_error_set(err, UNET_ERR_FORMAT, "%s is %s, not a safetensors checkpoint", p, kind);
    if (n > UNET_ST_MAX_HEADER)
        return unet_error_set(err, UNET_ERR_FORMAT,
                              "%s: header length %llu is over the 100 MB limit; this is not a "
                              "safetensors file or it is corrupt",
                              p, (unsigned long long)n);
    if (n > st->size - 8)
        return unet_error_set(err, UNET_ERR_FORMAT,
                              "%s: header length %llu runs past the end of the file (%zu bytes); "
                              "the file is truncated or not a safetensors file",
                              p, (unsigned long long)n, st->size);
    const char *hdr = (const char *)st->bytes + 8;
    st->data = st->bytes + 8 + n;
    st->data_size = st->size - 8 - (size_t)n;
    if (n < 2 || hdr[0] != '{')
        return unet_error_set(err, UNET_ERR_FORMAT,
                              "%s: header does not start with '{'; not a safetensors file", p);

    json_tokener *tok = json_tokener_new();
    if (!tok)
        return unet_error_set(err, UNET_ERR_NOMEM, "%s: out of memory reading the header", p);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *root = json_tokener_parse_ex(tok, hdr, (int)n);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t used = tok->char_offset;
    json_tokener_free(tok);
    if (!root) {
        return unet_error_set(err, UNET_ERR_FORMAT, "%s: header is not valid JSON (%s)", p,
                              jerr == json_tokener_continue ? "it ends early"
                                                            : json_tokener_error_desc(jerr));
    }
    for (size_t i = used; i < n; i++)
        if (!is_json_space((uint8_t)hdr[i])) {
            json_object_put(root);
            return unet_error_set(err, UNET_ERR_FORMAT,
                                  "%s: header has stray bytes after its JSON at offset %zu", p,
                                  8 + i);
        }
    UnetStatus status = UNET_OK;
    char dup[256];
    if (!json_object_is_type(root, json_type_object)) {
        status = unet_error_set(err, UNET_ERR_FORMAT, "%s: header is not a JSON object", p);
        goto out;
    }
    if (find_duplicate_key(hdr, used, dup, sizeof dup)) {
        status = unet_error_set(err, UNET_ERR_FORMAT, "%s: tensor '%s' appears twice in the header",
                                p, dup);
        goto out;
    }
    size_t total = (size_t)json_object_object_length(root);
    st->tensors = calloc(total ? total : 1, sizeof *st->tensors);
    if (!st->tensors) {
        status = unet_error_set(err, UNET_ERR_NOMEM, "%s: out of memory reading the header", p);
        goto out;
    }
    json_object_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) {
            if ((status = parse_metadata(st, val, err)) != UNET_OK)
                goto out;
            continue;
        }
        if (!key[0]) {
            status = unet_error_set(err, UNET_ERR_FORMAT, "%s: a tensor has an empty name", p);
            goto out;
        }
        UnetStTensor *t = &st->tensors[st->count];
        if ((status = parse_tensor(st, key, val, t, err)) != UNET_OK)
            goto out;
        t->name = strdup(key);
        if (!t->name) {
            status = unet_error_set(err, UNET_ERR_NOMEM, "%s: out of memory reading the header", p);
            goto out;
        }
        st->count++;
    }
    /* Like the reference implementation: tensors tile the data area exactly. */
    qsort(st->tensors, st->count, sizeof *st->tensors, cmp_tensor_offset);
    uint64_t at = 0;
    for (size_t i = 0; i < st->count; i++) {
        const UnetStTensor *t = &st->tensors[i];
        if (t->begin < at) {
            status = unet_error_set(err, UNET_ERR_FORMAT,
                                    "%s: tensor '%s' (bytes %llu..%llu) overlaps tensor '%s' "
                                    "(ending at %llu)",
                                    p, t->name, (unsigned long long)t->begin,
                                    (unsigned long long)t->end, st->tensors[i - 1].name,
                                    (unsigned long long)at);
            goto out;
        }
        if (t->begin > at) {
            status = unet_error_set(err, UNET_ERR_FORMAT,
                                    "%s: tensor '%s' begins at byte %llu of the data but the "
                                    "previous tensor ends at %llu (a gap in the data area)",
                                    p, t->name, (unsigned long long)t->begin,
                                    (unsigned long long)at);
            goto out;
        }
        at = t->end;
    }
    if (at != st->data_size)
        status = unet_error_set(err, UNET_ERR_FORMAT,
                                "%s: the tensors cover %llu bytes of data but the file holds %zu; "
                                "the file is corrupt",
                                p, (unsigned long long)at, st->data_size);
out:
    json_object_put(root);
    return status;
}

UnetStatus unet_safetensors_open(UnetSafetensors **out, const char *path, UnetError *err)
{
    *out = NULL;
    UnetSafetensors *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(path))) {
        free(st);
        return unet_error_set(err, UNET_ERR_NOMEM, "%s: out of memory", path);
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        st_free(st);
        return unet_error_set(err, UNET_ERR_IO, "cannot open '%s': %s", path, strerror(e));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        st_free(st);
        return unet_error_set(err, UNET_ERR_IO, "'%s' is not a regular file", path);
    }
    st->size = (size_t)sb.st_size;
    if (st->size > 0) {
        void *m = mmap(NULL, st->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m != MAP_FAILED) {
            st->map = m;
            st->bytes = m;
        } else {
            /* Some file systems cannot map; read it instead. */
            st->owned = malloc(st->size);
            size_t got = 0;
            while (st->owned && got < st->size) {
                ssize_t r = read(fd, st->owned + got, st->size - got);
                if (r <= 0) {
                    int e = r < 0 ? errno : EIO;
                    close(fd);
                    st_free(st);
                    return unet_error_set(err, UNET_ERR_IO, "cannot read '%s': %s", path,
                                          strerror(e));
                }
                got += (size_t)r;
            }
            if (!st->owned) {
                close(fd);
                st_free(st);
                return unet_error_set(err, UNET_ERR_NOMEM, "'%s' does not fit in memory", path);
            }
            st->bytes = st->owned;
        }
    }
    close(fd);
    UnetStatus s = parse_file(st, err);
    if (s != UNET_OK) {
        st_free(st);
        return s;
    }
    *out = st;
    return UNET_OK;
}

UnetStatus unet_safetensors_open_memory(UnetSafetensors **out, const void *bytes, size_t size,
                                        const char *label, UnetError *err)
{
    *out = NULL;
    UnetSafetensors *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(label ? label : "(memory)")) ||
        !(st->owned = malloc(size ? size : 1))) {
        st_free(st);
        return unet_error_set(err, UNET_ERR_NOMEM, "%s: out of memory", label ? label : "(memory)");
    }
    if (size)
        memcpy(st->owned, bytes, size);
    st->bytes = st->owned;
    st->size = size;
    UnetStatus s = parse_file(st, err);
    if (s != UNET_OK) {
        st_free(st);
        return s;
    }
    *out = st;
    return UNET_OK;
}

const char *unet_safetensors_path(const UnetSafetensors *st) { return st->path; }
size_t unet_safetensors_count(const UnetSafetensors *st) { return st->count; }

const UnetStTensor *unet_safetensors_at(const UnetSafetensors *st, size_t i)
{
    return i < st->count ? &st->tensors[i] : NULL;
}

const UnetStTensor *unet_safetensors_find(const UnetSafetensors *st, const char *name)
{
    for (size_t i = 0; i < st->count; i++)
        if (!strcmp(st->tensors[i].name, name))
            return &st->tensors[i];
    return NULL;
}

size_t unet_safetensors_metadata_count(const UnetSafetensors *st) { return st->meta_count; }

const char *unet_safetensors_metadata_key(const UnetSafetensors *st, size_t i)
{
    return i < st->meta_count ? st->meta_keys[i] : NULL;
}

const char *unet_safetensors_metadata(const UnetSafetensors *st, const char *key)
{
    for (size_t i = 0; i < st->meta_count; i++)
        if (!strcmp(st->meta_keys[i], key))
            return st->meta_values[i];
    return NULL;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp == 0) {
        if (!man) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                man <<= 1;
                e++;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

UnetStatus unet_safetensors_read_f32(const UnetSafetensors *st, const UnetStTensor *t, float *dst,
                                     size_t count, UnetError *err)
{
    if (count != t->numel)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "%s: tensor '%s' holds %llu values, the caller expected %zu",
                              st->path, t->name, (unsigned long long)t->numel, count);
    const uint8_t *src = t->data;
    switch (t->dtype) {
    case UNET_DTYPE_F32:
        memcpy(dst, src, count * 4);
        return UNET_OK;
    case UNET_DTYPE_F64:
        for (size_t i = 0; i < count; i++) {
            double d;
            memcpy(&d, src + 8 * i, 8);
            dst[i] = (float)d;
        }
        return UNET_OK;
    case UNET_DTYPE_F16:
    case UNET_DTYPE_BF16:
        for (size_t i = 0; i < count; i++) {
            uint16_t h = (uint16_t)(src[2 * i] | (src[2 * i + 1] << 8));
            if (t->dtype == UNET_DTYPE_F16) {
                dst[i] = half_to_float(h);
            } else {
                uint32_t bits = (uint32_t)h << 16;
                memcpy(&dst[i], &bits, 4);
            }
        }
        return UNET_OK;
    default:
        return unet_error_set(err, UNET_ERR_FORMAT,
                              "%s: tensor '%s' is %s; a floating-point tensor (F32) was expected",
                              st->path, t->name, unet_dtype_name(t->dtype));
    }
}

UnetStatus unet_safetensors_read_i64(const UnetSafetensors *st, const UnetStTensor *t,
                                     int64_t *dst, size_t count, UnetError *err)
{
    if (count != t->numel)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "%s: tensor '%s' holds %llu values, the caller expected %zu",
                              st->path, t->name, (unsigned long long)t->numel, count);
    const uint8_t *src = t->data;
    for (size_t i = 0; i < count; i++) {
        switch (t->dtype) {
        case UNET_DTYPE_I64: memcpy(&dst[i], src + 8 * i, 8); break;
        case UNET_DTYPE_I32: { int32_t v; memcpy(&v, src + 4 * i, 4); dst[i] = v; break; }
        case UNET_DTYPE_I16: { int16_t v; memcpy(&v, src + 2 * i, 2); dst[i] = v; break; }
        case UNET_DTYPE_I8: dst[i] = (int8_t)src[i]; break;
        case UNET_DTYPE_U8:
        case UNET_DTYPE_BOOL: dst[i] = src[i]; break;
        default:
            return unet_error_set(err, UNET_ERR_FORMAT,
                                  "%s: tensor '%s' is %s; an integer tensor (I64) was expected",
                                  st->path, t->name, unet_dtype_name(t->dtype));
        }
    }
    return UNET_OK;
}

/* ---- writer ----------------------------------------------------------- */

typedef struct WEntry {
    char *name;
    UnetDtype dtype;
    int ndim;
    int64_t shape[UNET_ST_MAX_DIMS];
    const void *data;
    size_t nbytes;
} WEntry;

struct UnetSafetensorsWriter {
    WEntry *entries;
    size_t count, cap;
    char **meta_keys, **meta_values;
    size_t meta_count, meta_cap;
};

UnetSafetensorsWriter *unet_safetensors_writer_new(void)
{
    return calloc(1, sizeof(UnetSafetensorsWriter));
}

void unet_safetensors_writer_free(UnetSafetensorsWriter *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->count; i++)
        free(w->entries[i].name);
    free(w->entries);
    for (size_t i = 0; i < w->meta_count; i++) {
        free(w->meta_keys[i]);
        free(w->meta_values[i]);
    }
    free(w->meta_keys);
    free(w->meta_values);
    free(w);
}

UnetStatus unet_safetensors_writer_add(UnetSafetensorsWriter *w, const char *name, UnetDtype dtype,
                                       int ndim, const int64_t *shape, const void *data,
                                       UnetError *err)
{
    if (!name || !name[0] || !strcmp(name, "__metadata__"))
        return unet_error_set(err, UNET_ERR_INVALID, "safetensors: invalid tensor name '%s'",
                              name ? name : "");
    if ((unsigned)dtype >= UNET_DTYPE_COUNT)
        return unet_error_set(err, UNET_ERR_INVALID, "safetensors: tensor '%s': bad dtype", name);
    if (ndim < 0 || ndim > UNET_ST_MAX_DIMS)
        return unet_error_set(err, UNET_ERR_INVALID,
                              "safetensors: tensor '%s' has %d dimensions (0..%d allowed)", name,
                              ndim, UNET_ST_MAX_DIMS);
    for (size_t i = 0; i < w->count; i++)
        if (!strcmp(w->entries[i].name, name))
            return unet_error_set(err, UNET_ERR_INVALID, "safetensors: tensor '%s' added twice",
                                  name);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return unet_error_set(err, UNET_ERR_INVALID,
                                  "safetensors: tensor '%s' has a negative dimension", name);
        numel *= (size_t)shape[i];
    }
    if (numel && !data)
        return unet_error_set(err, UNET_ERR_INVALID, "safetensors: tensor '%s' has no data", name);
    if (w->count == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 32;
        WEntry *grown = realloc(w->entries, cap * sizeof *grown);
        if (!grown)
            return unet_error_set(err, UNET_ERR_NOMEM, "safetensors: out of memory");
        w->entries = grown;
        w->cap = cap;
    }
    WEntry *e = &w->entries[w->count];
    memset(e, 0, sizeof *e);
    if (!(e->name = strdup(name)))
        return unet_error_set(err, UNET_ERR_NOMEM, "safetensors: out of memory");
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        e->shape[i] = shape[i];
    e->data = data;
    e->nbytes = numel * dtype_table[dtype].size;
    w->count++;
    return UNET_OK;
}

UnetStatus unet_safetensors_writer_set_metadata(UnetSafetensorsWriter *w, const char *key,
                                                const char *value, UnetError *err)
{
    if (!key || !value)
        return unet_error_set(err, UNET_ERR_INVALID, "safetensors: metadata key or value missing");
    for (size_t i = 0; i < w->meta_count; i++)
        if (!strcmp(w->meta_keys[i], key)) {
            char *v = strdup(value);
            if (!v)
                return unet_error_set(err, UNET_ERR_NOMEM, "safetensors: out of memory");
            free(w->meta_values[i]);
            w->meta_values[i] = v;
            return UNET_OK;
        }
    if (w->meta_count == w->meta_cap) {
        size_t cap = w->meta_cap ? 2 * w->meta_cap : 8;
        char **k = realloc(w->meta_keys, cap * sizeof *k);
        if (!k)
            return unet_error_set(err, UNET_ERR_NOMEM, "safetensors: out of memory");
        w->meta_keys = k;
        char **v = realloc(w->meta_values, cap * sizeof *v);
        if (!v)
            return unet_error_set(err, UNET_ERR_NOMEM, "safetensors: out of memory");
        w->meta_values = v;
        w->meta_cap = cap;
    }
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return unet_error_set(err, UNET_ERR_NOMEM, "safetensors: out of memory");
    }
    w->meta_keys[w->meta_count] = k;
    w->meta_values[w->meta_count] = v;
    w->meta_count++;
    return UNET_OK;
}

static size_t debug_fail_after = SIZE_MAX;

void unet_safetensors_debug_fail_after(size_t bytes)
{
    debug_fail_after = bytes;
}

typedef struct Sink {
    FILE *f;
    size_t written;
    int error; /* errno of the first failure */
} Sink;

static void sink_write(Sink *s, const void *buf, size_t n)
{
    if (s->error || !n)
        return;
    if (debug_fail_after != SIZE_MAX && s->written + n > debug_fail_after) {
        size_t part = debug_fail_after > s->written ? debug_fail_after - s->written : 0;
        if (part)
            fwrite(buf, 1, part, s->f);
        s->written += part;
        s->error = ENOSPC;
        return;
    }
    if (fwrite(buf, 1, n, s->f) != n) {
        s->error = errno ? errno : EIO;
        return;
    }
    s->written += n;
}

static char *build_header(const UnetSafetensorsWriter *w, size_t *len_out)
{
    json_object *root = json_object_new_object();
    if (!root)
        return NULL;
    if (w->meta_count) {
        json_object *meta = json_object_new_object();
        for (size_t i = 0; i < w->meta_count; i++)
            json_object_object_add(meta, w->meta_keys[i], json_object_new_string(w->meta_values[i]));
        json_object_object_add(root, "__metadata__", meta);
    }
    uint64_t at = 0;
    for (size_t i = 0; i < w->count; i++) {
        const WEntry *e = &w->entries[i];
        json_object *t = json_object_new_object();
        json_object_object_add(t, "dtype", json_object_new_string(dtype_table[e->dtype].name));
        json_object *shape = json_object_new_array();
        for (int d = 0; d < e->ndim; d++)
            json_object_array_add(shape, json_object_new_int64(e->shape[d]));
        json_object_object_add(t, "shape", shape);
        json_object *off = json_object_new_array();
        json_object_array_add(off, json_object_new_int64((int64_t)at));
        json_object_array_add(off, json_object_new_int64((int64_t)(at + e->nbytes)));
        json_object_object_add(t, "data_offsets", off);
        json_object_object_add(root, e->name, t);
        at += e->nbytes;
    }
    const char *text = json_object_to_json_string_ext(
        root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    size_t len = text ? strlen(text) : 0;
    size_t padded = (len + 7) & ~(size_t)7; /* data starts 8-byte aligned */
    char *out = text ? malloc(padded + 1) : NULL;
    if (out) {
        memcpy(out, text, len);
        memset(out + len, ' ', padded - len);
        out[padded] = '\0';
        *len_out = padded;
    }
    json_object_put(root);
    return out;
}

UnetStatus unet_safetensors_writer_save(const UnetSafetensorsWriter *w, const char *path,
                                        UnetError *err)
{
    size_t hlen = 0;
    char *header = build_header(w, &hlen);
    if (!header)
        return unet_error_set(err, UNET_ERR_NOMEM, "cannot write '%s': out of memory", path);

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 48);
    if (!tmp) {
        free(header);
        return unet_error_set(err, UNET_ERR_NOMEM, "cannot write '%s': out of memory", path);
    }
    /* The PID in the name lets a later save remove what a killed one left. */
    unet_remove_stale_temps(path);
    snprintf(tmp, plen + 48, "%s.tmp-%ld-XXXXXX", path, (long)getpid());
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(header);
        free(tmp);
        return unet_error_set(err, UNET_ERR_IO,
                              "cannot write '%s': creating a temporary file beside it failed: %s",
                              path, strerror(e));
    }
    /* mkstemp makes 0600; a checkpoint is an ordinary file. Keep the mode of
     * the file being replaced, if any. */
    struct stat old;
    fchmod(fd, stat(path, &old) == 0 && S_ISREG(old.st_mode) ? (old.st_mode & 07777) : 0644);

    Sink s = { fdopen(fd, "wb"), 0, 0 };
    if (!s.f) {
        s.error = errno;
        close(fd);
    } else {
        uint8_t lenbytes[8];
        for (int i = 0; i < 8; i++)
            lenbytes[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
        sink_write(&s, lenbytes, 8);
        sink_write(&s, header, hlen);
        for (size_t i = 0; i < w->count; i++)
            sink_write(&s, w->entries[i].data, w->entries[i].nbytes);
        if (!s.error && fflush(s.f) != 0)
            s.error = errno;
        if (!s.error && fsync(fileno(s.f)) != 0)
            s.error = errno;
        if (fclose(s.f) != 0 && !s.error)
            s.error = errno;
    }
    free(header);
    const char *stage = "writing";
    if (!s.error && rename(tmp, path) != 0) {
        s.error = errno;
        stage = "replacing";
    }
    if (s.error) {
        unlink(tmp);
        free(tmp);
        return unet_error_set(err, UNET_ERR_IO,
                              "cannot write '%s': %s failed: %s (any previous file at that path "
                              "is unchanged)",
                              path, stage, strerror(s.error));
    }
    free(tmp);
    /* Make the rename itself durable. The file is already in place, so a
     * directory that cannot be synced is not an error. */
    char *dir = strdup(path);
    if (dir) {
        char *slash = strrchr(dir, '/');
        const char *d = slash ? (slash == dir ? "/" : (*slash = '\0', dir)) : ".";
        int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dir);
    }
    return UNET_OK;
}
