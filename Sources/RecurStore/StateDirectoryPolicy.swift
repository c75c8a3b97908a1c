#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Who the state directory must belong to, checked before recurd creates, changes or opens
/// anything in it. The store's files are opened by path (SQLite adds -wal and -shm beside the
/// database), so what makes that safe is the directory: a real directory (or a link to one
/// made by root or this user) owned by this process's user and writable by nobody else, so that no other user can put a
/// symlink or a file of theirs where recurd will open one. Its directories above must not let
/// another user rename it away either. The files recurd uses in it must be regular files of
/// this user with one link, writable by nobody else.
public enum StateDirectoryPolicy {
    /// The files in the directory that recurd opens.
    public static let fileNames = ["lock", "streams.sqlite", "streams.sqlite-wal", "streams.sqlite-shm",
                                   "streams.sqlite-journal"]

    /// Checks `path` and the files in it; a missing directory (recurd creates it 0700) or file
    /// is fine.
    /// - Throws: `StoreError` naming the path that is refused and why.
    public static func check(_ given: String) throws(StoreError) {
        // "D/" would make lstat follow a link named D.
        var path = given
        while path.count > 1, path.hasSuffix("/") { path.removeLast() }
        let user = geteuid()
        try checkAncestors(of: path, user: user)
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return }
            throw StoreError("cannot use the state directory '\(path)': \(String(cString: strerror(errno)))")
        }
        let kind = info.st_mode & S_IFMT
        if kind == S_IFLNK {
            // Only root or this user can have made a link in the checked directories above; one
            // of another user's is theirs to point anywhere. systemd's DynamicUser= makes
            // /var/lib/NAME a root-owned link to /var/lib/private/NAME.
            guard info.st_uid == 0 || info.st_uid == user else {
                throw StoreError("the state directory '\(path)' is a symbolic link of uid \(info.st_uid); recurd follows only links of root or its own user (give the real directory)")
            }
            guard let resolved = realpath(path, nil) else {
                throw StoreError("the state directory '\(path)' is a symbolic link that leads nowhere: \(String(cString: strerror(errno)))")
            }
            let target = String(cString: resolved)
            free(resolved)
            var resolvedInfo = stat()
            guard lstat(target, &resolvedInfo) == 0, resolvedInfo.st_mode & S_IFMT == S_IFDIR else {
                throw StoreError("the state directory '\(path)' is a symbolic link to '\(target)', which is not a directory")
            }
            return try check(target)
        }
        guard kind == S_IFDIR else { throw StoreError("the state directory '\(path)' exists and is not a directory") }
        guard info.st_uid == user else {
            throw StoreError("the state directory '\(path)' belongs to uid \(info.st_uid), not to this user (uid \(user)); use a directory of this user's (chown it, or let recurd create it)")
        }
        if info.st_mode & 0o022 != 0 {
            throw StoreError("the state directory '\(path)' is writable by \(writers(info.st_mode)) (mode \(octal(info.st_mode))); make it 0700 (chmod 700 '\(path)')")
        }
        for name in fileNames {
            try checkFile(path + "/" + name, user: user)
        }
    }

    /// A file recurd will open: absent, or a regular file of `user` with one link that no one
    /// else may write.
    static func checkFile(_ path: String, user: uid_t) throws(StoreError) {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return }
            throw StoreError("cannot check '\(path)' in the state directory: \(String(cString: strerror(errno)))")
        }
        let kind = info.st_mode & S_IFMT
        if kind == S_IFLNK {
            throw StoreError("'\(path)' in the state directory is a symbolic link; recurd does not follow links there (remove it)")
        }
        guard kind == S_IFREG else {
            throw StoreError("'\(path)' in the state directory is not a regular file (remove it)")
        }
        guard info.st_uid == user else {
            throw StoreError("'\(path)' in the state directory belongs to uid \(info.st_uid), not to this user (uid \(user)); remove it or chown it")
        }
        if info.st_nlink > 1 {
            throw StoreError("'\(path)' in the state directory has \(info.st_nlink) hard links; another name could change it (give it a single link)")
        }
        if info.st_mode & 0o022 != 0 {
            throw StoreError("'\(path)' in the state directory is writable by \(writers(info.st_mode)) (mode \(octal(info.st_mode))); make it 0600")
        }
    }

    /// The directories above `path`: each must belong to root or `user`, and one that every
    /// user may write must have the sticky bit (as /tmp has), or another user could rename the
    /// state directory away and put their own in its place.
    static func checkAncestors(of path: String, user: uid_t) throws(StoreError) {
        let slash = path.lastIndex(of: "/")
        let parent = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        guard let resolved = realpath(parent, nil) else {
            throw StoreError("cannot use the state directory '\(path)': its parent '\(parent)': \(String(cString: strerror(errno)))")
        }
        var directory = String(cString: resolved)
        free(resolved)
        while true {
            var info = stat()
            guard stat(directory, &info) == 0 else {
                throw StoreError("cannot use the state directory '\(path)': '\(directory)': \(String(cString: strerror(errno)))")
            }
            if info.st_uid != 0 && info.st_uid != user {
                throw StoreError("the state directory '\(path)' is inside '\(directory)', which belongs to uid \(info.st_uid): that user could replace it; choose a directory under this user's or root's")
            }
            if info.st_mode & 0o002 != 0 && info.st_mode & S_ISVTX == 0 {
                throw StoreError("the state directory '\(path)' is inside '\(directory)', which every user may write and which has no sticky bit (mode \(octal(info.st_mode))): any of them could replace it; choose another place")
            }
            guard directory != "/" else { return }
            let cut = directory.lastIndex(of: "/")!
            directory = cut == directory.startIndex ? "/" : String(directory[..<cut])
        }
    }

    private static func writers(_ mode: mode_t) -> String {
        switch (mode & 0o020 != 0, mode & 0o002 != 0) {
        case (true, true): "its group and other users"
        case (true, false): "its group"
        default: "other users"
        }
    }

    private static func octal(_ mode: mode_t) -> String { String(mode & 0o7777, radix: 8) }
}
