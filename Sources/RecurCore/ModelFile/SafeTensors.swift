/// How float tensors are stored in a file recur writes. Reading accepts all of them.
public enum StorageType: String, Sendable, Codable, CaseIterable {
    /// 4 bytes per weight, bit-exact.
    case float32
    /// 2 bytes per weight, ~3 significant digits; magnitudes above 65504 saturate.
    case float16
    /// 2 bytes per weight, float32's range with ~2 significant digits.
    case bfloat16

    /// The safetensors dtype written for this storage.
    public var dtype: SafeTensorsDType {
        switch self {
        case .float32: .f32
        case .float16: .f16
        case .bfloat16: .bf16
        }
    }
}

/// The element types the reader understands (safetensors' own spelling as raw value).
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    /// IEEE binary32.
    case f32 = "F32"
    /// IEEE binary16.
    case f16 = "F16"
    /// bfloat16: the upper half of a binary32.
    case bf16 = "BF16"
    /// Integers: parsed and size-checked, but not convertible to weights.
    case i32 = "I32", i64 = "I64"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f16, .bf16: 2
        case .f32, .i32: 4
        case .i64: 8
        }
    }

    /// Whether `SafeTensorsFile.copyFloats` can read it.
    public var isFloat: Bool { self == .f32 || self == .f16 || self == .bf16 }
}

/// A parsed safetensors file (https://github.com/huggingface/safetensors):
///
///     u64 little-endian N | N bytes of JSON header (space-padded) | data section
///
/// The header maps each tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}`
/// (offsets relative to the data section) plus an optional `"__metadata__"` object of strings.
///
/// `init(bytes:)` validates everything before any tensor is touched, so a hostile file costs
/// at most its own size: header length within the file and ≤ `maxHeaderSize`; strict JSON;
/// known dtypes; shapes whose byte size (overflow-checked) equals their offset range; no
/// duplicate names; tensors tiling the data section exactly, without overlap, gap or trailer.
public struct SafeTensorsFile: Sendable {
    /// One tensor's header entry, already validated against the file size.
    public struct Entry: Sendable, Equatable {
        /// The tensor's name, e.g. "rnn.weight_ih_l0".
        public var name: String
        public var dtype: SafeTensorsDType
        /// Row-major dimensions; empty for a scalar.
        public var shape: [Int]
        /// Product of `shape` (1 for a scalar).
        public var elementCount: Int
        /// Where the tensor's bytes are, as offsets into the whole file.
        public var byteRange: Range<Int>
    }

    /// The largest header accepted (the Python package's own limit is the same 100 MB).
    public static let maxHeaderSize = 100_000_000

    /// The whole file.
    public let bytes: [UInt8]
    /// Tensors in header order.
    public let entries: [Entry]
    /// The `"__metadata__"` strings (empty when absent).
    public let metadata: [String: String]
    private let indexByName: [String: Int]

