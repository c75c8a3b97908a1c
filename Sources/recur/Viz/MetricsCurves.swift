import RecurCore

/// The training and validation loss curves of a MODEL.metrics.jsonl file (`recur train`'s
/// report log, see `MetricsLog`): x is tokens trained on, y the loss in nats/token.
struct MetricsCurves {
    var train: [(Double, Double)] = []
    var validation: [(Double, Double)] = []

    /// Parses the JSON Lines `bytes` read from `path`; any line that is not a report object
    /// is a `CLIError` naming the file and the line.
    init(bytes: [UInt8], path: String) throws(CLIError) {
        var number = 0
        for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            number += 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            let bytes = Array(line)
            if let bad = bytes.withUnsafeBytes({ UTF8Validation.firstInvalidOffset($0) }) {
                throw CLIError("invalid metrics file '\(path)', line \(number): invalid UTF-8 at byte \(bad)")
            }
            let value: JSONValue
            do {
                value = try JSONValue.parse(bytes)
            } catch {
                throw CLIError("invalid metrics file '\(path)', line \(number): \(error)")
            }
            guard case .object = value, let tokens = value["tokens"]?.doubleValue else {
                throw CLIError("invalid metrics file '\(path)', line \(number): expected an object with a number \"tokens\", as recur train writes")
            }
            if let loss = value["train_loss"]?.doubleValue { train.append((tokens, loss)) }
            if let loss = value["val_loss"]?.doubleValue { validation.append((tokens, loss)) }
        }
        guard !train.isEmpty || !validation.isEmpty else {
            throw CLIError("the metrics file '\(path)' has no train_loss or val_loss values")
        }
    }

    /// Both curves on one chart.
    var chart: SVGChart {
        SVGChart(title: "Loss during training", xLabel: "tokens trained on", yLabel: "loss (nats/token)",
                 series: [
                    .init(name: "training (\(train.count) reports)", id: "train-loss", colour: "#1f77b4", points: train),
                    .init(name: "validation (\(validation.count) reports)", id: "val-loss", colour: "#d62728", points: validation),
                 ])
    }
}
