import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The state directory: checked first (`StateDirectoryPolicy`: this user's, writable by no
/// one else, no symlinks), created 0700 if missing (tightened to 0700 if readable by others),
/// its files 0600, and held with an exclusive lock so that two daemons never share it.
enum StateDirectory {
    /// Checks, creates or tightens `path`; returns the descriptor holding the lock (kept open
    /// for the store's lifetime). Waits up to `lockWait` seconds for a previous daemon to let go.
    static func prepare(_ path: String, lockWait: Double) throws(StoreError) -> Int32 {
        try StateDirectoryPolicy.check(path)
        var info = stat()
        // A link here was checked: one of root's or this user's to a checked directory.
        if stat(path, &info) != 0 {
            guard errno == ENOENT else { throw StoreError("cannot use the state directory '\(path)': \(String(cString: strerror(errno)))") }
            guard mkdir(path, 0o700) == 0 || errno == EEXIST else {
                throw StoreError("cannot create the state directory '\(path)': \(String(cString: strerror(errno)))")
            }
            // Whatever is there now (ours, or what appeared since the check) is checked again.
            try StateDirectoryPolicy.check(path)
            guard stat(path, &info) == 0 else { throw StoreError("cannot use the state directory '\(path)': \(String(cString: strerror(errno)))") }
        }
        guard (info.st_mode & S_IFMT) == S_IFDIR else { throw StoreError("the state directory '\(path)' exists and is not a directory") }
        if info.st_mode & 0o077 != 0, chmod(path, 0o700) != 0 {
            throw StoreError("the state directory '\(path)' is open to other users and cannot be made 0700: \(String(cString: strerror(errno)))")
        }
        let lockPath = path + "/lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw StoreError("cannot open '\(lockPath)': \(String(cString: strerror(errno)))") }
        let deadline = Date().addingTimeInterval(lockWait)
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR, Date() < deadline else {
                close(fd)
                throw StoreError("the state directory '\(path)' is in use by another recurd (it holds '\(lockPath)')")
            }
            usleep(20_000)
        }
        return fd
    }

    /// Closes the lock's descriptor, which releases the directory.
    static func release(_ descriptor: Int32) { close(descriptor) }

    /// Creates `path` 0600 if missing, and makes it 0600 if it is looser. SQLite gives its -wal
    /// and -shm files the database file's mode.
    static func createPrivateFile(_ path: String) throws(StoreError) {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw StoreError("cannot create '\(path)': \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) == 0, info.st_mode & 0o077 != 0, fchmod(fd, 0o600) != 0 {
            throw StoreError("'\(path)' is open to other users and cannot be made 0600: \(String(cString: strerror(errno)))")
        }
    }
}
