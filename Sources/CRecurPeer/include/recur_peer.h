#ifndef RECUR_PEER_H
#define RECUR_PEER_H

#include <stdint.h>

/// Linux's `struct ucred` (SO_PEERCRED), which glibc declares only under _GNU_SOURCE and Swift's
/// Glibc module therefore does not see. Same layout, checked at compile time in peer.c.
typedef struct {
    int32_t pid;
    uint32_t uid;
    uint32_t gid;
} recur_ucred;

/// SOL_SOCKET and SO_PEERCRED (0 on systems without it), for getsockopt of a `recur_ucred`.
int recur_sol_socket(void);
int recur_so_peercred(void);

/// Whether user `uid` (primary group `primary_gid`) is a member of group `group`, by the
/// user database (getpwuid_r, getgrouplist). 1 yes, 0 no, -1 unknown uid.
int recur_user_in_group(uint32_t uid, uint32_t primary_gid, uint32_t group);

/// The gid of the group named `name`: 0 and *gid set, or -1 if there is no such group.
int recur_group_id(const char *name, uint32_t *gid);

#endif
