/* fileutil.c - atomic writes, path pieces, mkdir -p, directory listings. */
#include "fileutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* A temporary file name of another process, "<base>.tmp-PID-...", whose PID
 * is gone: what a write killed half-way (kill -9, power cut) left behind. */
static bool stale_temp_name(const char *name, const char *base, size_t base_len)
{
    if (strncmp(name, base, base_len) || strncmp(name + base_len, ".tmp-", 5))
        return false;
    const char *p = name + base_len + 5;
    char *end;
    long pid = strtol(p, &end, 10);
    if (end == p || *end != '-' || pid <= 0 || pid == (long)getpid())
        return false;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

void unet_remove_stale_temps(const char *path)
{
    if (!path || !*path)
        return;
    const char *base = unet_path_basename(path);
    size_t base_len = strlen(base);
    if (!base_len)
        return;
    char *dir = strdup(path);
    if (!dir)
        return;
    dir[base - path] = '\0';
    DIR *d = opendir(*dir ? dir : ".");
    if (d) {
        int saved = errno;
        struct dirent *e;
        while ((e = readdir(d)))
            if (stale_temp_name(e->d_name, base, base_len)) {
                char *full = malloc(strlen(dir) + strlen(e->d_name) + 1);
                if (full) {
                    strcpy(full, dir);
                    strcat(full, e->d_name);
                    unlink(full);
                    free(full);
                }
            }
        closedir(d);
        errno = saved;
    }
    free(dir);
}

UnetStatus unet_write_file_atomic(const char *path, UnetWriteFn write, void *user, UnetError *err)
{
    if (!path || !*path || !write)
        return unet_error_set(err, UNET_ERR_INVALID, "no output file name given");
    unet_remove_stale_temps(path);
    size_t n = strlen(path);
    char *tmp = malloc(n + 64);
    if (!tmp)
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory writing %s", path);
    /* A unique name beside path, created with O_EXCL and mode 0666 so the
     * umask applies as for any new file (mkstemp would make it 0600, and
     * changing the umask to learn it is not thread-safe). */
    static unsigned long counter;
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        unsigned long k = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
        snprintf(tmp, n + 64, "%s.tmp-%ld-%lu", path, (long)getpid(), k);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        UnetStatus st = unet_error_set(err, UNET_ERR_IO, "cannot write %s: %s (check that the folder exists and is writable)",
                                       path, strerror(errno));
        free(tmp);
        return st;
    }
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        UnetStatus st = unet_error_set(err, UNET_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        close(fd);
        unlink(tmp);
        free(tmp);
        return st;
    }
    UnetError local = { 0 };
    UnetStatus st = write(f, user, &local);
    if (st == UNET_OK && (fflush(f) != 0 || ferror(f)))
        st = unet_error_set(&local, UNET_ERR_IO, "%s", strerror(errno));
    if (st == UNET_OK && fsync(fileno(f)) != 0 && errno != EINVAL && errno != EROFS)
        st = unet_error_set(&local, UNET_ERR_IO, "%s", strerror(errno));
    if (fclose(f) != 0 && st == UNET_OK)
        st = unet_error_set(&local, UNET_ERR_IO, "%s", strerror(errno));
    if (st == UNET_OK && rename(tmp, path) != 0)
        st = unet_error_set(&local, UNET_ERR_IO, "cannot rename the temporary file: %s", strerror(errno));
    if (st != UNET_OK) {
        unlink(tmp);
        if (strstr(local.message, path))
            unet_error_set(err, st, "%s", local.message);
        else
            unet_error_set(err, st, "cannot write %s: %s", path, local.message);
    }
    free(tmp);
    return st;
}

typedef struct BufferWrite {
    const void *data;
    size_t len;
} BufferWrite;

static UnetStatus write_buffer(FILE *f, void *user, UnetError *err)
{
    BufferWrite *b = user;
    if (b->len && fwrite(b->data, 1, b->len, f) != b->len)
        return unet_error_set(err, UNET_ERR_IO, "%s", strerror(errno));
    return UNET_OK;
}

