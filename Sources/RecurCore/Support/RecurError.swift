/// Every failure a user, a file or a client can cause, as a sentence they can act on.
public enum RecurError: Error, Equatable, CustomStringConvertible {
    /// Sizes or options that do not make a valid model or run.
    case invalidConfiguration(String)
    /// A model file that cannot be read as a recur model: truncated, corrupt or hostile.
    case invalidModelFile(String)
    /// Text that the model's tokenizer cannot encode under its unknown-token policy.
    case tokenization(String)
    /// A corpus or input that is unusable (empty, too short for the requested split, ...).
    case invalidData(String)

    public var description: String {
        switch self {
        case .invalidConfiguration(let m): "invalid configuration: \(m)"
        case .invalidModelFile(let m): "invalid model file: \(m)"
        case .tokenization(let m): "cannot tokenize: \(m)"
        case .invalidData(let m): "invalid data: \(m)"
        }
    }
}

extension RecurError {
    /// The sentence inside the error, without the category prefix of `description`, for
    /// callers that put their own context in front ("cannot load the model 'x': ...").
    public var sentence: String {
        switch self {
        case .invalidConfiguration(let m), .invalidModelFile(let m), .tokenization(let m), .invalidData(let m): m
        }
    }
}
