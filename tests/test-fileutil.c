/* test-fileutil.c - path pieces, mkdir -p, sorted listings and atomic writes. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileutil.h"
#include "test-common.h"

static UnetStatus write_hello(FILE *f, void *user, UnetError *err)
{
    (void)err;
    fputs((const char *)user, f);
    return UNET_OK;
}

static UnetStatus write_then_fail(FILE *f, void *user, UnetError *err)
{
    fputs("partial", f);
    return unet_error_set(err, UNET_ERR_IO, "disk full (simulated)");
}

int main(void)
{
    char *p = unet_path_join("a/b", "c.png");
    CHECK(!strcmp(p, "a/b/c.png"));
    free(p);
    p = unet_path_join("a/b/", "c");
    CHECK(!strcmp(p, "a/b/c"));
    free(p);
    p = unet_path_join("a", "/abs");
    CHECK(!strcmp(p, "/abs"));
    free(p);
    CHECK(!strcmp(unet_path_basename("x/y/z.tif"), "z.tif"));
    CHECK(!strcmp(unet_path_extension("x/y.d/z.TIF"), "TIF"));
    CHECK(!strcmp(unet_path_extension("x/y.d/z"), ""));
    CHECK(!strcmp(unet_path_extension(".hidden"), ""));
    CHECK(unet_path_has_extension("a/B.Tiff", "tiff"));
    CHECK(!unet_path_has_extension("a/B.tif", "tiff"));
    char *s = unet_path_stem("dir.x/name.v2.png");
    CHECK(!strcmp(s, "name.v2"));
    free(s);
    s = unet_path_stem("noext");
    CHECK(!strcmp(s, "noext"));
    free(s);

    char *tmp = test_make_temp_dir("fileutil");
    CHECK(tmp != NULL);
    UnetError err = { 0 };
    char *deep = unet_path_join(tmp, "a/b/c");
    CHECK(unet_mkdir_p(deep, &err) == UNET_OK);
    CHECK(unet_path_is_dir(deep));
    CHECK(unet_mkdir_p(deep, &err) == UNET_OK); /* existing is fine */

    char *file = unet_path_join(tmp, "a/out.txt");
    CHECK(unet_write_file_atomic(file, write_hello, "first", &err) == UNET_OK);
    unsigned char *data;
    size_t len;
    CHECK(unet_read_file(file, &data, &len, &err) == UNET_OK && len == 5 && !memcmp(data, "first", 5));
    free(data);
    struct stat st;
    CHECK(stat(file, &st) == 0 && (st.st_mode & 0044)); /* not the 0600 of mkstemp (with a usual umask) */

    /* A failing writer leaves the old file and no temporary behind. */
    CHECK(unet_write_file_atomic(file, write_then_fail, NULL, &err) == UNET_ERR_IO);
    CHECK(strstr(err.message, file) && strstr(err.message, "disk full"));
    CHECK(unet_read_file(file, &data, &len, &err) == UNET_OK && len == 5 && !memcmp(data, "first", 5));
    free(data);
    char *adir = unet_path_join(tmp, "a");
    char **names;
    int n;
    CHECK(unet_list_dir(adir, &names, &n, &err) == UNET_OK);
    CHECK(n == 2 && !strcmp(names[0], "b") && !strcmp(names[1], "out.txt"));
    unet_string_list_free(names, n);

    CHECK(unet_write_buffer_atomic(file, "second!", 7, &err) == UNET_OK);
    CHECK(unet_read_file(file, &data, &len, &err) == UNET_OK && len == 7 && !strcmp((char *)data, "second!"));
    free(data);

    /* Errors name the path. */
    char *missing = unet_path_join(tmp, "nope/x.txt");
    CHECK(unet_write_buffer_atomic(missing, "x", 1, &err) == UNET_ERR_IO && strstr(err.message, missing));
    CHECK(unet_read_file(missing, &data, &len, &err) == UNET_ERR_IO && strstr(err.message, missing));
    CHECK(unet_list_dir(missing, &names, &n, &err) == UNET_ERR_IO && strstr(err.message, missing));
    CHECK(unet_mkdir_p(file, &err) == UNET_ERR_IO && strstr(err.message, "in the way"));

    unlink(file);
    rmdir(deep);
    char *ab = unet_path_join(tmp, "a/b");
    rmdir(ab);
    rmdir(adir);
    rmdir(tmp);
    free(ab);
    free(adir);
    free(missing);
    free(file);
    free(deep);
    free(tmp);
    return test_finish("fileutil");
}
