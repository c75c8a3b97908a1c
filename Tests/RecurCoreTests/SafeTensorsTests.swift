import XCTest
@testable import RecurCore

final class SafeTensorsTests: XCTestCase {
    /// A file with a hand-written header and `dataSize` bytes of zeros: the way to forge
    /// exactly the hostile headers the reader must refuse.
    static func rawFile(header: String, dataSize: Int, pad: Bool = true) -> [UInt8] {
        var headerBytes = Array(header.utf8)
        while pad, headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { out.append(contentsOf: $0) }
        return out + headerBytes + [UInt8](repeating: 0, count: dataSize)
    }

    func expectInvalid(_ bytes: [UInt8], containing fragment: String,
                       file: StaticString = #filePath, line: UInt = #line) {
        do {
            let parsed = try SafeTensorsFile(bytes: bytes)
            XCTFail("accepted a bad file with \(parsed.entries.count) tensors; expected '\(fragment)'", file: file, line: line)
        } catch {
            guard case .invalidModelFile(let message) = error else {
                return XCTFail("unexpected error kind: \(error)", file: file, line: line)
            }
            XCTAssertTrue(message.contains(fragment), "'\(message)' does not mention '\(fragment)'", file: file, line: line)
        }
    }

    static let sample: [SafeTensorsFile.Tensor] = [
        .init(name: "b", shape: [2, 3], values: [1, -2, 3.5, 0, -0.0, 1e-3][...]),
        .init(name: "a", shape: [4], values: [Float.pi, -Float.pi, 65504, 1e-8][...]),
        .init(name: "scalar", shape: [], values: [42][...]),
        .init(name: "empty", shape: [0, 5], values: [][...]),
    ]

    // MARK: Round trips

    func test_serialize_roundTripsFloat32BitExactly() throws {
        let metadata = ["k": "v \"quoted\" \\ \n é 😀", "format": "x"]
        let bytes = SafeTensorsFile.serialize(Self.sample, metadata: metadata)
        let file = try SafeTensorsFile(bytes: bytes)
        XCTAssertEqual(file.metadata, metadata)
        XCTAssertEqual(file.entries.map(\.name), ["b", "a", "scalar", "empty"])
        for tensor in Self.sample {
            let entry = try XCTUnwrap(file.entry(named: tensor.name))
            XCTAssertEqual(entry.shape, tensor.shape)
            XCTAssertEqual(entry.dtype, .f32)
            XCTAssertEqual(try file.floats(entry).map(\.bitPattern), tensor.values.map(\.bitPattern), tensor.name)
        }
    }

    func test_serialize_padsHeaderToMultipleOf8() throws {
        for name in ["x", "xy", "xyz", "wxyz", "vwxyz"] {
            let bytes = SafeTensorsFile.serialize([.init(name: name, shape: [1], values: [1][...])])
            let headerLength = bytes[0..<8].reversed().reduce(0) { $0 << 8 | Int($1) }
            XCTAssertEqual(headerLength % 8, 0)
            XCTAssertEqual(bytes.count, 8 + headerLength + 4)
            let header = String(decoding: bytes[8..<(8 + headerLength)], as: UTF8.self)
            XCTAssertTrue(header.hasPrefix("{") && header.trimmingCharacters(in: .whitespaces).hasSuffix("}"), header)
        }
    }

    func test_serialize_float16AndBFloat16_roundTripWithinTolerance() throws {
        var rng = SystemRandomNumberGenerator()
        let values = (0..<1000).map { _ in Float.random(in: -4...4, using: &rng) }
        for (storage, tolerance) in [(StorageType.float16, Float(1e-3)), (.bfloat16, 4.0 / 128)] {
            let bytes = SafeTensorsFile.serialize([.init(name: "w", shape: [1000], values: values[...])], storage: storage)
            let file = try SafeTensorsFile(bytes: bytes)
            XCTAssertEqual(file.entries[0].dtype, storage.dtype)
            let read = try file.floats(file.entries[0])
            let maxDifference = zip(read, values).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(maxDifference, tolerance, "\(storage): max difference \(maxDifference)")
        }
    }

    func test_float16Storage_saturatesInsteadOfOverflowing() throws {
        let bytes = SafeTensorsFile.serialize([.init(name: "w", shape: [3], values: [1e6, -1e6, 1][...])], storage: .float16)
        let read = try SafeTensorsFile(bytes: bytes).floats(try XCTUnwrap(SafeTensorsFile(bytes: bytes).entry(named: "w")))
        XCTAssertEqual(read, [65504, -65504, 1])
        XCTAssertEqual(SafeTensorsFile.bfloat16Bits(Float.greatestFiniteMagnitude), 0x7F7F)
        XCTAssertEqual(SafeTensorsFile.bfloat16Bits(1.0), 0x3F80)
    }

