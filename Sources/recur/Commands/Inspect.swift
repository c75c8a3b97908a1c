import ArgumentParser
import RecurCore

/// `recur inspect MODEL`: what a model file holds, without running it.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a model's architecture, vocabulary, tensors, storage and provenance.")

    @Argument(help: "The model file (.safetensors).")
    var model: String

    @Flag(name: .customLong("json"), help: "Print one JSON object instead of text.")
    var json = false

    func run() throws {
        let loaded = try LoadedModel(path: model)
        let out = StandardOutput()
        out.write(json ? report(loaded).rendered + "\n" : text(loaded))
        out.flush()
    }

    /// The stored dtype of the weights: "F32", "F16", "BF16", or "mixed" when tensors differ.
    private func storage(_ file: SafeTensorsFile) -> String {
        let dtypes = Set(file.entries.map(\.dtype.rawValue))
        return dtypes.count == 1 ? dtypes.first! : "mixed"
    }

    private func report(_ loaded: LoadedModel) -> JSONText {
        let config = loaded.model.config, vocabulary = loaded.model.vocabulary
        var members: [(String, JSONText)] = [
            ("file", .string(loaded.path)),
            ("file_bytes", .int(loaded.file.bytes.count)),
            ("storage", .string(storage(loaded.file))),
            ("cell", .string(config.cell.rawValue)),
        ]
        if config.cell == .rnn { members.append(("nonlinearity", .string(config.nonlinearity.rawValue))) }
        members += [
            ("layers", .int(config.layers)),
            ("hidden", .int(config.hiddenSize)),
            ("embedding", .int(config.embeddingSize)),
            ("vocab_size", .int(vocabulary.count)),
            ("tokenizer", .string(vocabulary.kind.rawValue)),
            ("unknown", .string(vocabulary.unknownPolicy.rawValue)),
            ("parameters", .int(loaded.model.parameters.count)),
            ("tensors", .array(loaded.model.layout.slots.map { slot in
                let dtype = loaded.file.entry(named: slot.name)?.dtype.rawValue ?? "?"
                return .object([("name", .string(slot.name)), ("shape", .array(slot.shape.map { .int($0) })),
                                ("dtype", .string(dtype))])
            })),
            ("provenance", .object(loaded.model.provenance.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
        ]
        return .object(members)
    }

    private func text(_ loaded: LoadedModel) -> String {
        let config = loaded.model.config, vocabulary = loaded.model.vocabulary
        var rows: [(String, String)] = [
            ("file", "\(loaded.path) (\(Format.bytes(loaded.file.bytes.count)), \(storage(loaded.file)))"),
            ("cell", config.cell == .rnn ? "rnn (\(config.nonlinearity.rawValue))" : config.cell.rawValue),
            ("layers", "\(config.layers)"),
            ("hidden", "\(config.hiddenSize)"),
            ("embedding", config.usesEmbedding ? "\(config.embeddingSize)" : "none (one-hot input)"),
            ("vocabulary", "\(vocabulary.count) tokens, \(vocabulary.kind.rawValue) tokenizer, unknown: \(vocabulary.unknownPolicy.rawValue)"),
            ("parameters", Format.grouped(loaded.model.parameters.count)),
        ]
        if vocabulary.kind != .byte {
            // Space-separated, so a space token shows as the visible ␠.
            let preview = vocabulary.tokens.indices.prefix(40).map {
                vocabulary.display(Int32($0)).replacingAll(" ", with: "␠")
            }
            rows.append(("tokens", preview.joined(separator: " ") + (vocabulary.count > 40 ? " …" : "")))
        }
        var out = table(rows)
        out += "tensors:\n"
        let slots = loaded.model.layout.slots
        let nameWidth = slots.map(\.name.count).max() ?? 0
        for slot in slots {
            let dtype = loaded.file.entry(named: slot.name)?.dtype.rawValue ?? "?"
            let shape = "(" + slot.shape.map(String.init).joined(separator: ", ") + ")"
            out += "  " + pad(slot.name, nameWidth) + "  " + pad(shape, 14) + "  " + dtype + "\n"
        }
        let provenance = loaded.model.provenance
        if provenance.isEmpty {
            out += "provenance: none\n"
        } else {
            out += "provenance:\n"
            let width = provenance.keys.map(\.count).max() ?? 0
            for key in provenance.keys.sorted() {
                out += "  " + pad(key, width) + "  " + provenance[key]! + "\n"
            }
        }
        return out
    }

    private func table(_ rows: [(String, String)]) -> String {
        let width = (rows.map(\.0.count).max() ?? 0) + 1
        return rows.map { pad($0.0 + ":", width) + " " + $0.1 + "\n" }.joined()
    }
}

/// `s` padded with spaces to at least `width` characters.
func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
}
