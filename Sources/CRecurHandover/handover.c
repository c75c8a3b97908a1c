#define _GNU_SOURCE
#include "recur_handover.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

int recur_accept_cloexec(int listening) {
    return accept4(listening, NULL, NULL, SOCK_CLOEXEC);
}

int recur_memfd_with(const char *name, const void *data, long size) {
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return -1;
    const char *p = data;
    long left = size;
    while (left > 0) {
        ssize_t n = write(fd, p, (size_t)left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int saved = errno;
            close(fd);
            errno = saved ? saved : EIO;
            return -1;
        }
        p += n;
        left -= n;
    }
    (void)fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
    return fd;
}

int recur_open_path_nofollow(const char *path) {
    return open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
}
