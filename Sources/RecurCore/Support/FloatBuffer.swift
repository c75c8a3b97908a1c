/// A fixed-size, zero-initialised, 64-byte-aligned float buffer owned by one object.
/// The hot loops work on its raw pointer; it is never resized.
public final class FloatBuffer: @unchecked Sendable {
    public let count: Int
    public let p: UnsafeMutablePointer<Float>

    public init(_ count: Int) {
        precondition(count >= 0, "negative buffer size \(count)")
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        p = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        p.initialize(repeating: 0, count: max(count, 1))
    }

    public convenience init(_ values: [Float]) {
        self.init(values.count)
        values.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { UnsafeMutableRawPointer(p).deallocate() }

    public func zero() { p.update(repeating: 0, count: count) }

    public var array: [Float] { Array(UnsafeBufferPointer(start: p, count: count)) }

    public subscript(i: Int) -> Float {
        get { p[i] }
        set { p[i] = newValue }
    }
}
