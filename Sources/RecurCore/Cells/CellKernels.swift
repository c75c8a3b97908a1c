import CRecurKernels

/// The one place where a step's arithmetic depends on the cell type: where the recurrent
/// product h_{t-1}·W_hhᵀ goes, and which pointwise kernel of CRecurKernels (whose equations
/// stand beside it in kernels.c) turns the pre-activations into the new state, forward and
/// backward. Training (`Network`) and inference (`Stepper`) both step through it, each around
/// its own matrix products.
struct CellKernels {
    let cell: CellKind
    /// 1 for a ReLU RNN, 0 for tanh (the other cells ignore it).
    let relu: Int32

    init(_ config: ModelConfig) {
        cell = config.cell
        relu = config.nonlinearity == .relu ? 1 : 0
    }

    /// Whether the recurrent part W_hh h_{t-1} + b_hh is kept apart from the input part: GRU's
    /// n gate takes it alone, as r ⊙ (W_hn h_{t-1} + b_hn). For RNN and LSTM it is added into
    /// the gates, and b_hh is folded into the gates' bias.
    var separateRecurrentPart: Bool {
        switch cell {
        case .gru: true
        case .rnn, .lstm: false
        }
    }

    /// One step's pointwise forward for B rows of width H. `gates` (B, G·H) holds the
    /// pre-activations (GRU: only the input part, the recurrent part in `gh`) and is
    /// overwritten with the activations, which the backward step reads. Reads `hPrev`, and
    /// `cPrev` (LSTM); writes `hNext`, and `cNext` and `tanhC` (LSTM) or `ghn` (GRU: the
    /// recurrent part of n, for the backward step). Pointers a cell does not use are not read.
    func forward(B: Int, H: Int, gates: UnsafeMutablePointer<Float>, gh: UnsafePointer<Float>,
                 hPrev: UnsafePointer<Float>, cPrev: UnsafePointer<Float>, hNext: UnsafeMutablePointer<Float>,
                 cNext: UnsafeMutablePointer<Float>, tanhC: UnsafeMutablePointer<Float>, ghn: UnsafeMutablePointer<Float>) {
        switch cell {
        case .rnn:
            recur_rnn_forward(Int64(B * H), gates, gates, relu)
            hNext.update(from: gates, count: B * H)
        case .lstm:
            recur_lstm_forward(Int64(B), Int64(H), gates, cPrev, cNext, tanhC, hNext)
        case .gru:
            recur_gru_forward(Int64(B), Int64(H), gates, gh, hPrev, hNext, ghn)
        }
    }

    /// One step's pointwise backward: from `dh` (the gradient at h_t) and, for LSTM, `dc` (in:
    /// the gradient at c_t from step t+1; out: at c_{t-1}), the gradients at the pre-activations:
    /// `dgi` (B, G·H), and for GRU `dgh` (the recurrent part's) and the direct part of
    /// ∂h_{t-1} into `dhPrev` (the caller adds the products' part). Reads what `forward` kept.
    func backward(B: Int, H: Int, gates: UnsafePointer<Float>, hPrev: UnsafePointer<Float>, hNext: UnsafePointer<Float>,
                  cPrev: UnsafePointer<Float>, tanhC: UnsafePointer<Float>, ghn: UnsafePointer<Float>,
                  dh: UnsafePointer<Float>, dc: UnsafeMutablePointer<Float>, dgi: UnsafeMutablePointer<Float>,
                  dgh: UnsafeMutablePointer<Float>, dhPrev: UnsafeMutablePointer<Float>) {
        switch cell {
        case .rnn:
            recur_rnn_backward(Int64(B * H), hNext, dh, dgi, relu)
        case .lstm:
            recur_lstm_backward(Int64(B), Int64(H), gates, cPrev, tanhC, dh, dc, dgi)
        case .gru:
            recur_gru_backward(Int64(B), Int64(H), gates, ghn, hPrev, dh, dgi, dgh, dhPrev)
        }
    }
}
