#ifndef RECUR_HANDOVER_H
#define RECUR_HANDOVER_H

/// accept4(2) with SOCK_CLOEXEC, memfd_create(2) sealed after writing and open(2) with O_PATH:
/// Linux calls or flags that glibc declares only under _GNU_SOURCE, which Swift's Glibc module
/// does not see.

/// Accepts a connection on `listening`, close-on-exec. Returns the descriptor or -1 (errno set).
int recur_accept_cloexec(int listening);

/// A close-on-exec memfd named `name` holding `size` bytes of `data`, sealed against writing,
/// growing and shrinking. Returns the descriptor or -1 (errno set).
int recur_memfd_with(const char *name, const void *data, long size);

/// A close-on-exec O_PATH descriptor of the file at `path` itself (a symlink there is not
/// followed: the call fails with ELOOP). Returns the descriptor or -1 (errno set).
int recur_open_path_nofollow(const char *path);

#endif
