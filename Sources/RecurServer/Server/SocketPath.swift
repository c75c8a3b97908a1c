import CRecurHandover
import RecurSocketPath
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The socket file's life cycle. A socket file is replaced only when it is provably dead: a
/// connection to it is refused (ECONNREFUSED: nothing listens) and it belongs to this process's
/// user. Anything else (a live daemon, a socket this user may not connect to, a full backlog, a
/// file that is not a socket, another user's file) is a refusal to start that names the path
/// and the reason. On shutdown the file is removed only while it is still the one this process
/// bound.
enum SocketPath {
    /// The socket file a server bound: its listening descriptor and the file's identity.
    struct Bound: Sendable, Equatable {
        /// The listening descriptor (close-on-exec).
        var descriptor: Int32
        /// The path it is bound at.
        var path: String
        /// The socket file's device and inode just after `bind`; nil when it could not be read.
        var file: FileIdentity?
    }

    /// A file's device and inode: what tells one socket file from its replacement at the same path.
    struct FileIdentity: Sendable, Equatable {
        var device: UInt64
        var inode: UInt64

        init(_ info: stat) {
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
        }
    }

    /// Makes `path` free to bind, removing a stale socket file of this user's.
    /// - Throws: `ConfigurationError` naming the path and the reason when something else is there.
    static func prepare(_ path: String) throws(ConfigurationError) {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return }  // nothing there
            throw ConfigurationError("cannot check the socket path '\(path)': \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw ConfigurationError("'\(path)' exists and is not a socket; remove it or choose another socket path")
        }
        let owner = info.st_uid
        switch probe(path) {
        case 0:
            throw ConfigurationError("another process is already listening on '\(path)'; stop it or choose another socket path")
        case ECONNREFUSED:
            break  // dead: nothing listens there
        case ENOENT:
            return  // removed since lstat
        case EACCES, EPERM:
            throw ConfigurationError("cannot tell whether a daemon is listening on '\(path)': connecting is not permitted (the socket belongs to uid \(owner), mode \(String(info.st_mode & 0o777, radix: 8))), so it may be live; stop that daemon or remove the file as its owner")
        case EAGAIN:
            throw ConfigurationError("another process is listening on '\(path)' (its backlog is full); stop it or choose another socket path")
        case let error:
            throw ConfigurationError("cannot tell whether a daemon is listening on '\(path)' (connect: \(String(cString: strerror(error)))); remove it or choose another socket path")
        }
        guard owner == geteuid() else {
            throw ConfigurationError("'\(path)' is a stale socket of uid \(owner), not of this user (uid \(geteuid())); remove it as its owner or choose another socket path")
        }
        // Remove it only if it is still the file probed, not one bound there since.
        var now = stat()
        guard lstat(path, &now) == 0 else { return }
        guard FileIdentity(now) == FileIdentity(info) else {
            throw ConfigurationError("'\(path)' was replaced while recurd checked it; another process is using the path")
        }
        guard unlink(path) == 0 || errno == ENOENT else {
            throw ConfigurationError("cannot remove the stale socket '\(path)': \(String(cString: strerror(errno)))")
        }
    }

    /// Connects to the Unix socket at `path`: 0 when a connection is accepted, else the errno
    /// connect() failed with (ECONNREFUSED: nothing listens).
    static func probe(_ path: String) -> Int32 {
        #if os(Linux)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        #else
        let fd = socket(AF_UNIX, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        // Non-blocking: a listener whose backlog is full answers EAGAIN instead of blocking us.
        guard let status = UnixSocketAddress.withAddress(of: path, { connect(fd, $0, $1) }) else { return ENAMETOOLONG }
        return status == 0 ? 0 : errno
    }

    /// Checks a listening descriptor that was passed in (socket activation, or the one a
    /// previous process stored): it must be a listening stream socket.
    /// - Throws: `ConfigurationError` saying what it is instead.
    static func checkPassedListening(_ descriptor: Int32) throws(ConfigurationError) {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            throw ConfigurationError("the passed listening descriptor \(descriptor) is not open: \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw ConfigurationError("the passed listening descriptor \(descriptor) is not a socket")
        }
        var listening: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) == 0, listening != 0 else {
            throw ConfigurationError("the passed descriptor \(descriptor) is a socket that does not listen; give recurd a listening socket (ListenStream= in the socket unit)")
        }
    }

    /// Whether a connection to the Unix socket at `path` is accepted.
    static func isListening(_ path: String) -> Bool { probe(path) == 0 }

    /// Why the directory holding `path` lets other users replace the socket (writable by them
    /// without the sticky bit), or nil when it does not.
    static func directoryConcern(for path: String) -> String? {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        var info = stat()
        guard stat(directory, &info) == 0 else { return nil }
        let writableByOthers = info.st_mode & 0o022 != 0
        let sticky = info.st_mode & S_ISVTX != 0
        guard writableByOthers, !sticky else { return nil }
        return "the socket's directory '\(directory)' (mode \(String(info.st_mode & 0o7777, radix: 8))) is writable by other users and has no sticky bit: any of them can remove '\(path)' and put their own socket there; use a directory only this user can write (e.g. /run/recurd)"
    }

    /// A listening Unix stream socket bound at `path` (close-on-exec), with `mode` as its
    /// permission bits when given.
    /// - Throws: `ConfigurationError` with the system's reason when it cannot be created.
    static func bindListening(_ path: String, backlog: Int32, mode: UInt32? = nil) throws(ConfigurationError) -> Bound {
        #if os(Linux)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #else
        let fd = socket(AF_UNIX, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw ConfigurationError("cannot create a socket: \(String(cString: strerror(errno)))") }
        guard let bound = UnixSocketAddress.withAddress(of: path, { bind(fd, $0, $1) }) else {
            close(fd)
            throw ConfigurationError("the socket path '\(path)' is too long")
        }
        guard bound == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw ConfigurationError("cannot bind '\(path)': \(reason)")
        }
        var result = Bound(descriptor: fd, path: path, file: nil)
        do throws(ConfigurationError) {
            // The mode is set before listen(): no connection is accepted under a looser one.
            try withSocketFile(path) { file, identity throws(ConfigurationError) in
                result.file = identity
                if let mode { try setMode(mode, of: file, path: path) }
            }
        } catch {
            close(fd)
            remove(result)
            throw error
        }
        guard listen(fd, backlog) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            remove(result)
            throw ConfigurationError("cannot listen on '\(path)': \(reason)")
        }
        return result
    }

    /// Calls `body` with a descriptor of the socket file at `path` itself (O_PATH, never
    /// following a symlink put there since bind) and its identity.
    private static func withSocketFile<T>(_ path: String,
                                          _ body: (Int32, FileIdentity) throws(ConfigurationError) -> T) throws(ConfigurationError) -> T {
        #if os(Linux)
        let file = recur_open_path_nofollow(path)
        #else
        let file = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        #endif
        guard file >= 0 else {
            throw ConfigurationError("cannot open the socket file '\(path)' just bound: \(String(cString: strerror(errno)))")
        }
        defer { close(file) }
        var info = stat()
        guard fstat(file, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK else {
            throw ConfigurationError("'\(path)' was replaced by something that is not a socket right after recurd bound it; another process is using the path")
        }
        return try body(file, FileIdentity(info))
    }

    /// Sets the permission bits of the socket file open as `file` (who may connect), through
    /// /proc/self/fd so that a file swapped in at `path` is never the one changed.
    private static func setMode(_ mode: UInt32, of file: Int32, path: String) throws(ConfigurationError) {
        #if os(Linux)
        var status = chmod("/proc/self/fd/\(file)", mode_t(mode))
        if status != 0 && errno == ENOENT { status = chmod(path, mode_t(mode)) }  // no /proc mounted
        #else
        let status = chmod(path, mode_t(mode))
        #endif
        guard status == 0 else {
            throw ConfigurationError("cannot set the mode of the socket '\(path)' to \(String(mode, radix: 8)): \(String(cString: strerror(errno)))")
        }
    }

    /// Removes the socket file the server bound (on shutdown), if the file at its path is still
    /// that one: a socket another daemon bound there since is left alone.
    static func remove(_ bound: Bound) {
        guard let file = bound.file else { return }
        var info = stat()
        guard lstat(bound.path, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK, FileIdentity(info) == file else { return }
        unlink(bound.path)
    }
}
