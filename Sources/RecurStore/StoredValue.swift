import Foundation
import GRDB

/// Reads the store's columns without trusting them. GRDB's typed `row[...]` subscripts trap
/// when a value has another type (a uid stored as text, say), and its converters accept what
/// SQLite would (text as a blob, an exact float as an integer); the database is a file that
/// anything may have edited, so every value is read as the `DatabaseValue` it is and checked
/// here: a wrong type, a NULL or an out-of-range number is a `StoreError` naming the table,
/// the column and what was found, never a trap.
struct StoredValue {
    /// Where the value comes from, for messages: "the log row 12", "the checkpoint".
    let place: String
    let column: String
    let value: DatabaseValue

    /// The value of `column` in `row` (a `DatabaseValue` subscript: every value is one).
    init(_ row: Row, _ column: String, in place: String) {
        self.place = place
        self.column = column
        value = row[column]
    }

    /// An integer in `range`.
    func integer(in range: ClosedRange<Int64>) throws(StoreError) -> Int64 {
        guard case .int64(let n) = value.storage else { throw mismatch("an integer") }
        guard range.contains(n) else {
            throw StoreError("\(place) has \(column) \(n), outside \(range.lowerBound)...\(range.upperBound)")
        }
        return n
    }

    /// Any 64-bit integer (hashes are stored as their bit pattern).
    func bits() throws(StoreError) -> UInt64 { UInt64(bitPattern: try integer(in: Int64.min...Int64.max)) }

    /// A blob (an empty one included).
    func blob() throws(StoreError) -> Data {
        guard case .blob(let data) = value.storage else { throw mismatch("a blob") }
        return data
    }

    /// Text.
    func text() throws(StoreError) -> String {
        guard case .string(let string) = value.storage else { throw mismatch("text") }
        return string
    }

    /// A finite number of seconds since 1970, or nil when NULL (a row written before the
    /// column existed).
    func optionalTime() throws(StoreError) -> Double? {
        switch value.storage {
        case .null: return nil
        case .double(let t) where t.isFinite: return t
        case .int64(let n): return Double(n)
        default: throw mismatch("a time in seconds")
        }
    }

    private func mismatch(_ expected: String) -> StoreError {
        StoreError("\(place) has \(Self.describe(value)) in its \(column) column, where \(expected) belongs")
    }

    /// The value as a message shows it: its type, and a short form of it.
    static func describe(_ value: DatabaseValue) -> String {
        switch value.storage {
        case .null: return "NULL"
        case .int64(let n): return "the integer \(n)"
        case .double(let d): return "the real number \(d)"
        case .string(let s):
            let shown = s.unicodeScalars.prefix(32).map { $0.value < 0x20 || $0.value == 0x7F ? "?" : String($0) }.joined()
            return "the text '\(shown)\(s.unicodeScalars.count > 32 ? "…" : "")'"
        case .blob(let data): return "a blob of \(data.count) bytes"
        }
    }
}
