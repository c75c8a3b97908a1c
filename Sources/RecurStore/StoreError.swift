/// What the state store can fail with; `description` is a sentence for logs and clients.
public struct StoreError: Error, Equatable, CustomStringConvertible {
    /// The sentence.
    public var message: String

    /// A failure described by `message`.
    public init(_ message: String) { self.message = message }

    public var description: String { message }
}
