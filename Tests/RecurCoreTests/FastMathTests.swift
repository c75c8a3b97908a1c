import CRecurKernels
import Foundation
import XCTest

/// The cells' exp, sigmoid and tanh (CRecurKernels' fast_math.h) stay within the error bounds
/// that header states, over dense sweeps of their domains, against double-precision libm.
final class FastMathTests: XCTestCase {
    /// Evenly spaced floats from `lower` to `upper`, and the function's values at them.
    private func sweep(_ lower: Double, _ upper: Double, count: Int,
                       _ kernel: (Int64, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) -> ([Float], [Float]) {
        let xs = (0..<count).map { Float(lower + (upper - lower) * Double($0) / Double(count - 1)) }
        var ys = [Float](repeating: .nan, count: count)
        xs.withUnsafeBufferPointer { x in ys.withUnsafeMutableBufferPointer { y in kernel(Int64(count), x.baseAddress!, y.baseAddress!) } }
        return (xs, ys)
    }

    /// The largest relative error of `ys` against `exact` at `xs`, and where.
    private func worst(_ xs: [Float], _ ys: [Float], _ exact: (Double) -> Double) -> (error: Double, at: Float) {
        var worst = (error: 0.0, at: Float(0))
        for (x, y) in zip(xs, ys) {
            let e = exact(Double(x))
            let error = e == 0 ? abs(Double(y)) : abs(Double(y) - e) / abs(e)
            if !(error <= worst.error) { worst = (error, x) }  // a NaN counts as the worst
        }
        return worst
    }

    func test_exp_within2e7Relative_acrossItsRange_andClampedBeyond() {
        let (xs, ys) = sweep(-87.3, 88.3, count: 400_003, recur_vexp)
        let (error, at) = worst(xs, ys, Foundation.exp)
        print("expf_fast: max relative error \(error) at \(at)")
        XCTAssertLessThanOrEqual(error, 2e-7, "at x = \(at)")
        let (_, beyond) = sweep(-1000, 1000, count: 2, recur_vexp)
        XCTAssertTrue(beyond[0] > 0 && beyond[0] < 1e-37, "exp(-1000) = \(beyond[0])")
        XCTAssertTrue(beyond[1].isFinite && beyond[1] > 1e38, "exp(1000) = \(beyond[1])")
    }

    func test_sigmoid_within3e7Relative_andSaturatesBeyond() {
        let (xs, ys) = sweep(-80, 80, count: 400_003, recur_vsigmoid)
        let (error, at) = worst(xs, ys) { 1 / (1 + Foundation.exp(-$0)) }
        print("sigmoidf_fast: max relative error \(error) at \(at)")
        XCTAssertLessThanOrEqual(error, 3e-7, "at x = \(at)")
        let (_, beyond) = sweep(-200, 200, count: 3, recur_vsigmoid)
        XCTAssertLessThan(beyond[0], 1e-30)
        XCTAssertEqual(beyond[1], 0.5)
        XCTAssertEqual(beyond[2], 1)
    }

    func test_tanh_within3e7Relative_everywhere_includingAroundItsSwitchAndZero() {
        for (lower, upper) in [(-20.0, 20.0), (-0.7, -0.55), (0.55, 0.7), (-1e-3, 1e-3)] {
            let (xs, ys) = sweep(lower, upper, count: 200_003, recur_vtanh)
            let (error, at) = worst(xs, ys, Foundation.tanh)
            print("tanhf_fast on [\(lower), \(upper)]: max relative error \(error) at \(at)")
            XCTAssertLessThanOrEqual(error, 3e-7, "at x = \(at)")
        }
        let (_, beyond) = sweep(-1e4, 1e4, count: 2, recur_vtanh)
        XCTAssertEqual(beyond, [-1, 1])
    }
}
