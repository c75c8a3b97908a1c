// Compiled with _GNU_SOURCE (Package.swift) so that <sys/socket.h> declares struct ucred.
#include "recur_peer.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#if defined(__linux__)
_Static_assert(sizeof(recur_ucred) == sizeof(struct ucred), "recur_ucred must match struct ucred");
_Static_assert(offsetof(recur_ucred, pid) == offsetof(struct ucred, pid), "pid offset");
_Static_assert(offsetof(recur_ucred, uid) == offsetof(struct ucred, uid), "uid offset");
_Static_assert(offsetof(recur_ucred, gid) == offsetof(struct ucred, gid), "gid offset");
#endif

int recur_sol_socket(void) { return SOL_SOCKET; }

int recur_so_peercred(void) {
#if defined(SO_PEERCRED)
    return SO_PEERCRED;
#else
    return 0;
#endif
}

int recur_user_in_group(uint32_t uid, uint32_t primary_gid, uint32_t group) {
    if (primary_gid == group) return 1;
    long size = sysconf(_SC_GETPW_R_SIZE_MAX);
    if (size < 1024) size = 16384;
    char *text = malloc((size_t)size);
    if (text == NULL) return -1;
    struct passwd entry, *found = NULL;
    int status = getpwuid_r((uid_t)uid, &entry, text, (size_t)size, &found);
    if (status != 0 || found == NULL) {
        free(text);
        return -1;
    }
    int result = 0;
    int count = 64;
    for (int attempt = 0; attempt < 8; attempt++) {
        gid_t *groups = malloc(sizeof(gid_t) * (size_t)count);
        if (groups == NULL) {
            result = -1;
            break;
        }
        int n = count;
#if defined(__APPLE__)
        int listed = getgrouplist(entry.pw_name, (int)primary_gid, (int *)groups, &n);
#else
        int listed = getgrouplist(entry.pw_name, (gid_t)primary_gid, groups, &n);
#endif
        if (listed >= 0) {
            for (int i = 0; i < n; i++) {
                if ((uint32_t)groups[i] == group) result = 1;
            }
            free(groups);
            break;
        }
        free(groups);
        count = n > count ? n : count * 2;
    }
    free(text);
    return result;
}

int recur_group_id(const char *name, uint32_t *gid) {
    long size = sysconf(_SC_GETGR_R_SIZE_MAX);
    if (size < 1024) size = 16384;
    for (int attempt = 0; attempt < 6; attempt++, size *= 4) {
        char *text = malloc((size_t)size);
        if (text == NULL) return -1;
        struct group entry, *found = NULL;
        int status = getgrnam_r(name, &entry, text, (size_t)size, &found);
        if (status == ERANGE) {
            free(text);
            continue;
        }
        if (status != 0 || found == NULL) {
            free(text);
            return -1;
        }
        *gid = (uint32_t)entry.gr_gid;
        free(text);
        return 0;
    }
    return -1;
}
