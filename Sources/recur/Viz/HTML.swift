/// Building blocks of the static report: escaping and number formatting for HTML and SVG.
enum HTML {
    /// `text` safe inside element content and double-quoted attribute values.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for ch in text {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(ch)
            }
        }
        return out
    }

    /// A coordinate or value with at most `digits` decimals, for compact SVG.
    static func number(_ x: Double, _ digits: Int = 2) -> String {
        guard x.isFinite else { return "0" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let rounded = (x * scale).rounded() / scale
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }

    /// A CSS colour on a white-to-`hue` ramp, `t` in [0, 1].
    static func ramp(_ t: Double, hue: Int) -> String {
        let t = max(0, min(1, t.isFinite ? t : 0))
        return "hsl(\(hue),85%,\(number(100 - 50 * t, 1))%)"
    }

    /// A diverging blue-white-red colour for `v` in [-1, 1].
    static func diverging(_ v: Double) -> String {
        let v = max(-1, min(1, v.isFinite ? v : 0))
        return v >= 0 ? ramp(v, hue: 5) : ramp(-v, hue: 215)
    }
}
