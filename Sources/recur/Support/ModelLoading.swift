import RecurCore

/// A model file read from disk: the validated model and the raw safetensors view of it
/// (for what the model does not keep, such as each tensor's stored dtype).
struct LoadedModel {
    var path: String
    var model: Model
    var file: SafeTensorsFile

    /// Reads and validates `path`; every failure is a `CLIError` that names the file.
    init(path: String) throws(CLIError) {
        let bytes = try FileInput.contents(of: path, what: "model")
        do {
            file = try SafeTensorsFile(bytes: bytes)
            model = try Model(safetensors: bytes)
        } catch {
            throw CLIError("invalid model file '\(path)': \(error.sentence)")
        }
        self.path = path
    }
}

extension Tokenizer {
    /// Encodes raw input bytes (a file or stdin) as the model would: bytes as they are for
    /// byte models, UTF-8 for the others (invalid sequences become U+FFFD).
    /// - Throws: a `CLIError` naming `source` and the first piece the vocabulary lacks.
    func encode(bytes: [UInt8], source: String) throws(CLIError) -> [Int32] {
        var encoder = IncrementalEncoder(tokenizer: self)
        do {
            return try encoder.feed(bytes) + encoder.finish()
        } catch {
            throw CLIError("cannot tokenize \(source): \(error.sentence)")
        }
    }
}
