import RecurCore

/// One fuzz input as a model file: `Model(safetensors:)` must either reject it with an error or
/// give a model that works, which is then checked by scoring a few tokens and encoding text.
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
        return true
    }
}
