import RecurCore

/// Training progress on stderr. On a terminal: one line redrawn in place with `\r`; elsewhere
/// (a log file, a pipe): one plain line per report, so logs stay readable.
final class ProgressDisplay {
    private let terminal: Bool
    private var lineShown = false

    init(terminal: Bool) {
        self.terminal = terminal
    }

    func show(_ report: TrainingReport, lastValidation: Double?) {
        var parts = [
            Format.duration(report.elapsed),
            "epoch " + Format.fixed(report.epoch, 2),
            Format.count(report.tokensPerSecond) + " tok/s",
            "train " + (report.trainLoss.isFinite ? Format.fixed(report.trainLoss, 4) : "-"),
        ]
        // A terminal keeps showing the last measurement; a log line says only what it measured.
        if let v = terminal ? lastValidation : report.validationLoss {
            parts.append("val " + Format.fixed(v, 4))
        }
        parts.append("lr " + Format.scientific(Double(report.learningRate)))
        if let eta = report.eta { parts.append("ETA " + Format.duration(max(0, eta))) }
        let line = parts.joined(separator: "  ")
        if terminal {
            StandardError.write("\r\u{1B}[K" + line)
            lineShown = true
        } else {
            StandardError.writeLine(line)
        }
    }

    /// A message that must not be overwritten by the next redraw.
    func interrupt(_ message: String) {
        finish()
        logger.notice("\(message)")
    }

    /// Ends the live line so that what follows starts on a fresh one.
    func finish() {
        if lineShown { StandardError.write("\n") }
        lineShown = false
    }
}
