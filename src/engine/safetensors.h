/* safetensors.h - reading and writing the safetensors tensor file format.
 *
 * Layout (https://github.com/huggingface/safetensors): an 8-byte little-endian
 * header length N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [64,1,3,3], "data_offsets": [begin, end]},
 *    ..., "__metadata__": {"key": "string value", ...}}
 * (padded with spaces so the data starts 8-byte aligned), then the raw
 * little-endian tensor bytes; offsets are relative to the start of the data.
 *
 * The reader trusts nothing in the file: every length, offset, shape and name
 * is checked against the file size before any tensor is touched, and each
 * refusal names the file and the tensor. The writer replaces its target
 * atomically: a crash or a full disk leaves the previous file intact. */
#ifndef UNET_SAFETENSORS_H
#define UNET_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef enum UnetDtype {
    UNET_DTYPE_F32 = 0,
    UNET_DTYPE_F64,
    UNET_DTYPE_F16,
    UNET_DTYPE_BF16,
    UNET_DTYPE_I64,
    UNET_DTYPE_I32,
    UNET_DTYPE_I16,
    UNET_DTYPE_I8,
    UNET_DTYPE_U64,
    UNET_DTYPE_U32,
    UNET_DTYPE_U16,
    UNET_DTYPE_U8,
    UNET_DTYPE_BOOL,
    UNET_DTYPE_COUNT
} UnetDtype;

/* "F32", "I64", ... as written in the header. */
const char *unet_dtype_name(UnetDtype d);
size_t unet_dtype_size(UnetDtype d);

/* Most dimensions a tensor may have here (PyTorch's weights use 4). */
#define UNET_ST_MAX_DIMS 8
/* Headers larger than this are refused as corrupt. */
#define UNET_ST_MAX_HEADER (100u * 1024u * 1024u)

/* ---- reading ---------------------------------------------------------- */

typedef struct UnetStTensor {
    const char *name;
    UnetDtype dtype;
    int ndim;
    int64_t shape[UNET_ST_MAX_DIMS];
    uint64_t numel;
    uint64_t begin, end;     /* byte offsets into the data area */
    const void *data;        /* begin of the bytes; may be unaligned: copy, don't cast */
} UnetStTensor;

typedef struct UnetSafetensors UnetSafetensors;

/* Maps and validates path. On failure returns NULL-ish *out and a message
 * such as "model.safetensors: tensor 'a.weight': shape [3,3] needs 36 bytes
 * but data_offsets span 32". */
UnetStatus unet_safetensors_open(UnetSafetensors **out, const char *path, UnetError *err);
/* Same over a caller's buffer (copied); label names it in messages. */
UnetStatus unet_safetensors_open_memory(UnetSafetensors **out, const void *bytes, size_t size,
                                        const char *label, UnetError *err);
void unet_safetensors_close(UnetSafetensors *st);

const char *unet_safetensors_path(const UnetSafetensors *st);
/* Tensors in file order (ascending data offset). */
size_t unet_safetensors_count(const UnetSafetensors *st);
const UnetStTensor *unet_safetensors_at(const UnetSafetensors *st, size_t i);
const UnetStTensor *unet_safetensors_find(const UnetSafetensors *st, const char *name);

/* __metadata__ entries in header order; value NULL when the key is absent. */
size_t unet_safetensors_metadata_count(const UnetSafetensors *st);
const char *unet_safetensors_metadata_key(const UnetSafetensors *st, size_t i);
const char *unet_safetensors_metadata(const UnetSafetensors *st, const char *key);

/* Copies a tensor of numel values into dst, converting F32/F64/F16/BF16 to
 * float, or I64/I32/I16/I8/U8/BOOL to int64. Refuses other conversions with a
 * message naming the tensor and both types; count must equal t->numel. */
UnetStatus unet_safetensors_read_f32(const UnetSafetensors *st, const UnetStTensor *t, float *dst,
                                     size_t count, UnetError *err);
UnetStatus unet_safetensors_read_i64(const UnetSafetensors *st, const UnetStTensor *t,
                                     int64_t *dst, size_t count, UnetError *err);

/* "[64,1,3,3]" into buf (always terminated). */
void unet_shape_format(char *buf, size_t size, int ndim, const int64_t *shape);

/* ---- writing ---------------------------------------------------------- */

typedef struct UnetSafetensorsWriter UnetSafetensorsWriter;

UnetSafetensorsWriter *unet_safetensors_writer_new(void);
void unet_safetensors_writer_free(UnetSafetensorsWriter *w);

/* Adds a tensor. data is BORROWED: it must stay valid and unchanged until
 * unet_safetensors_writer_save returns. Refuses duplicate or empty names,
 * negative dims, more than UNET_ST_MAX_DIMS dims. Tensors are written in the
 * order they are added. */
UnetStatus unet_safetensors_writer_add(UnetSafetensorsWriter *w, const char *name, UnetDtype dtype,
                                       int ndim, const int64_t *shape, const void *data,
                                       UnetError *err);
/* Sets (or replaces) one __metadata__ string; both are copied. */
UnetStatus unet_safetensors_writer_set_metadata(UnetSafetensorsWriter *w, const char *key,
                                                const char *value, UnetError *err);

/* Writes everything to path atomically: a temporary file <path>.tmp-PID-XXXXXX in
 * the same directory, every write checked, fflush + fsync, rename over path,
 * fsync of the directory. Temporary files of writers killed half-way (their
 * process is gone) are removed first. On any failure the temporary file is removed, path
 * keeps its previous content, and the message names the path and the system
 * error (e.g. "No space left on device"). */
UnetStatus unet_safetensors_writer_save(const UnetSafetensorsWriter *w, const char *path,
                                        UnetError *err);

/* Test hook: the next saves fail as if the disk filled up after `bytes`
 * bytes of the temporary file were written (errno ENOSPC). SIZE_MAX turns
 * it off (the default). Process-wide and not thread-safe: tests only. */
void unet_safetensors_debug_fail_after(size_t bytes);

#endif
