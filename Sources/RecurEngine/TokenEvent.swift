import RecurCore

/// Who is asking: the server gives every connection an id; streams remember their subscribers.
public typealias ClientID = UInt64

/// One absorbed token (one protocol event).
public struct TokenEvent: Sendable, Equatable {
    /// The stream that absorbed the token.
    public var stream: String
    /// Tokens the stream has absorbed so far including this one (first token: 1).
    public var offset: Int
    /// The token's id.
    public var token: Int32
    /// log p(token | earlier tokens), natural log; nil for offset 1 (no prediction yet, as
    /// `recur eval`).
    public var logprob: Float?
    /// The top-k predictions after absorbing it, most probable first (ties: lower id).
    public var next: [TokenProbability]
    /// The values of the hidden units the request asked for (`StreamEngine.hiddenUnits`), in
    /// the order asked, after the step that absorbed the token; empty when none were asked.
    public var units: [Float]

    /// Memberwise, for tests and for clients that parse events back.
    public init(stream: String, offset: Int, token: Int32, logprob: Float?, next: [TokenProbability], units: [Float] = []) {
        self.stream = stream
        self.offset = offset
        self.token = token
        self.logprob = logprob
        self.next = next
        self.units = units
    }
}
