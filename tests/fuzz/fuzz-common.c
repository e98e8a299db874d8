/* fuzz-common.c - scratch folder, file writing and tree removal for the fuzz targets. */
#include "fuzz-common.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *scratch;

static void remove_scratch(void)
{
    if (scratch)
        fuzz_remove_tree(scratch);
}

const char *fuzz_scratch_dir(void)
{
    if (scratch)
        return scratch;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    size_t n = strlen(tmp) + 32;
    scratch = malloc(n);
    FUZZ_CHECK(scratch);
    snprintf(scratch, n, "%s/unet-fuzz-XXXXXX", tmp);
    FUZZ_CHECK(mkdtemp(scratch));
    atexit(remove_scratch);
    return scratch;
}

char *fuzz_write_file(const char *name, const uint8_t *data, size_t size)
{
    const char *dir = fuzz_scratch_dir();
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = malloc(n);
    FUZZ_CHECK(path);
    snprintf(path, n, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f);
    FUZZ_CHECK(size == 0 || fwrite(data, 1, size, f) == size);
    FUZZ_CHECK(fclose(f) == 0);
    return path;
}

void fuzz_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        chmod(path, 0700);
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d))) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                    continue;
                size_t n = strlen(path) + strlen(e->d_name) + 2;
                char *sub = malloc(n);
                FUZZ_CHECK(sub);
                snprintf(sub, n, "%s/%s", path, e->d_name);
                fuzz_remove_tree(sub);
                free(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    FUZZ_CHECK(s);
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}
