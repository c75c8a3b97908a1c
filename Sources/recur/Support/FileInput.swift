#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads whole input files for the commands, with errors that name the file.
enum FileInput {
    /// The bytes of `path`, or of stdin when `path` is `-`.
    /// - Parameter what: how messages name the file ("corpus", "model").
    static func contents(of path: String, what: String) throws(CLIError) -> [UInt8] {
        if path == "-" { return try readAll(fd: STDIN_FILENO, name: "standard input", what: what) }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("open the \(what) '\(path)'") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure("inspect the \(what) '\(path)'") }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            throw CLIError("the \(what) '\(path)' is a directory, not a \(what == "model" ? "safetensors model file" : "file")")
        }
        return try readAll(fd: fd, name: "'\(path)'", what: what, sizeHint: Int(info.st_size))
    }

    /// Whether a regular file exists at `path`.
    static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }

    /// Fails early, before hours of training, if the model could not be written to `path`.
    static func checkWritable(_ path: String, what: String) throws(CLIError) {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[...$0]) } ?? "."
        var info = stat()
        guard stat(directory, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw CLIError("cannot write the \(what) '\(path)': the directory '\(directory)' does not exist")
        }
        guard access(directory, W_OK) == 0 else {
            throw CLIError("cannot write the \(what) '\(path)': the directory '\(directory)' is not writable")
        }
        if stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR {
            throw CLIError("cannot write the \(what) '\(path)': it is a directory")
        }
    }

    private static func readAll(fd: Int32, name: String, what: String, sizeHint: Int = 0) throws(CLIError) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(sizeHint)
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw failure("read the \(what) \(name)") }
            if n == 0 { return bytes }
            bytes.append(contentsOf: chunk[..<n])
        }
    }

    private static func failure(_ action: String) -> CLIError {
        CLIError("cannot \(action): \(String(cString: strerror(errno)))")
    }
}
