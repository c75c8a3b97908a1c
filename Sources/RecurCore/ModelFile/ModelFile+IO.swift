#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Model {
    /// Reads and validates the model file at `path`; see `init(safetensors:)`.
    /// - Throws: `.invalidModelFile` when the file cannot be read or is not a valid model.
    public init(contentsOf path: String) throws(RecurError) {
        try self.init(safetensors: try ModelFileIO.readFile(path))
    }

    /// Writes the model atomically: into a temporary file in the same directory, flushed to
    /// disk, then renamed over `path`, so readers see the old file or the new one, never half.
    /// - Throws: `.invalidModelFile` saying which step failed and why.
    public func write(to path: String, storage: StorageType = .float32) throws(RecurError) {
        try ModelFileIO.writeFileAtomically(safetensorsBytes(storage: storage), to: path)
    }
}

/// The few POSIX calls model files need, with errors turned into sentences.
enum ModelFileIO {
    private static func failure(_ what: String, _ path: String) -> RecurError {
        .invalidModelFile("cannot \(what) '\(path)': \(String(cString: strerror(errno)))")
    }

    static func readFile(_ path: String) throws(RecurError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("open", path) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure("inspect", path) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            let what = (info.st_mode & S_IFMT) == S_IFDIR ? "a directory" : "not a regular file"
            throw .invalidModelFile("'\(path)' is \(what), not a safetensors model file")
        }
        let size = Int(info.st_size)
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, size - done) }
            if n < 0, errno == EINTR { continue }
            guard n >= 0 else { throw failure("read", path) }
            guard n > 0 else {
                throw .invalidModelFile("'\(path)' shrank while being read (\(done) of \(size) bytes)")
            }
            done += n
        }
        return bytes
    }

    static func writeFileAtomically(_ bytes: [UInt8], to path: String) throws(RecurError) {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[...$0]) } ?? ""
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        var template = Array("\(directory).\(name).tmp-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw failure("create a temporary file next to", path) }
        let temporary = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        var closed = false
        var renamed = false
        defer {
            if !closed { close(fd) }
            if !renamed { unlink(temporary) }
        }
        // mkstemp creates 0600; a model is an ordinary, shareable file.
        _ = fchmod(fd, 0o644)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw failure("write", temporary) }
            done += n
        }
        guard fsync(fd) == 0 else { throw failure("flush", temporary) }
        closed = true
        guard close(fd) == 0 else { throw failure("close", temporary) }
        guard rename(temporary, path) == 0 else { throw failure("rename the temporary file to", path) }
        renamed = true
    }
}
