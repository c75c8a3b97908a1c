import ArgumentParser
import RecurCore

/// A failure the daemon reports as one line, `recurd: error: <message>`, exiting with `code`.
struct RecurdError: Error, CustomStringConvertible {
    var message: String
    var code: Int32 = 1

    init(_ message: String, code: Int32 = 1) {
        self.message = message
        self.code = code
    }

    var description: String { message }
}

extension Recurd {
    /// Parses the command line, runs the daemon and reports any error as one line on stderr,
    /// `recurd: error: ...`. Returns the process exit code.
    static func runMain(_ arguments: [String] = Array(CommandLine.arguments.dropFirst())) async -> Int32 {
        do {
            var command = try parseAsRoot(arguments)
            if let daemon = command as? Recurd {
                try await daemon.run()
            } else {
                try command.run()  // --help and --version come back as errors; nothing else runs here
            }
            return 0
        } catch let exit as ExitCode {
            return exit.rawValue
        } catch let error as RecurdError {
            writeStandardError("recurd: error: \(error.message)\n")
            return error.code
        } catch {
            let code = exitCode(for: error)
            if code == .success { self.exit(withError: error) }  // --help, --version
            var message = oneLine(self.message(for: error))
            if code == .validationFailure { message += " (see 'recurd --help')" }
            writeStandardError("recurd: error: \(message)\n")
            return code.rawValue
        }
    }

    /// ArgumentParser lists an option's choices one per line ("  - json"); an error here is
    /// one line, so the list becomes "json, tsv".
    private static func oneLine(_ message: String) -> String {
        let lines = message.split(separator: "\n").map { $0.drop(while: { $0 == " " || $0 == "-" }) }
        guard lines.count > 1 else { return message }
        return lines[0] + " " + lines.dropFirst().joined(separator: ", ")
    }
}
