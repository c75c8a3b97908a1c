import Foundation
import XCTest
@testable import RecurCore

final class ModelFileTests: XCTestCase {
    /// A model with seeded weights uniform in [-0.5, 0.5) and a char vocabulary of size V.
    static func makeModel(_ config: ModelConfig, seed: UInt64 = 1) -> Model {
        var state = seed
        let count = ParameterLayout.countParameters(config)
        let parameters = (0..<count).map { _ -> Float in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24) - 0.5
        }
        let alphabet = Array("\n !',.:;?ABCabcdefghijklmnopqrstuvwxyzé😀".unicodeScalars).map { String($0) }
        let tokens = Array(alphabet.prefix(config.vocabularySize)).sorted(by: Vocabulary.scalarOrder)
        return Model(config: config, vocabulary: Vocabulary(kind: .char, tokens: tokens, unknownPolicy: .error),
                     parameters: parameters, provenance: ["command": "recur train --seed 1", "note": "quote \" and é"])
    }

    static let configs: [ModelConfig] = [
        ModelConfig(cell: .rnn, nonlinearity: .tanh, vocabularySize: 7, hiddenSize: 5, layers: 1, embeddingSize: 0),
        ModelConfig(cell: .rnn, nonlinearity: .relu, vocabularySize: 9, hiddenSize: 4, layers: 2, embeddingSize: 3),
        ModelConfig(cell: .gru, vocabularySize: 11, hiddenSize: 6, layers: 2, embeddingSize: 4),
        ModelConfig(cell: .lstm, vocabularySize: 38, hiddenSize: 8, layers: 3, embeddingSize: 0),
    ]

    /// The model's file with metadata and tensors edited, for forging bad files.
    static func tamperedFile(_ model: Model,
                             metadata edit: (inout [String: String]) -> Void = { _ in },
                             tensors editTensors: (inout [SafeTensorsFile.Tensor]) -> Void = { _ in }) throws -> [UInt8] {
        let original = try SafeTensorsFile(bytes: model.safetensorsBytes())
        var metadata = original.metadata
        edit(&metadata)
        var tensors = model.layout.slots.map {
            SafeTensorsFile.Tensor(name: $0.name, shape: $0.shape, values: model.parameters[$0.range])
        }
        editTensors(&tensors)
        return SafeTensorsFile.serialize(tensors, metadata: metadata)
    }

    func expectInvalid(_ bytes: [UInt8], containing fragment: String,
                       file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try Model(safetensors: bytes)
            XCTFail("loaded a bad model file; expected an error mentioning '\(fragment)'", file: file, line: line)
        } catch {
            guard case .invalidModelFile(let message) = error else {
                return XCTFail("unexpected error kind: \(error)", file: file, line: line)
            }
            XCTAssertTrue(message.contains(fragment), "'\(message)' does not mention '\(fragment)'", file: file, line: line)
        }
    }

    func assertSameModel(_ a: Model, _ b: Model, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.config, b.config, file: file, line: line)
        XCTAssertEqual(a.vocabulary, b.vocabulary, file: file, line: line)
        XCTAssertEqual(a.provenance, b.provenance, file: file, line: line)
        XCTAssertEqual(a.parameters.map(\.bitPattern), b.parameters.map(\.bitPattern), file: file, line: line)
    }

    // MARK: Round trips

    func test_roundTrip_float32_isBitExact() throws {
        for config in Self.configs {
            let model = Self.makeModel(config)
            let loaded = try Model(safetensors: model.safetensorsBytes())
            assertSameModel(model, loaded)
        }
    }

    func test_roundTrip_float16_within1e3() throws {
        for config in Self.configs {
            let model = Self.makeModel(config)
            let bytes = model.safetensorsBytes(storage: .float16)
            XCTAssertLessThan(bytes.count, model.safetensorsBytes().count)
            let loaded = try Model(safetensors: bytes)
            XCTAssertEqual(loaded.config, model.config)
            XCTAssertEqual(loaded.vocabulary, model.vocabulary)
            let maxDifference = zip(loaded.parameters, model.parameters).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(maxDifference, 1e-3, "\(config.cell): max difference \(maxDifference)")
        }
    }

    func test_roundTrip_bfloat16_loads() throws {
        let model = Self.makeModel(Self.configs[2])
        let loaded = try Model(safetensors: model.safetensorsBytes(storage: .bfloat16))
        let maxDifference = zip(loaded.parameters, model.parameters).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(maxDifference, 0.5 / 128, "max difference \(maxDifference)")
    }

    func test_roundTrip_wordAndByteVocabularies() throws {
        let corpus = "the cat sat on the mat, \"naïve\" 😀\n"
        for kind in [TokenizerKind.word, .byte] {
            let vocabulary = try Vocabulary.build(kind: kind, corpus: corpus, unknownPolicy: nil)
            let config = ModelConfig(cell: .gru, vocabularySize: vocabulary.count, hiddenSize: 3, embeddingSize: 2)
            let parameters = (0..<ParameterLayout.countParameters(config)).map { Float($0 % 7) * 0.125 - 0.375 }
            let model = Model(config: config, vocabulary: vocabulary, parameters: parameters)
            assertSameModel(model, try Model(safetensors: model.safetensorsBytes()))
        }
    }

    func test_writeAndRead_throughTheFileSystem_atomically() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("recur-modelfile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("model.safetensors").path
        let first = Self.makeModel(Self.configs[3], seed: 1)
        try first.write(to: path)
        assertSameModel(first, try Model(contentsOf: path))
        let second = Self.makeModel(Self.configs[3], seed: 2)
        try second.write(to: path, storage: .float32)
        assertSameModel(second, try Model(contentsOf: path))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["model.safetensors"])
    }

    func test_readAndWrite_reportPathProblems() {
        XCTAssertThrowsError(try Model(contentsOf: "/nonexistent/dir/model.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/dir/model.safetensors"), "\(error)")
        }
        XCTAssertThrowsError(try Model(contentsOf: "/"))
        XCTAssertThrowsError(try Self.makeModel(Self.configs[0]).write(to: "/nonexistent/dir/model.safetensors"))
    }

    /// A file laid out the way Python's `safetensors.torch.save_file(model.state_dict(),
    /// path, metadata=...)` writes it: tensors sorted by name, metadata last, `json.dumps`
    /// escaping (ASCII only), space padding.
    func test_read_acceptsPythonLayout() throws {
        let model = Self.makeModel(Self.configs[2])
        var tensors: [(name: String, shape: [Int], values: ArraySlice<Float>)] = model.layout.slots.map {
            ($0.name, $0.shape, model.parameters[$0.range])
        }
        tensors.sort { $0.name < $1.name }
        var offset = 0
        var entries: [String] = []
        var data: [UInt8] = []
        for tensor in tensors {
            let end = offset + 4 * tensor.values.count
            entries.append("\"\(tensor.name)\": {\"dtype\": \"F32\", \"shape\": [\(tensor.shape.map(String.init).joined(separator: ", "))], \"data_offsets\": [\(offset), \(end)]}")
            for value in tensor.values { withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
            offset = end
        }
        func pythonJSON(_ s: String) -> String {
            var out = "\""
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\n": out += "\\n"
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                default:
                    if scalar.isASCII { out.unicodeScalars.append(scalar) } else {
                        for unit in String(scalar).utf16 { out += String(format: "\\u%04x", unit) }
                    }
                }
            }
            return out + "\""
        }
        let vocabulary = "[" + model.vocabulary.tokens.map(pythonJSON).joined(separator: ", ") + "]"
        let metadata: [(String, String)] = [
            ("format", "recur-lm"), ("format_version", "1"), ("cell", "gru"), ("nonlinearity", "tanh"),
            ("vocab_size", "11"), ("hidden_size", "6"), ("num_layers", "2"), ("embedding_size", "4"),
            ("tokenizer", "char"), ("unknown", "error"), ("vocabulary", vocabulary),
            ("provenance", "{\"command\": \"recur train --seed 1\", \"note\": \"quote \\\" and \\u00e9\"}"),
        ]
        let metadataJSON = "\"__metadata__\": {" + metadata.map { pythonJSON($0.0) + ": " + pythonJSON($0.1) }.joined(separator: ", ") + "}"
        let header = "{" + entries.joined(separator: ", ") + ", " + metadataJSON + "}"
        let bytes = SafeTensorsTests.rawFile(header: header, dataSize: 0) + data
        assertSameModel(model, try Model(safetensors: bytes))
    }

    /// The PyTorch-made fixtures (scripts/make_fixtures.py) load, when present.
    func test_read_loadsPyTorchFixtures() throws {
        guard let directory = Bundle.module.resourceURL?.appendingPathComponent("Fixtures"),
              let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else {
            throw XCTSkip("no fixtures directory")
        }
        let files = names.filter { $0.hasSuffix(".safetensors") }.sorted()
        guard !files.isEmpty else { throw XCTSkip("no PyTorch fixtures yet") }
        for name in files {
            let model = try Model(contentsOf: directory.appendingPathComponent(name).path)
            XCTAssertEqual(model.vocabulary.kind, .char, name)
            XCTAssertEqual(model.parameters.count, model.layout.totalCount, name)
        }
    }

    // MARK: Hostile files

    func test_read_truncatedAtEveryLength_throwsWithoutCrashing() {
        let bytes = Self.makeModel(Self.configs[1]).safetensorsBytes()
        for length in 0..<bytes.count {
            XCTAssertThrowsError(try Model(safetensors: Array(bytes[..<length])), "prefix of \(length) bytes")
        }
    }

    func test_read_hugeHeaderLength_throws() {
        var bytes = Self.makeModel(Self.configs[0]).safetensorsBytes()
        bytes.replaceSubrange(0..<8, with: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])
        expectInvalid(bytes, containing: "header length")
    }

    func test_read_badJSON_throws() {
        var bytes = Self.makeModel(Self.configs[0]).safetensorsBytes()
        bytes[8] = UInt8(ascii: "[")
        expectInvalid(bytes, containing: "not valid JSON")
    }

    func test_read_rejectsBadMetadata() throws {
        let model = Self.makeModel(Self.configs[2])
        let cases: [(String, (inout [String: String]) -> Void)] = [
            ("no 'format' entry", { $0["format"] = nil }),
            ("not a recur model", { $0["format"] = "gguf" }),
            ("version '2'", { $0["format_version"] = "2" }),
            ("no 'hidden_size'", { $0["hidden_size"] = nil }),
            ("'cell' is 'transformer'", { $0["cell"] = "transformer" }),
            ("not a decimal integer", { $0["hidden_size"] = "six" }),
            ("not a decimal integer", { $0["hidden_size"] = "-6" }),
            ("not a decimal integer", { $0["hidden_size"] = "99999999999999999999999" }),
            ("vocabulary size 1099511627776", { $0["vocab_size"] = "1099511627776" }),
            ("layer count 100000", { $0["num_layers"] = "100000" }),
            ("'tokenizer' is 'bpe'", { $0["tokenizer"] = "bpe" }),
            ("'unknown' is 'skip'", { $0["unknown"] = "skip" }),
            ("'vocabulary' is not valid JSON", { $0["vocabulary"] = "[\"a\"" }),
            ("not a JSON array", { $0["vocabulary"] = "{}" }),
            ("has 2 tokens but vocab_size is 11", { $0["vocabulary"] = "[\"a\", \"b\"]" }),
            ("more values than the limit", { $0["vocabulary"] = "[" + (0..<12).map { "\"\(Character(UnicodeScalar(97 + $0)!))\"" }.joined(separator: ",") + "]" }),
            ("not sorted", { $0["vocabulary"] = "[" + (0..<11).reversed().map { "\"\(Character(UnicodeScalar(97 + $0)!))\"" }.joined(separator: ",") + "]" }),
            ("appears twice", { $0["vocabulary"] = "[" + (0..<11).map { "\"\(Character(UnicodeScalar(97 + min($0, 9))!))\"" }.joined(separator: ",") + "]" }),
            ("entry 3 is not a string", { $0["vocabulary"] = "[\"a\",\"b\",\"c\",4,\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\"]" }),
            ("no <unk> token", { $0["unknown"] = "replace" }),
            ("'provenance' is not valid JSON", { $0["provenance"] = "{" }),
            ("provenance entry 'seed' is not a string", { $0["provenance"] = "{\"seed\": 1}" }),
        ]
        for (fragment, edit) in cases {
            expectInvalid(try Self.tamperedFile(model, metadata: edit), containing: fragment)
        }
        // Provenance is optional.
        var noProvenance = try Model(safetensors: try Self.tamperedFile(model, metadata: { $0["provenance"] = nil }))
        XCTAssertEqual(noProvenance.provenance, [:])
        noProvenance.provenance = model.provenance
        assertSameModel(model, noProvenance)
    }

    func test_read_rejectsBadTensors() throws {
        let model = Self.makeModel(Self.configs[2])  // gru, V 11, H 6, L 2, E 4
        expectInvalid(try Self.tamperedFile(model, tensors: { $0.removeAll { $0.name == "rnn.bias_hh_l1" } }),
                      containing: "tensor 'rnn.bias_hh_l1' is missing")
        expectInvalid(try Self.tamperedFile(model, tensors: { $0.append(.init(name: "rnn.weight_ih_l2", shape: [1], values: [0][...])) }),
                      containing: "tensor 'rnn.weight_ih_l2' is not part of")
        expectInvalid(try Self.tamperedFile(model, tensors: {
            let i = $0.firstIndex { $0.name == "head.weight" }!
            $0[i].shape = [6, 11]
        }), containing: "tensor 'head.weight' has shape [6, 11] but the metadata implies [11, 6]")
        expectInvalid(try Self.tamperedFile(model, metadata: { $0["embedding_size"] = "0" }),
                      containing: "has shape [18, 4] but the metadata implies [18, 11]")
        for bad in [Float.nan, .infinity, -.infinity] {
            var poisoned = model
            poisoned.parameters[model.layout.layers[1].weightHH.offset + 5] = bad
            expectInvalid(poisoned.safetensorsBytes(), containing: "tensor 'rnn.weight_hh_l1' holds \(bad) at element 5")
        }
    }

    func test_read_rejectsIntegerAndUnknownDtypes() throws {
        let model = Self.makeModel(Self.configs[0])
        var bytes = model.safetensorsBytes()
        let file = try SafeTensorsFile(bytes: bytes)
        let headerLength = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16
        var header = String(decoding: bytes[8..<(8 + headerLength)], as: UTF8.self)
        header = header.replacingOccurrences(of: "\"dtype\":\"F32\",\"shape\":[7]", with: "\"dtype\":\"I32\",\"shape\":[7]")
        bytes.replaceSubrange(8..<(8 + headerLength), with: Array(header.utf8))
        XCTAssertEqual(file.entries.count, 6)  // one-hot RNN: 4 recurrent tensors + head
        expectInvalid(bytes, containing: "tensor 'head.bias' has dtype I32")
        header = header.replacingOccurrences(of: "\"dtype\":\"I32\"", with: "\"dtype\":\"F64\"")
        bytes.replaceSubrange(8..<(8 + headerLength), with: Array(header.utf8))
        expectInvalid(bytes, containing: "dtype 'F64'")
    }

    func test_read_offsetOutOfRange_throws() throws {
        let bytes = Self.makeModel(Self.configs[0]).safetensorsBytes()
        let headerLength = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16
        let header = String(decoding: bytes[8..<(8 + headerLength)], as: UTF8.self)
        let dataSize = bytes.count - 8 - headerLength
        let range = try XCTUnwrap(header.range(of: ",\(dataSize)]}"))
        let forged = header.replacingCharacters(in: range, with: ",\(dataSize + 4)]}")
        expectInvalid(SafeTensorsTests.rawFile(header: forged, dataSize: 0) + bytes[(8 + headerLength)...],
                      containing: "outside")
    }
}