    /// Parses and validates the header of `bytes`; tensor data is read later, on demand.
    /// - Throws: `.invalidModelFile` saying what is wrong and where.
    public init(bytes: [UInt8]) throws(RecurError) {
        func bad(_ message: String) -> RecurError { .invalidModelFile(message) }
        // A safetensors file starts with the header's length and the header, a JSON object;
        // anything else (a text file, an empty one) is not one at all.
        guard bytes.count >= 8 else { throw Self.notSafeTensors(bytes) }
        var length: UInt64 = 0
        for i in (0..<8).reversed() { length = length << 8 | UInt64(bytes[i]) }
        let opensObject = bytes.count > 8 && bytes[8] == UInt8(ascii: "{")
        guard length <= UInt64(Self.maxHeaderSize) else {
            // Text or other data read as a length: not a damaged header, not a header at all.
            guard opensObject else { throw Self.notSafeTensors(bytes) }
            throw bad("the header length \(length) exceeds the limit of \(Self.maxHeaderSize) bytes")
        }
        guard length <= UInt64(bytes.count - 8) else {
            guard opensObject else { throw Self.notSafeTensors(bytes) }
            throw bad("it is not a complete safetensors model file: the header length \(length) runs past the end of the file (\(bytes.count) bytes); is it truncated?")
        }
        let headerEnd = 8 + Int(length)
        let json = try JSONValue.parseModelFileText(bytes, range: 8..<headerEnd, what: "the header")
        guard let members = json.objectMembers else { throw bad("the header is not a JSON object") }

        var entries: [Entry] = []
        var indexByName: [String: Int] = [:]
        var metadata: [String: String]?
        let dataSize = bytes.count - headerEnd
        for member in members {
            let (name, value) = (member.key, member.value)
            if name == "__metadata__" {
                guard metadata == nil else { throw bad("the header has two \"__metadata__\" entries") }
                metadata = try Self.parseMetadata(value)
                continue
            }
            guard indexByName[name] == nil else { throw bad("tensor '\(name)' appears twice in the header") }
            let entry = try Self.parseEntry(name: name, value, dataStart: headerEnd, dataSize: dataSize)
            indexByName[name] = entries.count
            entries.append(entry)
        }

        // The tensors must tile the data section: sorted by start, each begins where the
        // previous one ended, and the last ends at the end of the file.
        var expectedStart = headerEnd
        for entry in entries.sorted(by: { ($0.byteRange.lowerBound, $0.byteRange.upperBound) < ($1.byteRange.lowerBound, $1.byteRange.upperBound) }) {
            let begin = entry.byteRange.lowerBound - headerEnd
            if entry.byteRange.lowerBound < expectedStart {
                throw bad("tensor '\(entry.name)' (data_offsets from \(begin)) overlaps the tensor before it")
            }
            if entry.byteRange.lowerBound > expectedStart {
                throw bad("the data section has unused bytes before tensor '\(entry.name)' (data_offsets from \(begin))")
            }
            expectedStart = entry.byteRange.upperBound
        }
        guard expectedStart == bytes.count else {
            throw bad("the file has \(bytes.count - expectedStart) bytes after the last tensor's data")
        }
        self.bytes = bytes
        self.entries = entries
        self.metadata = metadata ?? [:]
        self.indexByName = indexByName
    }

    /// Why `bytes` is not a safetensors file, saying what it looks like instead.
    private static func notSafeTensors(_ bytes: [UInt8]) -> RecurError {
        let reason: String
        if bytes.isEmpty {
            reason = "it is empty"
        } else if bytes.count < 8 {
            reason = "it is only \(bytes.count) byte\(bytes.count == 1 ? "" : "s") long, too short for a safetensors header"
        } else {
            let start = bytes.prefix(16)
            let isText = start.allSatisfy { (0x20...0x7E).contains($0) || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }
            reason = "it does not begin with a safetensors header (an 8-byte length, then a JSON object)"
                + (isText ? "; it begins with text, \(Vocabulary.quoted(String(decoding: start, as: UTF8.self)))" : "")
        }
        return .invalidModelFile("it is not a safetensors model file: \(reason)")
    }

