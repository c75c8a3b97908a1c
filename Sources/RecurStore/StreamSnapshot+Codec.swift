import Foundation
import RecurEngine

/// The snapshot record: a stream's checkpoint as the store keeps it, versioned and checksummed.
///
///     offset  size      field
///     0       4         magic "RCSN"
///     4       2         version (1), little-endian like every number below
///     6       2         flags: bit 0 = owner present; other bits 0
///     8       8         model hash
///     16      8         vocabulary hash
///     24      8         offset (tokens absorbed)
///     32      8         scored tokens (≤ offset)
///     40      8         loss sum, float64, finite, ≥ 0
///     48      8         created, float64 seconds since 1970, finite
///     56      8         last activity, float64, finite
///     64      4         owner uid (0 when absent)
///     68      4 + n     name: byte count, UTF-8 bytes (1...maxNameBytes)
///     ...     4 + 4s    state: float count (≤ maxFloats), float32s
///     ...     4 + 4v    log-probabilities: count (0 when offset is 0), float32s
///     ...     4 + p     pending text: byte count, bytes (see below)
///     end-4   4         CRC-32 (IEEE) of every byte before it
///
/// The pending text is what the stream's tokenizer held back: at most
/// `IncrementalEncoder.maxPendingBytes` from this version on. Records written before the word
/// tokenizer bounded its runs may hold more (a long word at any size); they are read as they
/// are, and the tokenizer makes such a run the overlong piece it is now.
extension StreamSnapshot {
    static let magic: [UInt8] = Array("RCSN".utf8)
    /// The record version this code writes and the only one it reads.
    public static let recordVersion: UInt16 = 1
    static let maxNameBytes = 1 << 16
    /// The largest offset a stored stream may claim (records and log rows): far beyond any
    /// real stream, and small enough that no arithmetic on it overflows.
    package static let maxOffset = Int(Int32.max) * 1024
    static let maxFloats = 1 << 24

    /// The record's bytes.
    public func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.bytes(Self.magic)
        w.u16(Self.recordVersion)
        w.u16(owner == nil ? 0 : 1)
        w.u64(modelHash)
        w.u64(vocabularyHash)
        w.u64(UInt64(offset))
        w.u64(UInt64(scoredTokens))
        w.u64(lossSum.bitPattern)
        w.u64(created.bitPattern)
        w.u64(lastActivity.bitPattern)
        w.u32(owner ?? 0)
        w.u32(UInt32(stream.utf8.count))
        w.bytes(Array(stream.utf8))
        w.floats(state)
        w.floats(logProbs)
        w.u32(UInt32(pendingText.count))
        w.bytes(pendingText)
        w.u32(CRC32.checksum(w.data[...]))
        return w.data
    }

    /// Reads a record made by `encoded()`. Anything else (truncated, corrupted, another
    /// version, out-of-range fields, trailing bytes) throws a `StoreError` saying what is wrong;
    /// no input makes it trap.
    public static func decode(_ bytes: [UInt8]) throws(StoreError) -> StreamSnapshot {
        guard bytes.count >= 4 + 72 else { throw StoreError("the snapshot record is \(bytes.count) bytes, too short for its header") }
        guard Array(bytes[0..<4]) == magic else { throw StoreError("the snapshot record does not start with 'RCSN'") }
        let body = bytes[..<(bytes.count - 4)]
        var tail = ByteReader(bytes[(bytes.count - 4)...])
        let expected = try tail.u32("checksum")
        guard CRC32.checksum(body) == expected else { throw StoreError("the snapshot record's checksum does not match (it is corrupted)") }
        var r = ByteReader(body.dropFirst(4))
        let version = try r.u16("version")
        guard version == recordVersion else {
            throw StoreError("the snapshot record has version \(version); this recurd reads version \(recordVersion)")
        }
        let flags = try r.u16("flags")
        guard flags & ~1 == 0 else { throw StoreError("the snapshot record has unknown flags \(flags)") }
        let modelHash = try r.u64("model hash")
        let vocabularyHash = try r.u64("vocabulary hash")
        let offset = try r.u64("offset")
        let scored = try r.u64("scored tokens")
        guard offset <= UInt64(maxOffset), scored <= offset else {
            throw StoreError("the snapshot record's offset \(offset) and scored count \(scored) are inconsistent")
        }
        let lossSum = Double(bitPattern: try r.u64("loss sum"))
        let created = Double(bitPattern: try r.u64("created"))
        let lastActivity = Double(bitPattern: try r.u64("last activity"))
        guard lossSum.isFinite, lossSum >= 0, created.isFinite, lastActivity.isFinite else {
            throw StoreError("the snapshot record's loss sum or times are not finite numbers")
        }
        let owner = try r.u32("owner")
        let nameCount = Int(try r.u32("name length"))
        guard (1...maxNameBytes).contains(nameCount) else { throw StoreError("the snapshot record's name length \(nameCount) is out of range") }
        let nameBytes = try r.bytes(nameCount, "name")
        guard let name = String(validating: nameBytes, as: UTF8.self) else { throw StoreError("the snapshot record's name is not UTF-8") }
        let state = try r.floats("state")
        let logProbs = try r.floats("log-probabilities")
        guard offset == 0 || !logProbs.isEmpty else { throw StoreError("the snapshot record has absorbed tokens but no log-probabilities") }
        let pendingCount = Int(try r.u32("pending length"))
        let pending = try r.bytes(pendingCount, "pending text")
        guard r.isAtEnd else { throw StoreError("the snapshot record has \(r.remaining) bytes after its last field") }
        return StreamSnapshot(stream: name, modelHash: modelHash, vocabularyHash: vocabularyHash, offset: Int(offset),
                              scoredTokens: Int(scored), lossSum: lossSum, created: created, lastActivity: lastActivity,
                              owner: flags & 1 == 1 ? owner : nil, state: state, logProbs: logProbs, pendingText: pending)
    }
}

