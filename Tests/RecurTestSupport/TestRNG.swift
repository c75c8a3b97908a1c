/// SplitMix64: a tiny seeded generator, so random texts and chunkings are reproducible from the
/// seed a failing test prints. (RecurCore's `SeededGenerator` is xoshiro256**, for training;
/// the tests keep this one so their inputs stay the ones they were written against.)
public struct TestRNG: RandomNumberGenerator, Sendable {
    /// The generator's whole state; the seed is its first value.
    public var state: UInt64

    public init(state: UInt64) { self.state = state }

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in 0..<n (`n` > 0), by modulo: cheap, and slightly biased, which tests do not mind.
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}
