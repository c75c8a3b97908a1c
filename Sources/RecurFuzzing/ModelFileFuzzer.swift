import RecurCore

/// One fuzz input as a model file: `Model(safetensors:)` must either reject it with an error or
/// give a model that works, which is then checked by scoring a few tokens and encoding text.
/// A model that loads must also survive being written and read back unchanged (`recur` writes
/// models it loaded, e.g. when training resumes).
/// A crash (a precondition, a trap, an out-of-bounds access under the address sanitizer) is a
/// bug: a bad model file must never bring a process down.
public enum ModelFileFuzzer {
    /// Runs one input; returns whether it loaded (for tests).
    @discardableResult
    public static func run(_ data: UnsafeRawBufferPointer) -> Bool {
        let bytes = Array(data)
        if let file = try? SafeTensorsFile(bytes: bytes) {
            for entry in file.entries where entry.dtype.isFloat {
                _ = try? file.floats(entry)
            }
        }
        let model: Model
        do {
            model = try Model(safetensors: bytes)
        } catch {
            _ = error.sentence
            return false
        }
        let V = model.config.vocabularySize
        precondition(V >= 1 && model.vocabulary.count == V,
                     "a loaded model has vocabulary size \(V) but \(model.vocabulary.count) tokens")
        let tokens = (0..<3).map { Int32($0 % V) }
        let (nats, count) = Evaluator(model: model).score(tokens)
        precondition(count == tokens.count - 1, "scored \(count) of \(tokens.count) tokens")
        _ = nats
        _ = try? model.vocabulary.encode("To be, or not to be\n")
        checkRoundTrip(model)
        return true
    }

    /// Writes `model` and reads it back: same sizes, vocabulary, provenance and bit-identical weights.
    static func checkRoundTrip(_ model: Model) {
        let again: Model
        do {
            again = try Model(safetensors: model.safetensorsBytes())
        } catch {
            preconditionFailure("a loaded model does not load after being written: \(error.sentence)")
        }
        precondition(again.config == model.config, "the sizes changed: \(model.config) -> \(again.config)")
        precondition(again.vocabulary == model.vocabulary, "the vocabulary changed in a write and read")
        precondition(again.provenance == model.provenance, "the provenance changed: \(model.provenance) -> \(again.provenance)")
        precondition(again.parameters.elementsEqual(model.parameters) { $0.bitPattern == $1.bitPattern },
                     "the weights changed in a write and read")
    }
}