UnetStatus unet_write_buffer_atomic(const char *path, const void *data, size_t len, UnetError *err)
{
    BufferWrite b = { data, len };
    return unet_write_file_atomic(path, write_buffer, &b, err);
}

UnetStatus unet_read_file(const char *path, unsigned char **data, size_t *len, UnetError *err)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return unet_error_set(err, UNET_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        cap *= 2;
        unsigned char *nb = realloc(buf, cap + 1);
        if (!nb)
            free(buf);
        buf = nb;
    }
    if (!buf) {
        fclose(f);
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory reading %s", path);
    }
    if (ferror(f)) {
        UnetStatus st = unet_error_set(err, UNET_ERR_IO, "cannot read %s: %s", path, strerror(errno));
        fclose(f);
        free(buf);
        return st;
    }
    fclose(f);
    buf[n] = 0;
    *data = buf;
    *len = n;
    return UNET_OK;
}

char *unet_path_join(const char *a, const char *b)
{
    if (!a || !*a || (b && b[0] == '/'))
        return strdup(b ? b : "");
    if (!b)
        b = "";
    size_t la = strlen(a), lb = strlen(b);
    int slash = a[la - 1] != '/';
    char *p = malloc(la + slash + lb + 1);
    if (!p)
        return NULL;
    memcpy(p, a, la);
    if (slash)
        p[la] = '/';
    memcpy(p + la + slash, b, lb + 1);
    return p;
}

const char *unet_path_basename(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

const char *unet_path_extension(const char *path)
{
    const char *base = unet_path_basename(path);
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base)
        return base + strlen(base);
    return dot + 1;
}

char *unet_path_stem(const char *path)
{
    const char *base = unet_path_basename(path);
    const char *ext = unet_path_extension(path);
    size_t n = *ext ? (size_t)(ext - 1 - base) : strlen(base);
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    memcpy(s, base, n);
    s[n] = 0;
    return s;
}

bool unet_path_has_extension(const char *path, const char *ext)
{
    return strcasecmp(unet_path_extension(path), ext) == 0;
}

bool unet_path_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool unet_path_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

UnetStatus unet_mkdir_p(const char *path, UnetError *err)
{
    if (!path || !*path)
        return unet_error_set(err, UNET_ERR_INVALID, "no folder name given");
    char *p = strdup(path);
    if (!p)
        return unet_error_set(err, UNET_ERR_NOMEM, "out of memory");
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        p[--n] = 0;
    UnetStatus st = UNET_OK;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                st = unet_error_set(err, UNET_ERR_IO, "cannot create folder %s: %s", p, strerror(errno));
                break;
            }
            *s = c;
            if (!c)
                break;
        }
    }
    if (st == UNET_OK && !unet_path_is_dir(p))
        st = unet_error_set(err, UNET_ERR_IO, "cannot create folder %s: a file of that name is in the way", p);
    free(p);
    return st;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

UnetStatus unet_list_dir(const char *dir, char ***names, int *count, UnetError *err)
{
    *names = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d)
        return unet_error_set(err, UNET_ERR_IO, "cannot open folder %s: %s", dir, strerror(errno));
    char **list = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nl = realloc(list, (size_t)cap * sizeof *nl);
            if (!nl)
                goto nomem;
            list = nl;
        }
        if (!(list[n] = strdup(e->d_name)))
            goto nomem;
        n++;
    }
    closedir(d);
    if (n)
        qsort(list, (size_t)n, sizeof *list, compare_names);
    *names = list;
    *count = n;
    return UNET_OK;
nomem:
    closedir(d);
    unet_string_list_free(list, n);
    return unet_error_set(err, UNET_ERR_NOMEM, "out of memory listing %s", dir);
}

void unet_string_list_free(char **list, int count)
{
    if (!list)
        return;
    for (int i = 0; i < count; i++)
        free(list[i]);
    free(list);
}