    func test_read_acceptsPythonStyleHeaderWithMetadataLastAndPadding() throws {
        // As safetensors' Rust writer emits it: keys sorted, metadata anywhere, space padding.
        let header = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"__metadata__":{"x":"\u00e9\ud83d\ude00"},"i":{"dtype":"I32","shape":[1],"data_offsets":[4,8]}}"#
        let file = try SafeTensorsFile(bytes: Self.rawFile(header: header, dataSize: 8))
        XCTAssertEqual(file.metadata, ["x": "é😀"])
        XCTAssertEqual(file.entries.map(\.dtype), [.f32, .i32])
        XCTAssertThrowsError(try file.floats(file.entries[1]))
    }

    // MARK: Hostile input

    func test_read_truncatedAtEveryLength_throws() {
        let bytes = SafeTensorsFile.serialize(Self.sample, metadata: ["m": "v"])
        for length in 0..<bytes.count {
            XCTAssertThrowsError(try SafeTensorsFile(bytes: Array(bytes[..<length])), "prefix of \(length) bytes")
        }
        XCTAssertNoThrow(try SafeTensorsFile(bytes: bytes))
    }

    func test_read_rejectsHugeOrOverlongHeaderLength() {
        for length: UInt64 in [UInt64.max, 1 << 63, 200_000_000, 100_000_001] {
            var bytes: [UInt8] = []
            withUnsafeBytes(of: length.littleEndian) { bytes.append(contentsOf: $0) }
            expectInvalid(bytes + Array("{}".utf8), containing: "exceeds the limit")
        }
        var bytes: [UInt8] = []
        withUnsafeBytes(of: UInt64(1000).littleEndian) { bytes.append(contentsOf: $0) }
        expectInvalid(bytes + Array("{}".utf8), containing: "runs past the end of the file")
        expectInvalid([1, 2, 3], containing: "too short")
    }

    func test_read_rejectsBadJSON() {
        let cases: [(String, String)] = [
            ("", "not valid JSON"),
            ("[]", "not a JSON object"),
            ("{", "not valid JSON"),
            ("{\"a\":}", "not valid JSON"),
            ("{\"a\":1,}", "not valid JSON"),
            ("{} x", "not valid JSON"),
            ("{\"a\":\"\\ud800\"}", "surrogate"),
            ("{\"a\":\"\\q\"}", "unknown escape"),
            ("{\"a\":01}", "leading zero"),
            (String(repeating: "[", count: 100_000), "nesting"),
            ("{\"a\":[" + String(repeating: "0,", count: 1 << 20) + "0]}", "more values than the limit"),
            ("{\"__metadata__\":{\"k\":1}}", "not a string"),
            ("{\"__metadata__\":[]}", "not a JSON object"),
            ("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", "appears twice"),
        ]
        for (header, fragment) in cases {
            expectInvalid(Self.rawFile(header: header, dataSize: 0), containing: fragment)
        }
        var invalidUTF8 = Self.rawFile(header: "{\"__metadata__\":{\"k\":\"ab\"}}", dataSize: 0)
        invalidUTF8[8 + 22] = 0xFF
        expectInvalid(invalidUTF8, containing: "invalid UTF-8")
    }

    func test_read_rejectsBadTensorEntries() {
        let cases: [(String, Int, String)] = [
            (#"{"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}"#, 8, "dtype 'F64'"),
            (#"{"a":{"shape":[1],"data_offsets":[0,4]}}"#, 4, "no string \"dtype\""),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, 4, "does not match"),
            (#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, 4, "non-negative"),
            (#"{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#, 4, "non-negative"),
            (#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#, 4, "overflows"),
            (#"{"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]}}"#, 4, "non-negative"),
            (#"{"a":{"dtype":"F32","shape":[2305843009213693952],"data_offsets":[0,4]}}"#, 4, "does not match"),
            (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, 0, "outside"),
            (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, 4, "outside"),
            (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#, 4, "data_offsets"),
            (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, 8, "appears twice"),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, 8, "overlaps"),
            (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, 8, "unused bytes"),
            (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, 6, "after the last tensor"),
            (#"{"a":3}"#, 0, "not described by a JSON object"),
        ]
        for (header, dataSize, fragment) in cases {
            expectInvalid(Self.rawFile(header: header, dataSize: dataSize), containing: fragment)
        }
    }

    func test_read_randomByteCorruption_neverCrashes() {
        var generator = SystemRandomNumberGenerator()
        let bytes = SafeTensorsFile.serialize(Self.sample, metadata: ["m": "v"])
        for _ in 0..<2000 {
            var corrupt = bytes
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                corrupt[Int.random(in: 0..<corrupt.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            if let file = try? SafeTensorsFile(bytes: corrupt) {
                for entry in file.entries where entry.dtype.isFloat { _ = try? file.floats(entry) }
            }
        }
    }
}
