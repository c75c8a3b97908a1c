#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Inline SVG charts for the report: line charts (memory reach, loss curves) and a scatter plot
/// (gate saturation). Plain SVG with axis labels, no script.
struct SVGChart {
    /// One series of (x, y) points, drawn as a polyline (or dots in a scatter) in `colour`.
    struct Series {
        var name: String
        var id: String
        var colour: String
        var points: [(Double, Double)]
    }

    var title: String
    var xLabel: String
    var yLabel: String
    var series: [Series]
    /// Fixed axis ranges (nil: fitted to the data).
    var xRange: ClosedRange<Double>?
    var yRange: ClosedRange<Double>?
    var width = 560.0, height = 300.0

    private let left = 56.0, right = 16.0, top = 28.0, bottom = 40.0

    /// The chart as an `<svg>` element; `scatter` draws dots instead of lines.
    func render(scatter: Bool = false) -> String {
        let all = series.flatMap(\.points)
        let xs = xRange ?? Self.fit(all.map(\.0)), ys = yRange ?? Self.fit(all.map(\.1))
        let pw = width - left - right, ph = height - top - bottom
        func px(_ x: Double) -> String { HTML.number(left + (x - xs.lowerBound) / (xs.upperBound - xs.lowerBound) * pw) }
        func py(_ y: Double) -> String { HTML.number(top + ph - (y - ys.lowerBound) / (ys.upperBound - ys.lowerBound) * ph) }

        var svg = "<svg class=\"chart\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"\(HTML.escape(title))\">"
        svg += "<text x=\"\(HTML.number(left))\" y=\"16\" class=\"ctitle\">\(HTML.escape(title))</text>"
        svg += "<rect x=\"\(HTML.number(left))\" y=\"\(HTML.number(top))\" width=\"\(HTML.number(pw))\" height=\"\(HTML.number(ph))\" class=\"frame\"/>"
        for i in 0...4 {
            let fx = xs.lowerBound + Double(i) / 4 * (xs.upperBound - xs.lowerBound)
            let fy = ys.lowerBound + Double(i) / 4 * (ys.upperBound - ys.lowerBound)
            svg += "<text x=\"\(px(fx))\" y=\"\(HTML.number(top + ph + 14))\" class=\"tick\" text-anchor=\"middle\">\(Self.label(fx))</text>"
            svg += "<text x=\"\(HTML.number(left - 4))\" y=\"\(py(fy))\" class=\"tick\" text-anchor=\"end\" dominant-baseline=\"middle\">\(Self.label(fy))</text>"
        }
        svg += "<text x=\"\(HTML.number(left + pw / 2))\" y=\"\(HTML.number(height - 6))\" class=\"axis\" text-anchor=\"middle\">\(HTML.escape(xLabel))</text>"
        svg += "<text x=\"12\" y=\"\(HTML.number(top + ph / 2))\" class=\"axis\" text-anchor=\"middle\" transform=\"rotate(-90 12 \(HTML.number(top + ph / 2)))\">\(HTML.escape(yLabel))</text>"
        for (i, s) in series.enumerated() {
            if scatter {
                svg += "<g id=\"\(s.id)\" fill=\"\(s.colour)\" fill-opacity=\"0.6\">"
                for (x, y) in s.points { svg += "<circle cx=\"\(px(x))\" cy=\"\(py(y))\" r=\"2.5\"/>" }
                svg += "</g>"
            } else {
                let path = s.points.map { "\(px($0.0)),\(py($0.1))" }.joined(separator: " ")
                svg += "<polyline id=\"\(s.id)\" points=\"\(path)\" fill=\"none\" stroke=\"\(s.colour)\" stroke-width=\"1.5\" data-points=\"\(s.points.count)\"/>"
            }
            let ly = top + 12 + Double(i) * 14
            svg += "<text x=\"\(HTML.number(left + pw - 6))\" y=\"\(HTML.number(ly))\" class=\"legend\" text-anchor=\"end\" fill=\"\(s.colour)\">\(HTML.escape(s.name))</text>"
        }
        return svg + "</svg>"
    }

    /// A range covering `values` (a unit range around a single value; [0, 1] when empty).
    static func fit(_ values: [Double]) -> ClosedRange<Double> {
        let finite = values.filter(\.isFinite)
        guard let lo = finite.min(), let hi = finite.max() else { return 0...1 }
        return lo < hi ? lo...hi : (lo - 0.5)...(hi + 0.5)
    }

    /// A short tick label.
    static func label(_ x: Double) -> String {
        let a = abs(x)
        if a >= 1e6 { return HTML.number(x / 1e6, 1) + "M" }
        if a >= 1e4 { return HTML.number(x / 1e3, 0) + "k" }
        if a >= 100 { return HTML.number(x, 0) }
        if a >= 1 { return HTML.number(x, 2) }
        guard a < 1e-3, a > 0 else { return HTML.number(x, 3) }
        let exponent = Int(floor(log10(a)))
        return HTML.number(x / pow(10, Double(exponent)), 0) + "e\(exponent)"
    }
}