/// Little-endian writer.
struct ByteWriter {
    var data: [UInt8] = []
    mutating func bytes(_ b: [UInt8]) { data += b }
    mutating func u16(_ v: UInt16) { for i in 0..<2 { data.append(UInt8(truncatingIfNeeded: v >> (8 * UInt16(i)))) } }
    mutating func u32(_ v: UInt32) { for i in 0..<4 { data.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }
    mutating func u64(_ v: UInt64) { for i in 0..<8 { data.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }
    mutating func floats(_ f: [Float]) {
        u32(UInt32(f.count))
        data.reserveCapacity(data.count + 4 * f.count)
        for x in f { u32(x.bitPattern) }
    }
}

/// Little-endian reader over a slice; every read checks the bounds and names the field.
struct ByteReader {
    private let base: ArraySlice<UInt8>
    private var position: Int

    init(_ bytes: ArraySlice<UInt8>) {
        base = bytes
        position = bytes.startIndex
    }

    var remaining: Int { base.endIndex - position }
    var isAtEnd: Bool { position == base.endIndex }

    private mutating func take(_ n: Int, _ field: String) throws(StoreError) -> ArraySlice<UInt8> {
        guard n >= 0, n <= remaining else { throw StoreError("the record ends inside its \(field)") }
        defer { position += n }
        return base[position..<(position + n)]
    }

    mutating func u16(_ field: String) throws(StoreError) -> UInt16 {
        let b = try take(2, field)
        return b.reversed().reduce(0) { $0 << 8 | UInt16($1) }
    }

    mutating func u32(_ field: String) throws(StoreError) -> UInt32 {
        let b = try take(4, field)
        return b.reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func u64(_ field: String) throws(StoreError) -> UInt64 {
        let b = try take(8, field)
        return b.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    mutating func bytes(_ n: Int, _ field: String) throws(StoreError) -> [UInt8] { Array(try take(n, field)) }

    mutating func floats(_ field: String) throws(StoreError) -> [Float] {
        let count = Int(try u32("\(field) count"))
        guard count <= StreamSnapshot.maxFloats else { throw StoreError("the record's \(field) count \(count) is out of range") }
        let b = try take(4 * count, field)
        var out = [Float](repeating: 0, count: count)
        var i = b.startIndex
        for k in 0..<count {
            out[k] = Float(bitPattern: UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24)
            i += 4
        }
        return out
    }
}

/// CRC-32 (IEEE 802.3, reflected, as zlib).
enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}

/// Token ids as stored in the log: int32, little-endian.
package enum TokenBlob {
    package static func encode(_ tokens: [Int32]) -> Data {
        var data = Data(capacity: 4 * tokens.count)
        for t in tokens { withUnsafeBytes(of: UInt32(bitPattern: t).littleEndian) { data.append(contentsOf: $0) } }
        return data
    }

    package static func decode(_ data: Data) throws(StoreError) -> [Int32] {
        guard data.count % 4 == 0 else { throw StoreError("a token log row holds \(data.count) bytes, not a whole number of tokens") }
        let bytes = [UInt8](data)
        return stride(from: 0, to: bytes.count, by: 4).map { i in
            Int32(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
        }
    }
}
