/// A user error the CLI reports as one line, `recur: error: <message>`, and exits with `code`.
struct CLIError: Error, CustomStringConvertible {
    var message: String
    var code: Int32 = 1

    init(_ message: String, code: Int32 = 1) {
        self.message = message
        self.code = code
    }

    var description: String { message }
}

extension RecurError {
    /// The sentence inside the error, without the category prefix of `description`, for
    /// callers that put their own context in front ("cannot tokenize 'x.txt': ...").
    var sentence: String {
        switch self {
        case .invalidConfiguration(let m), .invalidModelFile(let m), .tokenization(let m), .invalidData(let m): m
        }
    }
}

import RecurCore
