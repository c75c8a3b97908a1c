/// The update rule applied to the flat parameter buffer after each chunk.
public enum OptimizerKind: String, Sendable, Codable, CaseIterable {
    case adam, adagrad
}

/// Adam (Kingma & Ba, with PyTorch's bias correction) or Adagrad, over one flat buffer.
/// Its state (moments, step count) is saved beside a checkpoint so training resumes exactly.
public final class Optimizer {
    public let kind: OptimizerKind
    /// Adam: first moment; Adagrad: sum of squared gradients.
    public let m: FloatBuffer
    /// Adam: second moment (unused by Adagrad).
    public let v: FloatBuffer
    public var step: Int = 0

    public let beta1: Float = 0.9      // PyTorch defaults
    public let beta2: Float = 0.999
    public let adamEpsilon: Float = 1e-8
    public let adagradEpsilon: Float = 1e-10

    public init(kind: OptimizerKind, parameterCount: Int) {
        self.kind = kind
        m = FloatBuffer(parameterCount)
        v = FloatBuffer(kind == .adam ? parameterCount : 0)
    }

    /// Applies one update with learning rate `lr` to `w` from gradient `g` (n floats).
    public func update(_ w: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, count n: Int, lr: Float) {
        precondition(n == m.count, "optimizer built for \(m.count) parameters, given \(n)")
        step += 1
        switch kind {
        case .adam:
            let b1 = beta1, b2 = beta2, eps = adamEpsilon
            let c1 = 1 - Float(pow(Double(b1), Double(step)))
            let c2 = 1 - Float(pow(Double(b2), Double(step)))
            let stepSize = lr / c1, c2root = c2.squareRoot()
            let m = m.p, v = v.p
            for i in 0..<n {
                let gi = g[i]
                m[i] = b1 * m[i] + (1 - b1) * gi
                v[i] = b2 * v[i] + (1 - b2) * gi * gi
                w[i] -= stepSize * m[i] / (v[i].squareRoot() / c2root + eps)
            }
        case .adagrad:
            let acc = m.p, eps = adagradEpsilon
            for i in 0..<n {
                let gi = g[i]
                acc[i] += gi * gi
                w[i] -= lr * gi / (acc[i].squareRoot() + eps)
            }
        }
    }
}

/// Scales `g` so that its global L2 norm is at most `maxNorm` (PyTorch's clip_grad_norm_).
/// Returns the norm before clipping.
@discardableResult
public func clipGradientNorm(_ g: UnsafeMutablePointer<Float>, count n: Int, maxNorm: Float) -> Float {
    var sum: Double = 0
    var partial: Float = 0
    for i in 0..<n {
        partial += g[i] * g[i]
        if i & 4095 == 4095 { sum += Double(partial); partial = 0 }
    }
    sum += Double(partial)
    let norm = Float(sum.squareRoot())
    if maxNorm > 0 && norm > maxNorm {
        let scale = maxNorm / (norm + 1e-6)
        for i in 0..<n { g[i] *= scale }
    }
    return norm
}

#if canImport(Glibc)
import Glibc
#endif