    private static func parseMetadata(_ value: JSONValue) throws(RecurError) -> [String: String] {
        if case .null = value { return [:] }
        guard let members = value.objectMembers else {
            throw .invalidModelFile("\"__metadata__\" in the header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        for member in members {
            let (key, value) = (member.key, member.value)
            guard let string = value.stringValue else {
                throw .invalidModelFile("metadata key '\(key)' has a value that is not a string")
            }
            guard metadata.updateValue(string, forKey: key) == nil else {
                throw .invalidModelFile("metadata key '\(key)' appears twice")
            }
        }
        return metadata
    }

    private static func parseEntry(name: String, _ value: JSONValue,
                                   dataStart: Int, dataSize: Int) throws(RecurError) -> Entry {
        func bad(_ message: String) -> RecurError { .invalidModelFile("tensor '\(name)' \(message)") }
        guard let fields = value.objectMembers else { throw bad("is not described by a JSON object") }
        func field(_ key: String) -> JSONValue? { fields.first { $0.key == key }?.value }

        guard let dtypeName = field("dtype")?.stringValue else { throw bad("has no string \"dtype\"") }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            let known = SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
            throw bad("has dtype '\(dtypeName)'; the supported dtypes are \(known)")
        }
        guard let shapeValues = field("shape")?.arrayElements else { throw bad("has no \"shape\" array") }
        var shape: [Int] = []
        var elementCount = 1
        for dimension in shapeValues {
            guard let size = dimension.nonNegativeInt else { throw bad("has a shape entry that is not a non-negative integer") }
            let (product, overflow) = elementCount.multipliedReportingOverflow(by: size)
            guard !overflow else { throw bad("has a shape whose element count overflows") }
            shape.append(size)
            elementCount = product
        }
        guard let offsets = field("data_offsets")?.arrayElements, offsets.count == 2,
              let begin = offsets[0].nonNegativeInt, let end = offsets[1].nonNegativeInt else {
            throw bad("has no \"data_offsets\" pair of non-negative integers")
        }
        guard begin <= end else {
            throw bad("has data_offsets [\(begin), \(end)] outside the \(dataSize)-byte data section (they end before they begin)")
        }
        guard end <= dataSize else {
            throw .invalidModelFile("it is not a complete safetensors model file: tensor '\(name)' has data_offsets [\(begin), \(end)] outside the \(dataSize)-byte data section; is it truncated?")
        }
        let (byteCount, overflow) = elementCount.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow, byteCount == end - begin else {
            throw bad("has shape \(shape) of \(dtypeName), which does not match its \(end - begin) bytes of data")
        }
        return Entry(name: name, dtype: dtype, shape: shape, elementCount: elementCount,
                     byteRange: (dataStart + begin)..<(dataStart + end))
    }

    /// The entry called `name`, if the file has one.
    public func entry(named name: String) -> Entry? {
        indexByName[name].map { entries[$0] }
    }

    /// Converts a float tensor to `Float` and stores it at `buffer[offset...]`.
    /// - Throws: `.invalidModelFile` if the tensor is not F32, F16 or BF16.
    /// - Precondition: `offset + entry.elementCount <= buffer.count`; `entry` came from this file.
    public func copyFloats(_ entry: Entry, into buffer: inout [Float], at offset: Int) throws(RecurError) {
        guard entry.dtype.isFloat else {
            throw .invalidModelFile("tensor '\(entry.name)' has dtype \(entry.dtype.rawValue), but a float tensor (F32, F16, BF16) is needed")
        }
        precondition(offset >= 0 && offset + entry.elementCount <= buffer.count,
                     "tensor '\(entry.name)' of \(entry.elementCount) elements does not fit at \(offset) in a buffer of \(buffer.count)")
        precondition(entry.byteRange.upperBound <= bytes.count, "entry '\(entry.name)' is not from this file")
        let count = entry.elementCount
        let start = entry.byteRange.lowerBound
        let dtype = entry.dtype
        bytes.withUnsafeBytes { source in
            buffer.withUnsafeMutableBufferPointer { destination in
                switch dtype {
                case .f32:
                    for i in 0..<count {
                        let bits = source.loadUnaligned(fromByteOffset: start + 4 * i, as: UInt32.self)
                        destination[offset + i] = Float(bitPattern: UInt32(littleEndian: bits))
                    }
                case .f16:
                    for i in 0..<count {
                        let bits = source.loadUnaligned(fromByteOffset: start + 2 * i, as: UInt16.self)
                        destination[offset + i] = Float(Float16(bitPattern: UInt16(littleEndian: bits)))
                    }
                case .bf16:
                    for i in 0..<count {
                        let bits = source.loadUnaligned(fromByteOffset: start + 2 * i, as: UInt16.self)
                        destination[offset + i] = Float(bitPattern: UInt32(UInt16(littleEndian: bits)) << 16)
                    }
                case .i32, .i64:
                    preconditionFailure("unreachable: checked above")
                }
            }
        }
    }

    /// A float tensor converted to `[Float]`; see `copyFloats`.
    public func floats(_ entry: Entry) throws(RecurError) -> [Float] {
        var values = [Float](repeating: 0, count: entry.elementCount)
        try copyFloats(entry, into: &values, at: 0)
        return values
    }
}
