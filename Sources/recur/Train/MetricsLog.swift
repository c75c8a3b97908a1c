import RecurCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// MODEL.metrics.jsonl: one JSON object per training report, flushed line by line so that a
/// `tail -f` or a plotting script sees each report as it happens.
///
///     {"elapsed_s":12.5,"tokens":64000,"tokens_per_s":5120.3,"train_loss":2.31,"val_loss":2.35,"epoch":0.42,"lr":0.002}
///
/// Losses are in nats/token; `val_loss` is present only in reports that measured it;
/// `train_loss` is null when no chunk trained since the previous report.
final class MetricsLog {
    private let file: UnsafeMutablePointer<FILE>
    let path: String

    /// Opens `path`, appending (a resumed run) or starting afresh.
    init(path: String, append: Bool) throws(CLIError) {
        guard let file = fopen(path, append ? "a" : "w") else {
            throw CLIError("cannot open the metrics log '\(path)': \(String(cString: strerror(errno)))")
        }
        self.file = file
        self.path = path
    }

    deinit { fclose(file) }

    func append(_ report: TrainingReport) {
        var members: [(String, JSONText)] = [
            ("elapsed_s", .double(report.elapsed)),
            ("tokens", .int(report.tokens)),
            ("tokens_per_s", .double(report.tokensPerSecond)),
            ("train_loss", .double(report.trainLoss)),
        ]
        if let v = report.validationLoss { members.append(("val_loss", .double(v))) }
        members += [("epoch", .double(report.epoch)), ("lr", .float(report.learningRate))]
        let line = JSONText.object(members).rendered + "\n"
        fputs(line, file)
        fflush(file)
    }
}
