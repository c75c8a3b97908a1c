import ArgumentParser
import Logging
import RecurCore
import RecurSystemd
import Synchronization

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
    /// Parses the command line, installs the log handler, runs the daemon and reports any
    /// error as one entry at error level: `recurd: error: ...` on stderr, or under systemd a
    /// journal entry with PRIORITY=3 and the same fields as every other (so
    /// `journalctl -u recurd -p warning` shows why it stopped). Returns the process exit code.
    static func runMain(_ arguments: [String] = Array(CommandLine.arguments.dropFirst())) async -> Int32 {
        do {
            var command = try parseAsRoot(arguments)
            if let daemon = command as? Recurd {
                // Before the model loads: a failure to load it is logged like everything else.
                bootstrapLogging(target: daemon.log, level: daemon.logLevel)
                try await daemon.run()
            } else {
                try command.run()  // --help and --version come back as errors; nothing else runs here
            }
            return 0
        } catch let exit as ExitCode {
            return exit.rawValue
        } catch let error as RecurdError {
            logFailure(error.message)
            return error.code
        } catch {
            let code = exitCode(for: error)
            if code == .success { self.exit(withError: error) }  // --help, --version
            var message = oneLine(self.message(for: error))
            if code == .validationFailure { message += " (see 'recurd --help')" }
            logFailure(message)
            return code.rawValue
        }
    }

    /// Whether `bootstrapLogging` ran (swift-log allows one bootstrap per process).
    private static let loggingBootstrapped = Atomic<Bool>(false)

    /// Sends diagnostics to the journal (`--log journal`, or `auto` when stderr is the journal)
    /// or as lines on stderr, from `level` up. Only the first call counts.
    static func bootstrapLogging(target: LogTarget, level: Logger.Level) {
        guard !loggingBootstrapped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if target == .journal || (target == .auto && Journal.standardErrorIsJournal()) {
            LoggingSystem.bootstrap { _ in JournalLogHandler(identifier: "recurd", level: level) }
        } else {
            LoggingSystem.bootstrap { DaemonLogHandler(label: $0, level: level) }
        }
    }

    /// Logs why recurd exits, at error level, through the log handler (installed with the
    /// defaults first when the command line could not be parsed), whatever --log-level says.
    private static func logFailure(_ message: String) {
        bootstrapLogging(target: .auto, level: .info)
        var logger = Logger(label: "recurd")
        if logger.logLevel > .error { logger.logLevel = .error }  // --log-level critical still says why
        logger.error("\(message)")
    }

    /// ArgumentParser lists an option's choices one per line ("  - json"); an error here is
    /// one line, so the list becomes "json, tsv".
    private static func oneLine(_ message: String) -> String {
        let lines = message.split(separator: "\n").map { $0.drop(while: { $0 == " " || $0 == "-" }) }
        guard lines.count > 1 else { return message }
        return lines[0] + " " + lines.dropFirst().joined(separator: ", ")
    }
}
