import RecurCore
import Foundation
let V = 65, H = 256
let config = ModelConfig(cell: .lstm, vocabularySize: V, hiddenSize: H, layers: 2, embeddingSize: 256)
let vocab = Vocabulary(kind: .char, tokens: (0..<V).map { String(UnicodeScalar(UInt8(32 + $0))) }, unknownPolicy: .error)
let model = Model.random(config: config, vocabulary: vocab, seed: 1)
var rng = SeededGenerator(seed: 3)
let corpus = (0..<200_000).map { _ in Int32(rng.next() % UInt64(V)) }
var opts = TrainingOptions(); opts.validationFraction = 0
let trainer = try! Trainer(model: model, corpus: corpus, options: opts)
for _ in 0..<3 { _ = trainer.step(elapsed: 0) }
let t0 = Date()
for _ in 0..<20 { _ = trainer.step(elapsed: 0) }
print("train tokens/s", Double(20 * 3200) / Date().timeIntervalSince(t0))
