extension SafeTensorsFile {
    /// One float tensor to write: its name, its shape and its values in row-major order.
    public struct Tensor: Sendable {
        public var name: String
        public var shape: [Int]
        /// Row-major values; a slice so that views of one flat buffer need no copy.
        public var values: ArraySlice<Float>

        /// - Precondition (checked by `serialize`): `shape`'s product is `values.count`.
        public init(name: String, shape: [Int], values: ArraySlice<Float>) {
            self.name = name
            self.shape = shape
            self.values = values
        }
    }

    /// Serializes tensors (in the order given, packed back to back) and string metadata.
    /// The header is padded with spaces so that the data starts at a multiple of 8 bytes,
    /// as the Python package does; metadata keys are written in sorted order.
    ///
    /// - Precondition: each shape's product equals its value count; names are distinct and
    ///   none is `"__metadata__"`.
    public static func serialize(_ tensors: [Tensor], metadata: [String: String] = [:],
                                 storage: StorageType = .float32) -> [UInt8] {
        let dtype = storage.dtype
        var header = "{"
        var members: [String] = []
        if !metadata.isEmpty {
            members.append("\"__metadata__\":" + JSONString.stringObject(metadata))
        }
        var names = Set<String>()
        var offset = 0
        for tensor in tensors {
            precondition(tensor.shape.reduce(1, *) == tensor.values.count,
                         "tensor '\(tensor.name)' has shape \(tensor.shape) but \(tensor.values.count) values")
            precondition(tensor.name != "__metadata__" && names.insert(tensor.name).inserted,
                         "tensor name '\(tensor.name)' is reserved or used twice")
            let end = offset + tensor.values.count * dtype.byteSize
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            members.append(JSONString.literal(tensor.name)
                           + ":{\"dtype\":\"\(dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        header += members.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }

        var out: [UInt8] = []
        out.reserveCapacity(8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: headerBytes)
        let dataStart = out.count
        out.append(contentsOf: repeatElement(0, count: offset))
        out.withUnsafeMutableBytes { raw in
            var position = dataStart
            for tensor in tensors {
                for value in tensor.values {
                    switch storage {
                    case .float32:
                        raw.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: position, as: UInt32.self)
                    case .float16:
                        raw.storeBytes(of: Self.float16Bits(value).littleEndian, toByteOffset: position, as: UInt16.self)
                    case .bfloat16:
                        raw.storeBytes(of: Self.bfloat16Bits(value).littleEndian, toByteOffset: position, as: UInt16.self)
                    }
                    position += dtype.byteSize
                }
            }
        }
        return out
    }

    /// Rounds to the nearest half, saturating at ±65504 so a finite weight stays finite.
    static func float16Bits(_ value: Float) -> UInt16 {
        let largest = Float(Float16.greatestFiniteMagnitude)
        let clamped = value.isNaN ? value : min(max(value, -largest), largest)
        return Float16(clamped).bitPattern
    }

    /// Rounds to the nearest bfloat16 (ties to even), saturating instead of overflowing.
    static func bfloat16Bits(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return UInt16(bits >> 16) | 0x0040 }  // keep it a quiet NaN
        let rounded = UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
        if value.isFinite, rounded & 0x7F80 == 0x7F80 {
            return (rounded & 0x8000) | 0x7F7F  // rounding overflowed to infinity
        }
        return rounded
    }
}
