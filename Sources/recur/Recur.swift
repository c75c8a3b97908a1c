import ArgumentParser
import RecurCore

/// `recur`: train, evaluate, sample and inspect recurrent language models.
struct Recur: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "recur",
        abstract: "Train, evaluate, sample and inspect RNN/LSTM/GRU language models.",
        discussion: """
            Models are safetensors files (docs/MODEL-FORMAT.md). Diagnostics go to stderr; \
            set RECUR_LOG_LEVEL=debug for more of them, or =error for fewer.
            """,
        version: version,
        subcommands: [Train.self, Eval.self, Sample.self, Inspect.self, Viz.self, Connect.self, View.self, Cluster.self])

    /// Parses the command line, runs the command and reports any error as one line,
    /// `recur: error: ...`. Returns the process exit code.
    static func runMain(_ arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> Int32 {
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
            return 0
        } catch let exit as ExitCode {
            return exit.rawValue  // the command has already said why
        } catch let error as CLIError {
            StandardError.writeLine("recur: error: \(error.message)")
            return error.code
        } catch let error as RecurError {
            StandardError.writeLine("recur: error: \(error)")
            return 1
        } catch {
            let code = exitCode(for: error)
            if code == .success { self.exit(withError: error) }  // --help, --version
            var message = self.message(for: error)
            if code == .validationFailure {
                let command = subcommandName(in: arguments).map { "recur \($0)" } ?? "recur"
                message += " (see '\(command) --help')"
            }
            StandardError.writeLine("recur: error: \(message)")
            return code.rawValue
        }
    }

    private static func subcommandName(in arguments: [String]) -> String? {
        let names = configuration.subcommands.compactMap { $0.configuration.commandName }
        return arguments.first.flatMap { names.contains($0) ? $0 : nil }
    }
}
