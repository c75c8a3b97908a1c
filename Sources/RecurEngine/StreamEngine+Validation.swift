import RecurCore

/// Checks of request arguments, made before anything is queued: a bad value changes nothing.
extension StreamEngine {
    /// Longest stream name, in UTF-8 bytes.
    public static let maxStreamNameBytes = 256
    /// Smallest and largest non-zero sampling temperature.
    public static let temperatureRange: ClosedRange<Float> = 0.001...1000

    /// Stream names: 1...256 bytes of UTF-8 without control, separator or bidirectional
    /// characters (`Unicode.Scalar.altersDisplay`).
    func checkName(_ name: String) throws(EngineError) {
        let bytes = name.utf8.count
        guard bytes >= 1, bytes <= Self.maxStreamNameBytes else {
            throw .badValue("a stream name must be 1 to \(Self.maxStreamNameBytes) bytes of UTF-8, not \(bytes)")
        }
        for (i, scalar) in name.unicodeScalars.enumerated() where scalar.altersDisplay {
            throw .badValue("stream name \(EngineError.quoted(name)) contains a control, separator or bidirectional character (\(scalar.codePointName) at character \(i))")
        }
    }

    /// k of the `next` lists: nil means the default; 0 asks for none.
    func checkTopK(_ k: Int?) throws(EngineError) -> Int {
        guard let k else { return options.defaultTopK }
        guard k >= 0, k <= options.maxTopK else {
            throw .badValue("k \(k) is outside 0...\(options.maxTopK)")
        }
        return k
    }

    /// The bound on `units` per feed or watch: that many floats per event at most.
    public static let maxUnits = 1024
    /// Watchers one stream may have at once (each costs the engine a copy of every event).
    public static let maxWatchersPerStream = 16

    /// Hidden units as requests name them: indices into the concatenation of every layer's h
    /// (layer 0's H values first), so 0..<layers·H. Returns where each lives in a stream's
    /// state (`StateBatch` layout, which puts an LSTM's c after each layer's h).
    func checkUnits(_ units: [Int]) throws(EngineError) -> [Int] {
        guard !units.isEmpty else { return [] }
        let config = model.config
        let H = config.hiddenSize, count = config.layers * H
        guard units.count <= Self.maxUnits else {
            throw .badValue("\(units.count) units asked; at most \(Self.maxUnits) per event")
        }
        var seen = Set<Int>()
        var offsets: [Int] = []
        offsets.reserveCapacity(units.count)
        for (i, unit) in units.enumerated() {
            guard unit >= 0, unit < count else {
                throw .badValue("unit \(unit) at position \(i) is outside 0...\(count - 1) (the model has \(config.layers) layer\(config.layers == 1 ? "" : "s") of \(H) hidden units)")
            }
            guard seen.insert(unit).inserted else { throw .badValue("unit \(unit) is asked twice (position \(i))") }
            offsets.append((unit / H) * config.cell.stateVectors * H + unit % H)
        }
        return offsets
    }

    func checkTokens(_ tokens: [Int32]) throws(EngineError) {
        let V = core.vocabularySize  // fixed for the engine's life (a replacement model keeps it)
        for (i, token) in tokens.enumerated() where token < 0 || Int(token) >= V {
            throw .badValue("token id \(token) at position \(i) is outside the model's vocabulary of \(V) tokens")
        }
    }

    func checkPredict(count: Int, temperature: Float, topK: Int?, seed: UInt64?) throws(EngineError) -> PredictRequest {
        guard count >= 0, count <= options.maxPredict else {
            throw .badValue("n \(count) is outside 0...\(options.maxPredict)")
        }
        guard temperature == 0 || Self.temperatureRange.contains(temperature) else {
            throw .badValue("temperature \(temperature) must be 0 (greedy) or within \(Self.temperatureRange.lowerBound)...\(Self.temperatureRange.upperBound)")
        }
        if let topK, topK < 1 || topK > options.maxTopK {
            throw .badValue("k \(topK) for sampling is outside 1...\(options.maxTopK)")
        }
        var system = SystemRandomNumberGenerator()
        return PredictRequest(count: count, temperature: temperature, topK: topK, seed: seed ?? system.next())
    }
}
