#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import RecurCore

/// What `recur viz` found in a text, and its rendering as one self-contained HTML page (inline
/// CSS, SVG and script; no URL, so it opens offline and loads nothing).
struct VizReport {
    var modelName: String
    var textName: String
    var config: ModelConfig
    var vocabulary: Vocabulary
    /// The text of each token (T).
    var pieces: [String]
    /// Tokens 2...T, scored as `recur eval --per-token` scores them.
    var scored: [ScoredToken]
    /// For each feature, its strongest unit (nil when the feature is constant over the text).
    var features: [(TextFeature, UnitCorrelation?)]
    var saturation: [GateSaturation]
    var reach: MemoryReach
    var metrics: MetricsCurves?
    /// Set when the text was cut to its first `pieces.count` tokens.
    var truncatedFrom: Int?

    /// Surprisal (bits) at which a token's colour is darkest.
    static let maxBits = 10.0

    func render() -> String {
        let bits = scored.isEmpty ? 0 : -scored.reduce(0.0) { $0 + Double($1.logProb) } / Double(scored.count) / 0.6931471805599453
        var html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>recur viz: \(HTML.escape(textName))</title>
            <style>\(Self.style)</style></head><body>
            <h1>recur viz</h1>
            <p class="meta">Model <b>\(HTML.escape(modelName))</b>: \(config.layers)-layer \(config.cell.rawValue.uppercased()), \
            hidden \(config.hiddenSize), vocabulary \(config.vocabularySize). Text <b>\(HTML.escape(textName))</b>: \
            <span id="token-count">\(pieces.count)</span> tokens\(truncatedFrom.map { " (the first of \($0))" } ?? ""), \
            \(HTML.number(bits, 3)) bits/token over the \(scored.count) scored.</p>

            """
        html += surprisalSection() + featureSection() + saturationSection() + reachSection()
        if let metrics { html += "<section id=\"metrics\"><h2>Training</h2>" + metrics.chart.render() + "</section>\n" }
        html += "<script>\(Self.script)</script>\n</body></html>\n"
        return html
    }

    private func surprisalSection() -> String {
        var out = """
            <section id="surprisal-section"><h2>Surprisal</h2>
            <p>Each token coloured by its surprisal, −log₂ p(token | the text before it), white at 0 bits, darkest at \
            \(Int(Self.maxBits)) or more. Hover over a token for the model's top \(scored.first?.top.count ?? 0) guesses.</p>
            <div id="info" class="info">Hover over a token.</div><div id="surprisal" class="text">
            """
        for (i, piece) in pieces.enumerated() {
            guard i > 0 else { out += "<span class=\"t unscored\">\(HTML.escape(piece))</span>"; continue }
            let s = scored[i - 1]
            let surprisal = -Double(s.logProb) / 0.6931471805599453
            let top = JSONText.array(s.top.map { .array([.string(vocabulary.display($0.token)), .float($0.probability)]) }).rendered
            out += "<span class=\"t\" data-logprob=\"\(s.logProb)\" data-top=\"\(HTML.escape(top))\" style=\"background:\(HTML.ramp(surprisal / Self.maxBits, hue: 5))\">\(HTML.escape(piece))</span>"
        }
        return out + "</div></section>\n"
    }

    private func featureSection() -> String {
        var out = """
            <section id="features"><h2>Cells that track the text</h2>
            <p>For each feature, the hidden unit whose value after each token has the largest |Pearson r| with it \
            over this text (every layer; for an LSTM both the cell state c and the output h). Red is positive, blue negative.</p>

            """
        for (feature, found) in features {
            out += "<div class=\"feature\" data-feature=\"\(feature.rawValue)\"><h3>\(HTML.escape(feature.rawValue))</h3>"
            guard let found else {
                out += "<p class=\"none\">Constant over this text: no correlation to measure.</p></div>\n"
                continue
            }
            let u = found.unit
            let vectorName = u.vector == .c ? "cell state c" : "hidden state h"
            out += "<p>Layer \(u.layer + 1), \(vectorName), unit \(u.index): <span class=\"r\">r = \(HTML.number(found.correlation, 3))</span></p>"
            out += "<div class=\"text heat\" data-layer=\"\(u.layer + 1)\" data-vector=\"\(u.vector.rawValue)\" data-unit=\"\(u.index)\" data-r=\"\(found.correlation)\">"
            let scale = Double(found.values.map { abs($0) }.max() ?? 1)
            for (piece, v) in zip(pieces, found.values) {
                out += "<span data-value=\"\(v)\" style=\"background:\(HTML.diverging(scale > 0 ? Double(v) / scale : 0))\">\(HTML.escape(piece))</span>"
            }
            out += "</div></div>\n"
        }
        return out + "</section>\n"
    }

    private func saturationSection() -> String {
        var out = """
            <section id="saturation"><h2>Gate saturation</h2>
            <p>Each dot is one unit of one gate: the fraction of steps its activation is below 0.1 (left-saturated, x) \
            and above 0.9 (right-saturated, y), as in Karpathy, Johnson &amp; Fei-Fei (2015).</p>

            """
        guard !saturation.isEmpty else { return out + "<p class=\"none\">A vanilla RNN has no gates.</p></section>\n" }
        let colours = ["input": "#2ca02c", "forget": "#1f77b4", "output": "#d62728", "reset": "#9467bd", "update": "#ff7f0e"]
        for k in 0..<config.layers {
            let gates = saturation.filter { $0.layer == k }
            let chart = SVGChart(title: "Layer \(k + 1)", xLabel: "fraction left-saturated (< 0.1)",
                                 yLabel: "fraction right-saturated (> 0.9)",
                                 series: gates.map { .init(name: $0.gate, id: "gate-l\(k + 1)-\($0.gate)", colour: colours[$0.gate] ?? "#333",
                                                           points: $0.units.map { ($0.left, $0.right) }) },
                                 xRange: 0...1, yRange: 0...1, width: 360, height: 340)
            out += chart.render(scatter: true)
        }
        return out + "</section>\n"
    }

    private func reachSection() -> String {
        let means = reach.meanNorms
        let points = means.enumerated().compactMap { d, norm in norm > 0 ? (Double(d + 1), log10(norm)) : nil }
        let chart = SVGChart(title: "Memory reach", xLabel: "distance d (tokens back)", yLabel: "log₁₀ mean gradient norm",
                             series: [.init(name: config.cell.rawValue.uppercased(), id: "reach", colour: "#1f77b4", points: points)])
        let values = means.map { "\($0)" }.joined(separator: " ")
        return """
            <section id="memory-reach"><h2>Memory reach</h2>
            <p>How much the prediction of token t depends on the input d tokens earlier: the gradient norm of log p(xₜ) \
            with respect to the input at t−d (\(config.usesEmbedding ? "its embedding" : "its one-hot vector")), \
            averaged over \(reach.positions.count) positions, from the training backward pass.</p>
            <div data-norms="\(values)">\(chart.render())</div></section>

            """
    }

    static let style = """
        body{font:14px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:1100px;padding:0 1em;color:#222}
        h2{border-bottom:1px solid #ddd;margin-top:1.6em}.meta{color:#555}
        .text{font:13px/1.6 ui-monospace,monospace;white-space:pre-wrap;border:1px solid #ddd;padding:.6em;max-height:26em;overflow:auto}
        .text span{border-radius:2px}.unscored{outline:1px dashed #aaa}
        .info{font:13px ui-monospace,monospace;min-height:1.5em;background:#f6f6f6;padding:.3em .6em;margin-bottom:.4em}
        .chart{margin:.4em 1em .4em 0}.frame{fill:none;stroke:#bbb}.tick{font-size:10px;fill:#555}
        .axis{font-size:11px;fill:#333}.ctitle{font-size:13px;font-weight:600}.legend{font-size:11px}
        .none{color:#777;font-style:italic}.r{font-weight:600}
        """

    /// Shows a token's log-probability and the model's top guesses in the info line on hover;
    /// `body[data-hover-tokens]` counts the tokens it listens on (what the browser test reads).
    static let script = """
        (function(){
          var info=document.getElementById('info'), spans=document.querySelectorAll('#surprisal span[data-logprob]');
          spans.forEach(function(s){
            s.addEventListener('mouseenter',function(){
              var lp=parseFloat(s.dataset.logprob), top=JSON.parse(s.dataset.top);
              info.textContent=JSON.stringify(s.textContent)+'  log p = '+lp.toFixed(4)+'  ('+(-lp/Math.LN2).toFixed(2)+' bits)  top: '+
                top.map(function(e){return e[0]+' '+(100*e[1]).toFixed(1)+'%';}).join('  ');
            });
          });
          document.body.dataset.hoverTokens=spans.length;
        })();
        """
}
