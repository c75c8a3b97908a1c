#ifndef RECUR_HANDOVER_H
#define RECUR_HANDOVER_H

/// accept4(2) with SOCK_CLOEXEC, and memfd_create(2) sealed after writing: Linux calls that
/// glibc declares only under _GNU_SOURCE, which Swift's Glibc module does not see.

/// Accepts a connection on `listening`, close-on-exec. Returns the descriptor or -1 (errno set).
int recur_accept_cloexec(int listening);

/// A close-on-exec memfd named `name` holding `size` bytes of `data`, sealed against writing,
/// growing and shrinking. Returns the descriptor or -1 (errno set).
int recur_memfd_with(const char *name, const void *data, long size);

#endif
