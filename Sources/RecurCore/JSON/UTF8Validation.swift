/// Strict UTF-8 checking (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF), so a
/// request with broken text gets a clear error instead of silently decoded replacement characters.
public enum UTF8Validation {
    /// The offset of the first byte that does not start or continue a valid sequence, or nil
    /// when all of `bytes` is valid UTF-8.
    public static func firstInvalidOffset(_ bytes: UnsafeRawBufferPointer) -> Int? {
        let n = bytes.count
        var i = 0
        while i < n {
            // ASCII runs are the common case: skip eight bytes at a time while no high bit is set.
            while i + 8 <= n, bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                i += 8
            }
            guard i < n else { return nil }
            let lead = bytes[i]
            if lead < 0x80 { i += 1; continue }
            let length: Int
            var secondRange: ClosedRange<UInt8> = 0x80...0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; secondRange = 0xA0...0xBF
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; secondRange = 0x80...0x9F
            case 0xF0: length = 4; secondRange = 0x90...0xBF
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; secondRange = 0x80...0x8F
            default: return i
            }
            guard i + length <= n else { return i }
            guard secondRange.contains(bytes[i + 1]) else { return i }
            for j in 2..<length where bytes[i + j] & 0xC0 != 0x80 { return i }
            i += length
        }
        return nil
    }
}
