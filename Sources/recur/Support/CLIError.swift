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
