import CSystemd

#if canImport(Glibc)
import Glibc
#endif

/// Structured entries for the systemd journal (sd_journal_sendv(3)).
public enum Journal {
    /// Whether this process's stderr is connected to the journal: `$JOURNAL_STREAM` names
    /// stderr's device and inode (systemd.exec(5)), so a plain line on stderr would land there
    /// without its fields.
    public static func standardErrorIsJournal() -> Bool {
        guard let value = getenv("JOURNAL_STREAM").map({ String(cString: $0) }) else { return false }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var info = stat()
        guard fstat(STDERR_FILENO, &info) == 0 else { return false }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }

    /// Sends one entry; each field is (name, value), names already valid (`JournalFieldName`).
    /// Returns whether journald took it (false when no journal runs here).
    @discardableResult
    public static func send(_ fields: [(String, String)]) -> Bool {
        // Each iovec holds "NAME=value"; the value may hold any bytes, newlines included.
        let entries: [[UInt8]] = fields.map { Array($0.0.utf8) + [UInt8(ascii: "=")] + Array($0.1.utf8) }
        var vectors: [iovec] = []
        vectors.reserveCapacity(entries.count)
        return withPinned(entries, index: 0, vectors: &vectors)
    }

    /// Keeps every entry's bytes alive while sd_journal_sendv reads them.
    private static func withPinned(_ entries: [[UInt8]], index: Int, vectors: inout [iovec]) -> Bool {
        if index == entries.count {
            return vectors.withUnsafeBufferPointer { sd_journal_sendv($0.baseAddress, Int32($0.count)) } == 0
        }
        return entries[index].withUnsafeBytes { bytes in
            vectors.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count))
            return withPinned(entries, index: index + 1, vectors: &vectors)
        }
    }
}

/// Journal field names: uppercase A-Z, digits and '_', not starting with '_' or a digit, at
/// most 64 bytes (fields starting with '_' are trusted ones only journald may set).
public enum JournalFieldName {
    /// Whether journald accepts `name` from a client.
    public static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...64).contains(bytes.count), let first = bytes.first, first >= UInt8(ascii: "A"), first <= UInt8(ascii: "Z") else {
            return false
        }
        return bytes.allSatisfy { isAllowed($0) }
    }

    /// A valid field name for a log metadata key, in the `RECUR_` namespace:
    /// `recurd.stream` → `RECUR_STREAM`, `recurd.connection.max` → `RECUR_CONNECTION_MAX`,
    /// `peer-id` → `RECUR_PEER_ID`. Lowercase letters are raised; anything else becomes '_'.
    public static func forMetadataKey(_ key: String) -> String {
        var key = Substring(key)
        for prefix in ["recurd.", "recur."] where key.hasPrefix(prefix) {
            key = key.dropFirst(prefix.count)
            break
        }
        var bytes = Array("RECUR_".utf8)
        for byte in key.utf8 {
            var b = byte
            if b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z") { b -= 32 }
            bytes.append(isAllowed(b) ? b : UInt8(ascii: "_"))
        }
        if bytes.count > 64 { bytes.removeLast(bytes.count - 64) }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func isAllowed(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z")) || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "_")
    }
}
