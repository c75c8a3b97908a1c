import RecurEngine
import RecurStore

/// One fuzz input as a state-store snapshot record (`StreamSnapshot.decode`, what recovery reads
/// from the store): it must either be rejected with a `StoreError` or decode to a snapshot that
/// encodes and decodes back to itself, bit for bit.
///
/// Input layout: byte 0 bit 0 set means "fix the checksum": the last four bytes are replaced by
/// the CRC-32 of the rest, so that mutations reach the fields behind the checksum instead of
/// all failing it; the rest is the record.
public enum StoreRecordFuzzer {
    /// Runs one input; returns whether it decoded (for tests).
    @discardableResult
    public static func run(_ data: UnsafeRawBufferPointer) -> Bool {
        guard data.count >= 1 else { return false }
        var record = Array(data[1...])
        if data[0] & 1 == 1, record.count >= 4 {
            let crc = crc32(record[..<(record.count - 4)])
            for i in 0..<4 { record[record.count - 4 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
        }
        let snapshot: StreamSnapshot
        do {
            snapshot = try StreamSnapshot.decode(record)
        } catch {
            _ = "\(error)"
            return false
        }
        let again: StreamSnapshot
        do {
            again = try StreamSnapshot.decode(snapshot.encoded())
        } catch {
            preconditionFailure("a decoded snapshot does not decode after being encoded: \(error)")
        }
        precondition(same(again, snapshot), "a snapshot changed in an encode and decode")
        return true
    }

    /// Field by field, floats by bit pattern (a NaN must survive too).
    static func same(_ a: StreamSnapshot, _ b: StreamSnapshot) -> Bool {
        a.stream == b.stream && a.modelHash == b.modelHash && a.vocabularyHash == b.vocabularyHash
            && a.offset == b.offset && a.scoredTokens == b.scoredTokens
            && a.lossSum.bitPattern == b.lossSum.bitPattern && a.created.bitPattern == b.created.bitPattern
            && a.lastActivity.bitPattern == b.lastActivity.bitPattern && a.owner == b.owner
            && a.state.map(\.bitPattern) == b.state.map(\.bitPattern)
            && a.logProbs.map(\.bitPattern) == b.logProbs.map(\.bitPattern) && a.pendingText == b.pendingText
    }

    /// CRC-32 (IEEE, as zlib), the record's checksum.
    static func crc32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        return c ^ 0xFFFF_FFFF
    }
}
