/* fileutil.h - small file-system helpers shared by the engine: atomic writes,
 * path pieces, mkdir -p, sorted directory listings, whole-file reads. */
#ifndef UNET_FILEUTIL_H
#define UNET_FILEUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "error.h"

/* Writes the content of a file into f. Returns UNET_OK or fills err; the
 * helper adds the destination path to the message when it is not there. */
typedef UnetStatus (*UnetWriteFn)(FILE *f, void *user, UnetError *err);

/* Writes path atomically: the callback writes a temporary file beside path
 * ("path.tmp-PID-N"), which is flushed, synced and renamed over path. On any
 * failure the temporary file is removed and path is left as it was. The new
 * file gets mode 0666 & ~umask like fopen would give it. */
UnetStatus unet_write_file_atomic(const char *path, UnetWriteFn write, void *user, UnetError *err);

/* Removes the temporary files "path.tmp-PID-..." that writers of path in
 * processes no longer running left behind (a write killed half-way). Files of
 * live processes, this one included, are kept. The atomic writers call it
 * before each write, so at most one such file per killed write exists. */
void unet_remove_stale_temps(const char *path);

/* Same for a buffer already in memory. */
UnetStatus unet_write_buffer_atomic(const char *path, const void *data, size_t len, UnetError *err);

/* Reads a whole file into a malloc'ed buffer (NUL-terminated for text use;
 * *len excludes the NUL). */
UnetStatus unet_read_file(const char *path, unsigned char **data, size_t *len, UnetError *err);

/* "a" + "/" + "b" without doubling the slash; b absolute is returned as is.
 * Returns a malloc'ed string, NULL only when out of memory. */
char *unet_path_join(const char *a, const char *b);

/* Last component of path (pointer into path; "" for "dir/"). */
const char *unet_path_basename(const char *path);

/* Extension of the last component without the dot ("tif" for "a/b.tif";
 * "" when none; dot files like ".hidden" have none). Pointer into path. */
const char *unet_path_extension(const char *path);

/* Last component without its extension; malloc'ed ("b" for "a/b.tif"). */
char *unet_path_stem(const char *path);

/* Case-insensitive test of the extension: unet_path_has_extension(p, "png"). */
bool unet_path_has_extension(const char *path, const char *ext);

bool unet_path_is_dir(const char *path);
bool unet_path_is_file(const char *path);

/* Creates path and its missing parents (mode 0777 & ~umask); an existing
 * directory is fine, an existing non-directory is an error. */
UnetStatus unet_mkdir_p(const char *path, UnetError *err);

/* Names of the entries of dir (not "." and ".."; hidden files included),
 * sorted by strcmp. Free with unet_string_list_free. */
UnetStatus unet_list_dir(const char *dir, char ***names, int *count, UnetError *err);
void unet_string_list_free(char **list, int count);

#endif
