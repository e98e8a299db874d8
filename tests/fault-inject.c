/* fault-inject.c - LD_PRELOAD shim that makes file writes fail on cue, to
 * prove that a full disk or an I/O error gives a clear message and keeps the
 * previous file (tests/test-fault-inject.sh).
 *
 * Environment:
 *   UNET_FAULT_OP     write | fwrite | fsync | rename | fclose: the call that fails
 *                     (write and fwrite both count the bytes of write(2),
 *                     fwrite(3), fputs/fputc/putc(3); fsync includes fdatasync)
 *   UNET_FAULT_ERRNO  ENOSPC (default) | EIO | EDQUOT
 *   UNET_FAULT_AFTER  write/fwrite: bytes that still go through before the
 *                     failure (default 0); others: matching calls that succeed
 *                     first (default 0)
 *   UNET_FAULT_MATCH  only files whose path contains this (default ".tmp-":
 *                     the temporary files of the atomic writers); for rename,
 *                     the source path
 * Every failure injected is announced on stderr as
 *   fault-inject: <op> on <path> fails with <error>
 * so a test can tell that the fault really happened. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

typedef enum { OP_NONE, OP_WRITE, OP_FSYNC, OP_RENAME, OP_FCLOSE } FaultOp;

static FaultOp op = OP_NONE;
static int fault_errno = ENOSPC;
static long long budget;  /* bytes or calls left before failing */
static const char *match = ".tmp-";
static int configured;

static void configure(void)
{
    if (configured)
        return;
    configured = 1;
    const char *o = getenv("UNET_FAULT_OP");
    if (!o)
        return;
    if (!strcmp(o, "write") || !strcmp(o, "fwrite"))
        op = OP_WRITE;
    else if (!strcmp(o, "fsync"))
        op = OP_FSYNC;
    else if (!strcmp(o, "rename"))
        op = OP_RENAME;
    else if (!strcmp(o, "fclose"))
        op = OP_FCLOSE;
    const char *e = getenv("UNET_FAULT_ERRNO");
    if (e && !strcmp(e, "EIO"))
        fault_errno = EIO;
    else if (e && !strcmp(e, "EDQUOT"))
        fault_errno = EDQUOT;
    const char *a = getenv("UNET_FAULT_AFTER");
    budget = a ? atoll(a) : 0;
    const char *m = getenv("UNET_FAULT_MATCH");
    if (m)
        match = m;
}

/* Whether fd is a file the fault applies to; path gets its name. */
static int fd_matches(int fd, char *path, size_t size)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, size - 1);
    if (n <= 0)
        return 0;
    path[n] = '\0';
    return strstr(path, match) != NULL;
}

static void announce(const char *what, const char *path)
{
    char line[PATH_MAX + 128];
    int n = snprintf(line, sizeof line, "fault-inject: %s on %s fails with %s\n", what, path,
                     strerror(fault_errno));
    static ssize_t (*real_write)(int, const void *, size_t);
    if (!real_write)
        real_write = dlsym(RTLD_NEXT, "write");
    if (n > 0 && real_write)
        (void)real_write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/* For a write of n bytes to fd: how many may pass (n when no fault applies). */
static size_t write_allowance(int fd, size_t n, const char *what)
{
    configure();
    char path[PATH_MAX];
    if (op != OP_WRITE || n == 0 || !fd_matches(fd, path, sizeof path))
        return n;
    if (budget >= (long long)n) {
        budget -= (long long)n;
        return n;
    }
    size_t part = budget > 0 ? (size_t)budget : 0;
    budget = 0;
    announce(what, path);
    return part;
}

/* Marks a stream failed the way glibc does after a failing write. */
static void set_stream_error(FILE *f)
{
#ifdef _IO_ERR_SEEN
    f->_flags |= _IO_ERR_SEEN;
#else
    (void)f;
#endif
}

ssize_t write(int fd, const void *buf, size_t n)
{
    static ssize_t (*real)(int, const void *, size_t);
    if (!real)
        real = dlsym(RTLD_NEXT, "write");
    size_t ok = write_allowance(fd, n, "write");
    if (ok < n && ok == 0) {
        errno = fault_errno;
        return -1;
    }
    return real(fd, buf, ok);
}

size_t fwrite(const void *buf, size_t size, size_t count, FILE *f)
{
    static size_t (*real)(const void *, size_t, size_t, FILE *);
    if (!real)
        real = dlsym(RTLD_NEXT, "fwrite");
    size_t n = size * count;
    size_t ok = size ? write_allowance(fileno(f), n, "fwrite") : 0;
    if (!size || ok == n)
        return real(buf, size, count, f);
    size_t whole = ok / size;
    if (whole)
        real(buf, size, whole, f);
    set_stream_error(f);
    errno = fault_errno;
    return whole;
}

int fputc(int c, FILE *f)
{
    static int (*real)(int, FILE *);
    if (!real)
        real = dlsym(RTLD_NEXT, "fputc");
    if (write_allowance(fileno(f), 1, "fputc") == 0) {
        set_stream_error(f);
        errno = fault_errno;
        return EOF;
    }
    return real(c, f);
}

int putc(int c, FILE *f)
{
    return fputc(c, f);
}

int fputs(const char *s, FILE *f)
{
    static int (*real)(const char *, FILE *);
    if (!real)
        real = dlsym(RTLD_NEXT, "fputs");
    size_t n = strlen(s);
    if (write_allowance(fileno(f), n, "fputs") < n) {
        set_stream_error(f);
        errno = fault_errno;
        return EOF;
    }
    return real(s, f);
}

/* fsync, fdatasync, fclose: fail the matching call after `budget` good ones. */
static int call_fails(FaultOp which, int fd, const char *what)
{
    configure();
    char path[PATH_MAX];
    if (op != which || !fd_matches(fd, path, sizeof path))
        return 0;
    if (budget > 0) {
        budget--;
        return 0;
    }
    announce(what, path);
    return 1;
}

int fsync(int fd)
{
    static int (*real)(int);
    if (!real)
        real = dlsym(RTLD_NEXT, "fsync");
    if (call_fails(OP_FSYNC, fd, "fsync")) {
        errno = fault_errno;
        return -1;
    }
    return real(fd);
}

int fdatasync(int fd)
{
    static int (*real)(int);
    if (!real)
        real = dlsym(RTLD_NEXT, "fdatasync");
    if (call_fails(OP_FSYNC, fd, "fdatasync")) {
        errno = fault_errno;
        return -1;
    }
    return real(fd);
}

int fclose(FILE *f)
{
    static int (*real)(FILE *);
    if (!real)
        real = dlsym(RTLD_NEXT, "fclose");
    /* the last buffered bytes reach the disk here: a full disk shows now */
    if (call_fails(OP_FCLOSE, fileno(f), "fclose")) {
        real(f);
        errno = fault_errno;
        return EOF;
    }
    return real(f);
}

int rename(const char *from, const char *to)
{
    static int (*real)(const char *, const char *);
    if (!real)
        real = dlsym(RTLD_NEXT, "rename");
    configure();
    if (op == OP_RENAME && strstr(from, match)) {
        if (budget > 0) {
            budget--;
        } else {
            announce("rename", from);
            errno = fault_errno;
            return -1;
        }
    }
    return real(from, to);
}
